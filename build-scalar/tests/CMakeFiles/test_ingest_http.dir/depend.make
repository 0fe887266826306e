# Empty dependencies file for test_ingest_http.
# This may be replaced when dependencies are built.
