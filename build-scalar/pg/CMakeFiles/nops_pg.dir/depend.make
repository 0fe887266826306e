# Empty dependencies file for nops_pg.
# This may be replaced when dependencies are built.
