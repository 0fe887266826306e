# Empty dependencies file for test_synthetic.
# This may be replaced when dependencies are built.
