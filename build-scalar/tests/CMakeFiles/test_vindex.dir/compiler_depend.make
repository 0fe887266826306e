# Empty compiler generated dependencies file for test_vindex.
# This may be replaced when dependencies are built.
