file(REMOVE_RECURSE
  "CMakeFiles/nops_auth.dir/auth.c.o"
  "CMakeFiles/nops_auth.dir/auth.c.o.d"
  "libnops_auth.a"
  "libnops_auth.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/nops_auth.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
