# Empty dependencies file for test_prometheus.
# This may be replaced when dependencies are built.
