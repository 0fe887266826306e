file(REMOVE_RECURSE
  "CMakeFiles/test_series.dir/ingest/test_series.c.o"
  "CMakeFiles/test_series.dir/ingest/test_series.c.o.d"
  "test_series"
  "test_series.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/test_series.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
