# Empty compiler generated dependencies file for test_sinks.
# This may be replaced when dependencies are built.
