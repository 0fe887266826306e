
# Consider dependencies only in project.
set(CMAKE_DEPENDS_IN_PROJECT_ONLY OFF)

# The set of languages for which implicit dependencies are needed:
set(CMAKE_DEPENDS_LANGUAGES
  )

# The set of dependency files which are needed:
set(CMAKE_DEPENDS_DEPENDENCY_FILES
  "/work/wt/perf/orchestrate/audit.c" "orchestrate/CMakeFiles/nops_orchestrate.dir/audit.c.o" "gcc" "orchestrate/CMakeFiles/nops_orchestrate.dir/audit.c.o.d"
  "/work/wt/perf/orchestrate/audit_chain.c" "orchestrate/CMakeFiles/nops_orchestrate.dir/audit_chain.c.o" "gcc" "orchestrate/CMakeFiles/nops_orchestrate.dir/audit_chain.c.o.d"
  "/work/wt/perf/orchestrate/audit_head.c" "orchestrate/CMakeFiles/nops_orchestrate.dir/audit_head.c.o" "gcc" "orchestrate/CMakeFiles/nops_orchestrate.dir/audit_head.c.o.d"
  "/work/wt/perf/orchestrate/audit_verify.c" "orchestrate/CMakeFiles/nops_orchestrate.dir/audit_verify.c.o" "gcc" "orchestrate/CMakeFiles/nops_orchestrate.dir/audit_verify.c.o.d"
  "/work/wt/perf/orchestrate/kstep.c" "orchestrate/CMakeFiles/nops_orchestrate.dir/kstep.c.o" "gcc" "orchestrate/CMakeFiles/nops_orchestrate.dir/kstep.c.o.d"
  "/work/wt/perf/orchestrate/orchestrator.c" "orchestrate/CMakeFiles/nops_orchestrate.dir/orchestrator.c.o" "gcc" "orchestrate/CMakeFiles/nops_orchestrate.dir/orchestrator.c.o.d"
  "/work/wt/perf/orchestrate/playbook.c" "orchestrate/CMakeFiles/nops_orchestrate.dir/playbook.c.o" "gcc" "orchestrate/CMakeFiles/nops_orchestrate.dir/playbook.c.o.d"
  "/work/wt/perf/orchestrate/policy.c" "orchestrate/CMakeFiles/nops_orchestrate.dir/policy.c.o" "gcc" "orchestrate/CMakeFiles/nops_orchestrate.dir/policy.c.o.d"
  "/work/wt/perf/orchestrate/records.c" "orchestrate/CMakeFiles/nops_orchestrate.dir/records.c.o" "gcc" "orchestrate/CMakeFiles/nops_orchestrate.dir/records.c.o.d"
  "/work/wt/perf/orchestrate/records_files.c" "orchestrate/CMakeFiles/nops_orchestrate.dir/records_files.c.o" "gcc" "orchestrate/CMakeFiles/nops_orchestrate.dir/records_files.c.o.d"
  "/work/wt/perf/orchestrate/runner.c" "orchestrate/CMakeFiles/nops_orchestrate.dir/runner.c.o" "gcc" "orchestrate/CMakeFiles/nops_orchestrate.dir/runner.c.o.d"
  "/work/wt/perf/orchestrate/seal.c" "orchestrate/CMakeFiles/nops_orchestrate.dir/seal.c.o" "gcc" "orchestrate/CMakeFiles/nops_orchestrate.dir/seal.c.o.d"
  "/work/wt/perf/orchestrate/steps.c" "orchestrate/CMakeFiles/nops_orchestrate.dir/steps.c.o" "gcc" "orchestrate/CMakeFiles/nops_orchestrate.dir/steps.c.o.d"
  )

# Targets to which this target links.
set(CMAKE_TARGET_LINKED_INFO_FILES
  "/work/wt/perf/build-scalar/core/CMakeFiles/nops_core.dir/DependInfo.cmake"
  "/work/wt/perf/build-scalar/pg/CMakeFiles/nops_pg.dir/DependInfo.cmake"
  "/work/wt/perf/build-scalar/kafka/CMakeFiles/nops_kafka.dir/DependInfo.cmake"
  )

# Fortran module output directory.
set(CMAKE_Fortran_TARGET_MODULE_DIR "")
