
# Consider dependencies only in project.
set(CMAKE_DEPENDS_IN_PROJECT_ONLY OFF)

# The set of languages for which implicit dependencies are needed:
set(CMAKE_DEPENDS_LANGUAGES
  )

# The set of dependency files which are needed:
set(CMAKE_DEPENDS_DEPENDENCY_FILES
  "/work/wt/perf/detect/dispatch.c" "detect/CMakeFiles/nops_detect.dir/dispatch.c.o" "gcc" "detect/CMakeFiles/nops_detect.dir/dispatch.c.o.d"
  "/work/wt/perf/detect/kernel_scalar.c" "detect/CMakeFiles/nops_detect.dir/kernel_scalar.c.o" "gcc" "detect/CMakeFiles/nops_detect.dir/kernel_scalar.c.o.d"
  "/work/wt/perf/detect/registry.c" "detect/CMakeFiles/nops_detect.dir/registry.c.o" "gcc" "detect/CMakeFiles/nops_detect.dir/registry.c.o.d"
  "/work/wt/perf/detect/score.c" "detect/CMakeFiles/nops_detect.dir/score.c.o" "gcc" "detect/CMakeFiles/nops_detect.dir/score.c.o.d"
  "/work/wt/perf/detect/state.c" "detect/CMakeFiles/nops_detect.dir/state.c.o" "gcc" "detect/CMakeFiles/nops_detect.dir/state.c.o.d"
  )

# Targets to which this target links.
set(CMAKE_TARGET_LINKED_INFO_FILES
  "/work/wt/perf/build-scalar/core/CMakeFiles/nops_core.dir/DependInfo.cmake"
  )

# Fortran module output directory.
set(CMAKE_Fortran_TARGET_MODULE_DIR "")
