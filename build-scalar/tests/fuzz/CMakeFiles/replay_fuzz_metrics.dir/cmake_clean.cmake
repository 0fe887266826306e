file(REMOVE_RECURSE
  "CMakeFiles/replay_fuzz_metrics.dir/fuzz_metrics.c.o"
  "CMakeFiles/replay_fuzz_metrics.dir/fuzz_metrics.c.o.d"
  "CMakeFiles/replay_fuzz_metrics.dir/replay.c.o"
  "CMakeFiles/replay_fuzz_metrics.dir/replay.c.o.d"
  "replay_fuzz_metrics"
  "replay_fuzz_metrics.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/replay_fuzz_metrics.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
