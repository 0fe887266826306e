file(REMOVE_RECURSE
  "CMakeFiles/test_recommend.dir/recommend/test_recommend.c.o"
  "CMakeFiles/test_recommend.dir/recommend/test_recommend.c.o.d"
  "test_recommend"
  "test_recommend.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/test_recommend.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
