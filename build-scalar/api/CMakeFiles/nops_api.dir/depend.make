# Empty dependencies file for nops_api.
# This may be replaced when dependencies are built.
