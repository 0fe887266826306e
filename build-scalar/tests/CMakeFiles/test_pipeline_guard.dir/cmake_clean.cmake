file(REMOVE_RECURSE
  "CMakeFiles/test_pipeline_guard.dir/ingest/test_pipeline_guard.c.o"
  "CMakeFiles/test_pipeline_guard.dir/ingest/test_pipeline_guard.c.o.d"
  "test_pipeline_guard"
  "test_pipeline_guard.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/test_pipeline_guard.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
