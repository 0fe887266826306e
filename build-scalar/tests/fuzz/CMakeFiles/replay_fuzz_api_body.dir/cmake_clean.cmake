file(REMOVE_RECURSE
  "CMakeFiles/replay_fuzz_api_body.dir/fuzz_api_body.c.o"
  "CMakeFiles/replay_fuzz_api_body.dir/fuzz_api_body.c.o.d"
  "CMakeFiles/replay_fuzz_api_body.dir/replay.c.o"
  "CMakeFiles/replay_fuzz_api_body.dir/replay.c.o.d"
  "replay_fuzz_api_body"
  "replay_fuzz_api_body.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/replay_fuzz_api_body.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
