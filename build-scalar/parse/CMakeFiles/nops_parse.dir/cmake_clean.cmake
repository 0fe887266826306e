file(REMOVE_RECURSE
  "CMakeFiles/nops_parse.dir/csv.c.o"
  "CMakeFiles/nops_parse.dir/csv.c.o.d"
  "CMakeFiles/nops_parse.dir/jsonfmt.c.o"
  "CMakeFiles/nops_parse.dir/jsonfmt.c.o.d"
  "CMakeFiles/nops_parse.dir/lineproto.c.o"
  "CMakeFiles/nops_parse.dir/lineproto.c.o.d"
  "CMakeFiles/nops_parse.dir/timestamp.c.o"
  "CMakeFiles/nops_parse.dir/timestamp.c.o.d"
  "libnops_parse.a"
  "libnops_parse.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/nops_parse.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
