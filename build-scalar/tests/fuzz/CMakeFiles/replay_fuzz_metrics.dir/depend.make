# Empty dependencies file for replay_fuzz_metrics.
# This may be replaced when dependencies are built.
