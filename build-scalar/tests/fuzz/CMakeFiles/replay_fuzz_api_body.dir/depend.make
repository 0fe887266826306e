# Empty dependencies file for replay_fuzz_api_body.
# This may be replaced when dependencies are built.
