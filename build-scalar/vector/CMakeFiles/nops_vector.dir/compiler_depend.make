# Empty compiler generated dependencies file for nops_vector.
# This may be replaced when dependencies are built.
