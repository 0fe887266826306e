# Empty dependencies file for nops_parse.
# This may be replaced when dependencies are built.
