# Empty compiler generated dependencies file for replay_fuzz_policy.
# This may be replaced when dependencies are built.
