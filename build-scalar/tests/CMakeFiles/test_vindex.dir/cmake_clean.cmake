file(REMOVE_RECURSE
  "CMakeFiles/test_vindex.dir/vector/test_vindex.c.o"
  "CMakeFiles/test_vindex.dir/vector/test_vindex.c.o.d"
  "test_vindex"
  "test_vindex.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/test_vindex.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
