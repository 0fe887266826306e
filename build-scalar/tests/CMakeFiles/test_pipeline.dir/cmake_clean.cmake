file(REMOVE_RECURSE
  "CMakeFiles/test_pipeline.dir/ingest/test_pipeline.c.o"
  "CMakeFiles/test_pipeline.dir/ingest/test_pipeline.c.o.d"
  "test_pipeline"
  "test_pipeline.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/test_pipeline.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
