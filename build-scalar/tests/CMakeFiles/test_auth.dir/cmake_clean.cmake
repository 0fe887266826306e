file(REMOVE_RECURSE
  "CMakeFiles/test_auth.dir/api/test_auth.c.o"
  "CMakeFiles/test_auth.dir/api/test_auth.c.o.d"
  "test_auth"
  "test_auth.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/test_auth.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
