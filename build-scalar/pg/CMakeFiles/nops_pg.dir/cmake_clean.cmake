file(REMOVE_RECURSE
  "CMakeFiles/nops_pg.dir/pg.c.o"
  "CMakeFiles/nops_pg.dir/pg.c.o.d"
  "libnops_pg.a"
  "libnops_pg.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/nops_pg.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
