# Empty dependencies file for nops_ingest.
# This may be replaced when dependencies are built.
