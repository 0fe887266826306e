# Empty compiler generated dependencies file for replay_fuzz_config.
# This may be replaced when dependencies are built.
