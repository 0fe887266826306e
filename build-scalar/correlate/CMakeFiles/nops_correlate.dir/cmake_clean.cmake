file(REMOVE_RECURSE
  "CMakeFiles/nops_correlate.dir/correlate.c.o"
  "CMakeFiles/nops_correlate.dir/correlate.c.o.d"
  "libnops_correlate.a"
  "libnops_correlate.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/nops_correlate.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
