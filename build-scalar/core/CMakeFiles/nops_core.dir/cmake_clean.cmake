file(REMOVE_RECURSE
  "CMakeFiles/nops_core.dir/alloc.c.o"
  "CMakeFiles/nops_core.dir/alloc.c.o.d"
  "CMakeFiles/nops_core.dir/config.c.o"
  "CMakeFiles/nops_core.dir/config.c.o.d"
  "CMakeFiles/nops_core.dir/err.c.o"
  "CMakeFiles/nops_core.dir/err.c.o.d"
  "CMakeFiles/nops_core.dir/files.c.o"
  "CMakeFiles/nops_core.dir/files.c.o.d"
  "CMakeFiles/nops_core.dir/log.c.o"
  "CMakeFiles/nops_core.dir/log.c.o.d"
  "CMakeFiles/nops_core.dir/secret.c.o"
  "CMakeFiles/nops_core.dir/secret.c.o.d"
  "CMakeFiles/nops_core.dir/text.c.o"
  "CMakeFiles/nops_core.dir/text.c.o.d"
  "libnops_core.a"
  "libnops_core.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/nops_core.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
