
# Consider dependencies only in project.
set(CMAKE_DEPENDS_IN_PROJECT_ONLY OFF)

# The set of languages for which implicit dependencies are needed:
set(CMAKE_DEPENDS_LANGUAGES
  )

# The set of dependency files which are needed:
set(CMAKE_DEPENDS_DEPENDENCY_FILES
  "/work/wt/perf/tests/fuzz/fuzz_policy.c" "tests/fuzz/CMakeFiles/replay_fuzz_policy.dir/fuzz_policy.c.o" "gcc" "tests/fuzz/CMakeFiles/replay_fuzz_policy.dir/fuzz_policy.c.o.d"
  "/work/wt/perf/tests/fuzz/replay.c" "tests/fuzz/CMakeFiles/replay_fuzz_policy.dir/replay.c.o" "gcc" "tests/fuzz/CMakeFiles/replay_fuzz_policy.dir/replay.c.o.d"
  )

# Targets to which this target links.
set(CMAKE_TARGET_LINKED_INFO_FILES
  "/work/wt/perf/build-scalar/orchestrate/CMakeFiles/nops_orchestrate.dir/DependInfo.cmake"
  "/work/wt/perf/build-scalar/pg/CMakeFiles/nops_pg.dir/DependInfo.cmake"
  "/work/wt/perf/build-scalar/kafka/CMakeFiles/nops_kafka.dir/DependInfo.cmake"
  "/work/wt/perf/build-scalar/core/CMakeFiles/nops_core.dir/DependInfo.cmake"
  )

# Fortran module output directory.
set(CMAKE_Fortran_TARGET_MODULE_DIR "")
