# Empty compiler generated dependencies file for test_api_guard.
# This may be replaced when dependencies are built.
