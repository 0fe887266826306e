# Empty dependencies file for test_loadgen.
# This may be replaced when dependencies are built.
