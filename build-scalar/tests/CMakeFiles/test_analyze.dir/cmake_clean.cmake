file(REMOVE_RECURSE
  "CMakeFiles/test_analyze.dir/app/test_analyze.c.o"
  "CMakeFiles/test_analyze.dir/app/test_analyze.c.o.d"
  "test_analyze"
  "test_analyze.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/test_analyze.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
