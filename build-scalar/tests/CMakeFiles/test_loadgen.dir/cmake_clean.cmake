file(REMOVE_RECURSE
  "CMakeFiles/test_loadgen.dir/app/test_loadgen.c.o"
  "CMakeFiles/test_loadgen.dir/app/test_loadgen.c.o.d"
  "test_loadgen"
  "test_loadgen.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/test_loadgen.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
