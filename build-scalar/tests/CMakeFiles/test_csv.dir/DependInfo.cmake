
# Consider dependencies only in project.
set(CMAKE_DEPENDS_IN_PROJECT_ONLY OFF)

# The set of languages for which implicit dependencies are needed:
set(CMAKE_DEPENDS_LANGUAGES
  )

# The set of dependency files which are needed:
set(CMAKE_DEPENDS_DEPENDENCY_FILES
  "/work/wt/perf/tests/parse/test_csv.c" "tests/CMakeFiles/test_csv.dir/parse/test_csv.c.o" "gcc" "tests/CMakeFiles/test_csv.dir/parse/test_csv.c.o.d"
  )

# Targets to which this target links.
set(CMAKE_TARGET_LINKED_INFO_FILES
  "/work/wt/perf/build-scalar/parse/CMakeFiles/nops_parse.dir/DependInfo.cmake"
  "/work/wt/perf/build-scalar/core/CMakeFiles/nops_core.dir/DependInfo.cmake"
  )

# Fortran module output directory.
set(CMAKE_Fortran_TARGET_MODULE_DIR "")
