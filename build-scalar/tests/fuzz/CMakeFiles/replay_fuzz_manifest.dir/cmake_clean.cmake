file(REMOVE_RECURSE
  "CMakeFiles/replay_fuzz_manifest.dir/fuzz_manifest.c.o"
  "CMakeFiles/replay_fuzz_manifest.dir/fuzz_manifest.c.o.d"
  "CMakeFiles/replay_fuzz_manifest.dir/replay.c.o"
  "CMakeFiles/replay_fuzz_manifest.dir/replay.c.o.d"
  "replay_fuzz_manifest"
  "replay_fuzz_manifest.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/replay_fuzz_manifest.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
