# Empty dependencies file for nops_orchestrate.
# This may be replaced when dependencies are built.
