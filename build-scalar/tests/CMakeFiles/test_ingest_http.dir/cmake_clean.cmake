file(REMOVE_RECURSE
  "CMakeFiles/test_ingest_http.dir/api/test_ingest.c.o"
  "CMakeFiles/test_ingest_http.dir/api/test_ingest.c.o.d"
  "test_ingest_http"
  "test_ingest_http.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/test_ingest_http.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
