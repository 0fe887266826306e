# Empty dependencies file for nops_correlate.
# This may be replaced when dependencies are built.
