file(REMOVE_RECURSE
  "CMakeFiles/test_vectorize.dir/app/test_vectorize.c.o"
  "CMakeFiles/test_vectorize.dir/app/test_vectorize.c.o.d"
  "test_vectorize"
  "test_vectorize.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/test_vectorize.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
