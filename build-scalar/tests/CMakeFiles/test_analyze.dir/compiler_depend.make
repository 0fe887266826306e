# Empty compiler generated dependencies file for test_analyze.
# This may be replaced when dependencies are built.
