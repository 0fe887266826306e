file(REMOVE_RECURSE
  "CMakeFiles/test_guard.dir/orchestrate/test_guard.c.o"
  "CMakeFiles/test_guard.dir/orchestrate/test_guard.c.o.d"
  "test_guard"
  "test_guard.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/test_guard.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
