# Empty compiler generated dependencies file for test_series.
# This may be replaced when dependencies are built.
