# Empty compiler generated dependencies file for test_vectorize.
# This may be replaced when dependencies are built.
