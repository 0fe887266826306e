# Empty dependencies file for replay_fuzz_redact.
# This may be replaced when dependencies are built.
