# Empty dependencies file for nops_recommend.
# This may be replaced when dependencies are built.
