# Empty compiler generated dependencies file for test_audit_pg.
# This may be replaced when dependencies are built.
