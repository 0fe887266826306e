file(REMOVE_RECURSE
  "CMakeFiles/test_synthetic.dir/detect/test_synthetic.c.o"
  "CMakeFiles/test_synthetic.dir/detect/test_synthetic.c.o.d"
  "test_synthetic"
  "test_synthetic.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/test_synthetic.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
