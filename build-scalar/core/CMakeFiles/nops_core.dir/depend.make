# Empty dependencies file for nops_core.
# This may be replaced when dependencies are built.
