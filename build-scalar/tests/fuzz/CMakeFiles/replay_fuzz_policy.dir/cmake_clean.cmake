file(REMOVE_RECURSE
  "CMakeFiles/replay_fuzz_policy.dir/fuzz_policy.c.o"
  "CMakeFiles/replay_fuzz_policy.dir/fuzz_policy.c.o.d"
  "CMakeFiles/replay_fuzz_policy.dir/replay.c.o"
  "CMakeFiles/replay_fuzz_policy.dir/replay.c.o.d"
  "replay_fuzz_policy"
  "replay_fuzz_policy.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/replay_fuzz_policy.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
