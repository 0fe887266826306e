file(REMOVE_RECURSE
  "CMakeFiles/nops_recommend.dir/recommend.c.o"
  "CMakeFiles/nops_recommend.dir/recommend.c.o.d"
  "libnops_recommend.a"
  "libnops_recommend.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/nops_recommend.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
