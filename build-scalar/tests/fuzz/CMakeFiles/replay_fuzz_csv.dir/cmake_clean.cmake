file(REMOVE_RECURSE
  "CMakeFiles/replay_fuzz_csv.dir/fuzz_csv.c.o"
  "CMakeFiles/replay_fuzz_csv.dir/fuzz_csv.c.o.d"
  "CMakeFiles/replay_fuzz_csv.dir/replay.c.o"
  "CMakeFiles/replay_fuzz_csv.dir/replay.c.o.d"
  "replay_fuzz_csv"
  "replay_fuzz_csv.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/replay_fuzz_csv.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
