file(REMOVE_RECURSE
  "CMakeFiles/nops_ingest.dir/lag.c.o"
  "CMakeFiles/nops_ingest.dir/lag.c.o.d"
  "CMakeFiles/nops_ingest.dir/pipeline.c.o"
  "CMakeFiles/nops_ingest.dir/pipeline.c.o.d"
  "CMakeFiles/nops_ingest.dir/poller.c.o"
  "CMakeFiles/nops_ingest.dir/poller.c.o.d"
  "CMakeFiles/nops_ingest.dir/series.c.o"
  "CMakeFiles/nops_ingest.dir/series.c.o.d"
  "CMakeFiles/nops_ingest.dir/snapshot.c.o"
  "CMakeFiles/nops_ingest.dir/snapshot.c.o.d"
  "libnops_ingest.a"
  "libnops_ingest.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/nops_ingest.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
