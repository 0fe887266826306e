# Empty dependencies file for test_core_secure.
# This may be replaced when dependencies are built.
