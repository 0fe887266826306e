
# Consider dependencies only in project.
set(CMAKE_DEPENDS_IN_PROJECT_ONLY OFF)

# The set of languages for which implicit dependencies are needed:
set(CMAKE_DEPENDS_LANGUAGES
  )

# The set of dependency files which are needed:
set(CMAKE_DEPENDS_DEPENDENCY_FILES
  "/work/wt/perf/tests/ingest/test_pipeline.c" "tests/CMakeFiles/test_pipeline.dir/ingest/test_pipeline.c.o" "gcc" "tests/CMakeFiles/test_pipeline.dir/ingest/test_pipeline.c.o.d"
  )

# Targets to which this target links.
set(CMAKE_TARGET_LINKED_INFO_FILES
  "/work/wt/perf/build-scalar/ingest/CMakeFiles/nops_ingest.dir/DependInfo.cmake"
  "/work/wt/perf/build-scalar/parse/CMakeFiles/nops_parse.dir/DependInfo.cmake"
  "/work/wt/perf/build-scalar/correlate/CMakeFiles/nops_correlate.dir/DependInfo.cmake"
  "/work/wt/perf/build-scalar/sinks/CMakeFiles/nops_sinks.dir/DependInfo.cmake"
  "/work/wt/perf/build-scalar/kafka/CMakeFiles/nops_kafka.dir/DependInfo.cmake"
  "/work/wt/perf/build-scalar/detect/CMakeFiles/nops_detect.dir/DependInfo.cmake"
  "/work/wt/perf/build-scalar/pg/CMakeFiles/nops_pg.dir/DependInfo.cmake"
  "/work/wt/perf/build-scalar/core/CMakeFiles/nops_core.dir/DependInfo.cmake"
  )

# Fortran module output directory.
set(CMAKE_Fortran_TARGET_MODULE_DIR "")
