file(REMOVE_RECURSE
  "CMakeFiles/nops_sinks.dir/jsonl.c.o"
  "CMakeFiles/nops_sinks.dir/jsonl.c.o.d"
  "CMakeFiles/nops_sinks.dir/kafka.c.o"
  "CMakeFiles/nops_sinks.dir/kafka.c.o.d"
  "CMakeFiles/nops_sinks.dir/postgres.c.o"
  "CMakeFiles/nops_sinks.dir/postgres.c.o.d"
  "CMakeFiles/nops_sinks.dir/sinks.c.o"
  "CMakeFiles/nops_sinks.dir/sinks.c.o.d"
  "libnops_sinks.a"
  "libnops_sinks.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/nops_sinks.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
