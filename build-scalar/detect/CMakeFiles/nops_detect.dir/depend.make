# Empty dependencies file for nops_detect.
# This may be replaced when dependencies are built.
