# Empty dependencies file for test_pipeline_guard.
# This may be replaced when dependencies are built.
