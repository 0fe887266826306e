# Empty dependencies file for replay_fuzz_csv.
# This may be replaced when dependencies are built.
