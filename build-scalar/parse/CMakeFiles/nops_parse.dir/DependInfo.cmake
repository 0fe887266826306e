
# Consider dependencies only in project.
set(CMAKE_DEPENDS_IN_PROJECT_ONLY OFF)

# The set of languages for which implicit dependencies are needed:
set(CMAKE_DEPENDS_LANGUAGES
  )

# The set of dependency files which are needed:
set(CMAKE_DEPENDS_DEPENDENCY_FILES
  "/work/wt/perf/parse/csv.c" "parse/CMakeFiles/nops_parse.dir/csv.c.o" "gcc" "parse/CMakeFiles/nops_parse.dir/csv.c.o.d"
  "/work/wt/perf/parse/jsonfmt.c" "parse/CMakeFiles/nops_parse.dir/jsonfmt.c.o" "gcc" "parse/CMakeFiles/nops_parse.dir/jsonfmt.c.o.d"
  "/work/wt/perf/parse/lineproto.c" "parse/CMakeFiles/nops_parse.dir/lineproto.c.o" "gcc" "parse/CMakeFiles/nops_parse.dir/lineproto.c.o.d"
  "/work/wt/perf/parse/timestamp.c" "parse/CMakeFiles/nops_parse.dir/timestamp.c.o" "gcc" "parse/CMakeFiles/nops_parse.dir/timestamp.c.o.d"
  )

# Targets to which this target links.
set(CMAKE_TARGET_LINKED_INFO_FILES
  "/work/wt/perf/build-scalar/core/CMakeFiles/nops_core.dir/DependInfo.cmake"
  )

# Fortran module output directory.
set(CMAKE_Fortran_TARGET_MODULE_DIR "")
