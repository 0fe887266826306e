# Empty dependencies file for test_guard.
# This may be replaced when dependencies are built.
