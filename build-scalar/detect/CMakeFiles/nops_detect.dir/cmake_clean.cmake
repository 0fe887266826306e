file(REMOVE_RECURSE
  "CMakeFiles/nops_detect.dir/dispatch.c.o"
  "CMakeFiles/nops_detect.dir/dispatch.c.o.d"
  "CMakeFiles/nops_detect.dir/kernel_scalar.c.o"
  "CMakeFiles/nops_detect.dir/kernel_scalar.c.o.d"
  "CMakeFiles/nops_detect.dir/registry.c.o"
  "CMakeFiles/nops_detect.dir/registry.c.o.d"
  "CMakeFiles/nops_detect.dir/score.c.o"
  "CMakeFiles/nops_detect.dir/score.c.o.d"
  "CMakeFiles/nops_detect.dir/state.c.o"
  "CMakeFiles/nops_detect.dir/state.c.o.d"
  "libnops_detect.a"
  "libnops_detect.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/nops_detect.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
