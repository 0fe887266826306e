
# Consider dependencies only in project.
set(CMAKE_DEPENDS_IN_PROJECT_ONLY OFF)

# The set of languages for which implicit dependencies are needed:
set(CMAKE_DEPENDS_LANGUAGES
  )

# The set of dependency files which are needed:
set(CMAKE_DEPENDS_DEPENDENCY_FILES
  "/work/wt/perf/core/alloc.c" "core/CMakeFiles/nops_core.dir/alloc.c.o" "gcc" "core/CMakeFiles/nops_core.dir/alloc.c.o.d"
  "/work/wt/perf/core/config.c" "core/CMakeFiles/nops_core.dir/config.c.o" "gcc" "core/CMakeFiles/nops_core.dir/config.c.o.d"
  "/work/wt/perf/core/err.c" "core/CMakeFiles/nops_core.dir/err.c.o" "gcc" "core/CMakeFiles/nops_core.dir/err.c.o.d"
  "/work/wt/perf/core/files.c" "core/CMakeFiles/nops_core.dir/files.c.o" "gcc" "core/CMakeFiles/nops_core.dir/files.c.o.d"
  "/work/wt/perf/core/log.c" "core/CMakeFiles/nops_core.dir/log.c.o" "gcc" "core/CMakeFiles/nops_core.dir/log.c.o.d"
  "/work/wt/perf/core/secret.c" "core/CMakeFiles/nops_core.dir/secret.c.o" "gcc" "core/CMakeFiles/nops_core.dir/secret.c.o.d"
  "/work/wt/perf/core/text.c" "core/CMakeFiles/nops_core.dir/text.c.o" "gcc" "core/CMakeFiles/nops_core.dir/text.c.o.d"
  )

# Targets to which this target links.
set(CMAKE_TARGET_LINKED_INFO_FILES
  )

# Fortran module output directory.
set(CMAKE_Fortran_TARGET_MODULE_DIR "")
