# Empty dependencies file for replay_fuzz_manifest.
# This may be replaced when dependencies are built.
