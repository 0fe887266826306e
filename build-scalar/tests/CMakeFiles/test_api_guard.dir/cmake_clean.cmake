file(REMOVE_RECURSE
  "CMakeFiles/test_api_guard.dir/api/test_api_guard.c.o"
  "CMakeFiles/test_api_guard.dir/api/test_api_guard.c.o.d"
  "test_api_guard"
  "test_api_guard.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/test_api_guard.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
