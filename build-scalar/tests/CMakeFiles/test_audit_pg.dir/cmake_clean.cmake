file(REMOVE_RECURSE
  "CMakeFiles/test_audit_pg.dir/orchestrate/test_audit_pg.c.o"
  "CMakeFiles/test_audit_pg.dir/orchestrate/test_audit_pg.c.o.d"
  "test_audit_pg"
  "test_audit_pg.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/test_audit_pg.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
