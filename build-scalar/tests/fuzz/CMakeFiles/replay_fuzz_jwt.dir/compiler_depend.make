# Empty compiler generated dependencies file for replay_fuzz_jwt.
# This may be replaced when dependencies are built.
