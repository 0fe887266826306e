file(REMOVE_RECURSE
  "CMakeFiles/replay_fuzz_redact.dir/fuzz_redact.c.o"
  "CMakeFiles/replay_fuzz_redact.dir/fuzz_redact.c.o.d"
  "CMakeFiles/replay_fuzz_redact.dir/replay.c.o"
  "CMakeFiles/replay_fuzz_redact.dir/replay.c.o.d"
  "replay_fuzz_redact"
  "replay_fuzz_redact.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/replay_fuzz_redact.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
