# Empty dependencies file for nops_auth.
# This may be replaced when dependencies are built.
