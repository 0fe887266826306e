file(REMOVE_RECURSE
  "CMakeFiles/replay_fuzz_config.dir/fuzz_config.c.o"
  "CMakeFiles/replay_fuzz_config.dir/fuzz_config.c.o.d"
  "CMakeFiles/replay_fuzz_config.dir/replay.c.o"
  "CMakeFiles/replay_fuzz_config.dir/replay.c.o.d"
  "replay_fuzz_config"
  "replay_fuzz_config.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/replay_fuzz_config.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
