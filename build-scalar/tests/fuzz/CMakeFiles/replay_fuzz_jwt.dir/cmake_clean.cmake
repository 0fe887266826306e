file(REMOVE_RECURSE
  "CMakeFiles/replay_fuzz_jwt.dir/fuzz_jwt.c.o"
  "CMakeFiles/replay_fuzz_jwt.dir/fuzz_jwt.c.o.d"
  "CMakeFiles/replay_fuzz_jwt.dir/replay.c.o"
  "CMakeFiles/replay_fuzz_jwt.dir/replay.c.o.d"
  "replay_fuzz_jwt"
  "replay_fuzz_jwt.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/replay_fuzz_jwt.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
