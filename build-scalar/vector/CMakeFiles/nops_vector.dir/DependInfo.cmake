
# Consider dependencies only in project.
set(CMAKE_DEPENDS_IN_PROJECT_ONLY OFF)

# The set of languages for which implicit dependencies are needed:
set(CMAKE_DEPENDS_LANGUAGES
  )

# The set of dependency files which are needed:
set(CMAKE_DEPENDS_DEPENDENCY_FILES
  "/work/wt/perf/vector/embed.c" "vector/CMakeFiles/nops_vector.dir/embed.c.o" "gcc" "vector/CMakeFiles/nops_vector.dir/embed.c.o.d"
  "/work/wt/perf/vector/histdir.c" "vector/CMakeFiles/nops_vector.dir/histdir.c.o" "gcc" "vector/CMakeFiles/nops_vector.dir/histdir.c.o.d"
  "/work/wt/perf/vector/histdir_open.c" "vector/CMakeFiles/nops_vector.dir/histdir_open.c.o" "gcc" "vector/CMakeFiles/nops_vector.dir/histdir_open.c.o.d"
  "/work/wt/perf/vector/redact.c" "vector/CMakeFiles/nops_vector.dir/redact.c.o" "gcc" "vector/CMakeFiles/nops_vector.dir/redact.c.o.d"
  "/work/wt/perf/vector/redact_pii.c" "vector/CMakeFiles/nops_vector.dir/redact_pii.c.o" "gcc" "vector/CMakeFiles/nops_vector.dir/redact_pii.c.o.d"
  "/work/wt/perf/vector/redact_rules.c" "vector/CMakeFiles/nops_vector.dir/redact_rules.c.o" "gcc" "vector/CMakeFiles/nops_vector.dir/redact_rules.c.o.d"
  "/work/wt/perf/vector/vectorize.c" "vector/CMakeFiles/nops_vector.dir/vectorize.c.o" "gcc" "vector/CMakeFiles/nops_vector.dir/vectorize.c.o.d"
  "/work/wt/perf/vector/vindex.c" "vector/CMakeFiles/nops_vector.dir/vindex.c.o" "gcc" "vector/CMakeFiles/nops_vector.dir/vindex.c.o.d"
  "/work/wt/perf/vector/faiss_c_shim.cpp" "vector/CMakeFiles/nops_vector.dir/faiss_c_shim.cpp.o" "gcc" "vector/CMakeFiles/nops_vector.dir/faiss_c_shim.cpp.o.d"
  )

# Targets to which this target links.
set(CMAKE_TARGET_LINKED_INFO_FILES
  "/work/wt/perf/build-scalar/core/CMakeFiles/nops_core.dir/DependInfo.cmake"
  "/work/wt/perf/build-scalar/parse/CMakeFiles/nops_parse.dir/DependInfo.cmake"
  )

# Fortran module output directory.
set(CMAKE_Fortran_TARGET_MODULE_DIR "")
