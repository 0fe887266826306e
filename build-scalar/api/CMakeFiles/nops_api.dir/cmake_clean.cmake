file(REMOVE_RECURSE
  "CMakeFiles/nops_api.dir/guard.c.o"
  "CMakeFiles/nops_api.dir/guard.c.o.d"
  "CMakeFiles/nops_api.dir/handlers.c.o"
  "CMakeFiles/nops_api.dir/handlers.c.o.d"
  "CMakeFiles/nops_api.dir/ingest.c.o"
  "CMakeFiles/nops_api.dir/ingest.c.o.d"
  "CMakeFiles/nops_api.dir/metrics.c.o"
  "CMakeFiles/nops_api.dir/metrics.c.o.d"
  "CMakeFiles/nops_api.dir/nops__dashboard_html.c.o"
  "CMakeFiles/nops_api.dir/nops__dashboard_html.c.o.d"
  "CMakeFiles/nops_api.dir/nops__openapi_json.c.o"
  "CMakeFiles/nops_api.dir/nops__openapi_json.c.o.d"
  "CMakeFiles/nops_api.dir/orchestrate.c.o"
  "CMakeFiles/nops_api.dir/orchestrate.c.o.d"
  "CMakeFiles/nops_api.dir/prom.c.o"
  "CMakeFiles/nops_api.dir/prom.c.o.d"
  "CMakeFiles/nops_api.dir/recommend.c.o"
  "CMakeFiles/nops_api.dir/recommend.c.o.d"
  "CMakeFiles/nops_api.dir/server.c.o"
  "CMakeFiles/nops_api.dir/server.c.o.d"
  "CMakeFiles/nops_api.dir/store.c.o"
  "CMakeFiles/nops_api.dir/store.c.o.d"
  "libnops_api.a"
  "libnops_api.pdb"
  "nops__dashboard_html.c"
  "nops__openapi_json.c"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/nops_api.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
