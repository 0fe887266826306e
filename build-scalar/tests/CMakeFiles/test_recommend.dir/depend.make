# Empty dependencies file for test_recommend.
# This may be replaced when dependencies are built.
