# Empty dependencies file for nops_sinks.
# This may be replaced when dependencies are built.
