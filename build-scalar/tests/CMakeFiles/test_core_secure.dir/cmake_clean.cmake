file(REMOVE_RECURSE
  "CMakeFiles/test_core_secure.dir/core/test_core_secure.c.o"
  "CMakeFiles/test_core_secure.dir/core/test_core_secure.c.o.d"
  "test_core_secure"
  "test_core_secure.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/test_core_secure.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
