
# Consider dependencies only in project.
set(CMAKE_DEPENDS_IN_PROJECT_ONLY OFF)

# The set of languages for which implicit dependencies are needed:
set(CMAKE_DEPENDS_LANGUAGES
  )

# The set of dependency files which are needed:
set(CMAKE_DEPENDS_DEPENDENCY_FILES
  "/work/wt/perf/api/guard.c" "api/CMakeFiles/nops_api.dir/guard.c.o" "gcc" "api/CMakeFiles/nops_api.dir/guard.c.o.d"
  "/work/wt/perf/api/handlers.c" "api/CMakeFiles/nops_api.dir/handlers.c.o" "gcc" "api/CMakeFiles/nops_api.dir/handlers.c.o.d"
  "/work/wt/perf/api/ingest.c" "api/CMakeFiles/nops_api.dir/ingest.c.o" "gcc" "api/CMakeFiles/nops_api.dir/ingest.c.o.d"
  "/work/wt/perf/api/metrics.c" "api/CMakeFiles/nops_api.dir/metrics.c.o" "gcc" "api/CMakeFiles/nops_api.dir/metrics.c.o.d"
  "/work/wt/perf/build-scalar/api/nops__dashboard_html.c" "api/CMakeFiles/nops_api.dir/nops__dashboard_html.c.o" "gcc" "api/CMakeFiles/nops_api.dir/nops__dashboard_html.c.o.d"
  "/work/wt/perf/build-scalar/api/nops__openapi_json.c" "api/CMakeFiles/nops_api.dir/nops__openapi_json.c.o" "gcc" "api/CMakeFiles/nops_api.dir/nops__openapi_json.c.o.d"
  "/work/wt/perf/api/orchestrate.c" "api/CMakeFiles/nops_api.dir/orchestrate.c.o" "gcc" "api/CMakeFiles/nops_api.dir/orchestrate.c.o.d"
  "/work/wt/perf/api/prom.c" "api/CMakeFiles/nops_api.dir/prom.c.o" "gcc" "api/CMakeFiles/nops_api.dir/prom.c.o.d"
  "/work/wt/perf/api/recommend.c" "api/CMakeFiles/nops_api.dir/recommend.c.o" "gcc" "api/CMakeFiles/nops_api.dir/recommend.c.o.d"
  "/work/wt/perf/api/server.c" "api/CMakeFiles/nops_api.dir/server.c.o" "gcc" "api/CMakeFiles/nops_api.dir/server.c.o.d"
  "/work/wt/perf/api/store.c" "api/CMakeFiles/nops_api.dir/store.c.o" "gcc" "api/CMakeFiles/nops_api.dir/store.c.o.d"
  )

# Targets to which this target links.
set(CMAKE_TARGET_LINKED_INFO_FILES
  "/work/wt/perf/build-scalar/recommend/CMakeFiles/nops_recommend.dir/DependInfo.cmake"
  "/work/wt/perf/build-scalar/orchestrate/CMakeFiles/nops_orchestrate.dir/DependInfo.cmake"
  "/work/wt/perf/build-scalar/ingest/CMakeFiles/nops_ingest.dir/DependInfo.cmake"
  "/work/wt/perf/build-scalar/sinks/CMakeFiles/nops_sinks.dir/DependInfo.cmake"
  "/work/wt/perf/build-scalar/api/CMakeFiles/nops_auth.dir/DependInfo.cmake"
  "/work/wt/perf/build-scalar/kafka/CMakeFiles/nops_kafka.dir/DependInfo.cmake"
  "/work/wt/perf/build-scalar/vector/CMakeFiles/nops_vector.dir/DependInfo.cmake"
  "/work/wt/perf/build-scalar/pg/CMakeFiles/nops_pg.dir/DependInfo.cmake"
  "/work/wt/perf/build-scalar/parse/CMakeFiles/nops_parse.dir/DependInfo.cmake"
  "/work/wt/perf/build-scalar/correlate/CMakeFiles/nops_correlate.dir/DependInfo.cmake"
  "/work/wt/perf/build-scalar/detect/CMakeFiles/nops_detect.dir/DependInfo.cmake"
  "/work/wt/perf/build-scalar/core/CMakeFiles/nops_core.dir/DependInfo.cmake"
  )

# Fortran module output directory.
set(CMAKE_Fortran_TARGET_MODULE_DIR "")
