file(REMOVE_RECURSE
  "CMakeFiles/nops_synth.dir/history.c.o"
  "CMakeFiles/nops_synth.dir/history.c.o.d"
  "CMakeFiles/nops_synth.dir/loadgen.c.o"
  "CMakeFiles/nops_synth.dir/loadgen.c.o.d"
  "libnops_synth.a"
  "libnops_synth.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/nops_synth.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
