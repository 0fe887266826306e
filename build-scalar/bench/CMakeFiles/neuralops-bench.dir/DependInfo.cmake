
# Consider dependencies only in project.
set(CMAKE_DEPENDS_IN_PROJECT_ONLY OFF)

# The set of languages for which implicit dependencies are needed:
set(CMAKE_DEPENDS_LANGUAGES
  )

# The set of dependency files which are needed:
set(CMAKE_DEPENDS_DEPENDENCY_FILES
  "/work/wt/perf/bench/bench_audit.c" "bench/CMakeFiles/neuralops-bench.dir/bench_audit.c.o" "gcc" "bench/CMakeFiles/neuralops-bench.dir/bench_audit.c.o.d"
  "/work/wt/perf/bench/bench_detect.c" "bench/CMakeFiles/neuralops-bench.dir/bench_detect.c.o" "gcc" "bench/CMakeFiles/neuralops-bench.dir/bench_detect.c.o.d"
  "/work/wt/perf/bench/bench_http.c" "bench/CMakeFiles/neuralops-bench.dir/bench_http.c.o" "gcc" "bench/CMakeFiles/neuralops-bench.dir/bench_http.c.o.d"
  "/work/wt/perf/bench/bench_ingest.c" "bench/CMakeFiles/neuralops-bench.dir/bench_ingest.c.o" "gcc" "bench/CMakeFiles/neuralops-bench.dir/bench_ingest.c.o.d"
  "/work/wt/perf/bench/bench_main.c" "bench/CMakeFiles/neuralops-bench.dir/bench_main.c.o" "gcc" "bench/CMakeFiles/neuralops-bench.dir/bench_main.c.o.d"
  "/work/wt/perf/bench/bench_recommend.c" "bench/CMakeFiles/neuralops-bench.dir/bench_recommend.c.o" "gcc" "bench/CMakeFiles/neuralops-bench.dir/bench_recommend.c.o.d"
  "/work/wt/perf/bench/bench_vector.c" "bench/CMakeFiles/neuralops-bench.dir/bench_vector.c.o" "gcc" "bench/CMakeFiles/neuralops-bench.dir/bench_vector.c.o.d"
  )

# Targets to which this target links.
set(CMAKE_TARGET_LINKED_INFO_FILES
  "/work/wt/perf/build-scalar/synth/CMakeFiles/nops_synth.dir/DependInfo.cmake"
  "/work/wt/perf/build-scalar/orchestrate/CMakeFiles/nops_orchestrate.dir/DependInfo.cmake"
  "/work/wt/perf/build-scalar/api/CMakeFiles/nops_api.dir/DependInfo.cmake"
  "/work/wt/perf/build-scalar/recommend/CMakeFiles/nops_recommend.dir/DependInfo.cmake"
  "/work/wt/perf/build-scalar/vector/CMakeFiles/nops_vector.dir/DependInfo.cmake"
  "/work/wt/perf/build-scalar/ingest/CMakeFiles/nops_ingest.dir/DependInfo.cmake"
  "/work/wt/perf/build-scalar/detect/CMakeFiles/nops_detect.dir/DependInfo.cmake"
  "/work/wt/perf/build-scalar/core/CMakeFiles/nops_core.dir/DependInfo.cmake"
  "/work/wt/perf/build-scalar/parse/CMakeFiles/nops_parse.dir/DependInfo.cmake"
  "/work/wt/perf/build-scalar/correlate/CMakeFiles/nops_correlate.dir/DependInfo.cmake"
  "/work/wt/perf/build-scalar/sinks/CMakeFiles/nops_sinks.dir/DependInfo.cmake"
  "/work/wt/perf/build-scalar/kafka/CMakeFiles/nops_kafka.dir/DependInfo.cmake"
  "/work/wt/perf/build-scalar/pg/CMakeFiles/nops_pg.dir/DependInfo.cmake"
  "/work/wt/perf/build-scalar/api/CMakeFiles/nops_auth.dir/DependInfo.cmake"
  )

# Fortran module output directory.
set(CMAKE_Fortran_TARGET_MODULE_DIR "")
