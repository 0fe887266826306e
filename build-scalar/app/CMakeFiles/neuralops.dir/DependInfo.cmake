
# Consider dependencies only in project.
set(CMAKE_DEPENDS_IN_PROJECT_ONLY OFF)

# The set of languages for which implicit dependencies are needed:
set(CMAKE_DEPENDS_LANGUAGES
  )

# The set of dependency files which are needed:
set(CMAKE_DEPENDS_DEPENDENCY_FILES
  "/work/wt/perf/app/cli.c" "app/CMakeFiles/neuralops.dir/cli.c.o" "gcc" "app/CMakeFiles/neuralops.dir/cli.c.o.d"
  "/work/wt/perf/app/cmd_analyze.c" "app/CMakeFiles/neuralops.dir/cmd_analyze.c.o" "gcc" "app/CMakeFiles/neuralops.dir/cmd_analyze.c.o.d"
  "/work/wt/perf/app/cmd_audit.c" "app/CMakeFiles/neuralops.dir/cmd_audit.c.o" "gcc" "app/CMakeFiles/neuralops.dir/cmd_audit.c.o.d"
  "/work/wt/perf/app/cmd_config.c" "app/CMakeFiles/neuralops.dir/cmd_config.c.o" "gcc" "app/CMakeFiles/neuralops.dir/cmd_config.c.o.d"
  "/work/wt/perf/app/cmd_loadgen.c" "app/CMakeFiles/neuralops.dir/cmd_loadgen.c.o" "gcc" "app/CMakeFiles/neuralops.dir/cmd_loadgen.c.o.d"
  "/work/wt/perf/app/cmd_playbook.c" "app/CMakeFiles/neuralops.dir/cmd_playbook.c.o" "gcc" "app/CMakeFiles/neuralops.dir/cmd_playbook.c.o.d"
  "/work/wt/perf/app/cmd_recommend.c" "app/CMakeFiles/neuralops.dir/cmd_recommend.c.o" "gcc" "app/CMakeFiles/neuralops.dir/cmd_recommend.c.o.d"
  "/work/wt/perf/app/cmd_serve.c" "app/CMakeFiles/neuralops.dir/cmd_serve.c.o" "gcc" "app/CMakeFiles/neuralops.dir/cmd_serve.c.o.d"
  "/work/wt/perf/app/cmd_vectorize.c" "app/CMakeFiles/neuralops.dir/cmd_vectorize.c.o" "gcc" "app/CMakeFiles/neuralops.dir/cmd_vectorize.c.o.d"
  "/work/wt/perf/app/demo/cmd_demo.c" "app/CMakeFiles/neuralops.dir/demo/cmd_demo.c.o" "gcc" "app/CMakeFiles/neuralops.dir/demo/cmd_demo.c.o.d"
  "/work/wt/perf/app/demo/demo_history.c" "app/CMakeFiles/neuralops.dir/demo/demo_history.c.o" "gcc" "app/CMakeFiles/neuralops.dir/demo/demo_history.c.o.d"
  "/work/wt/perf/app/demo/demo_playbooks.c" "app/CMakeFiles/neuralops.dir/demo/demo_playbooks.c.o" "gcc" "app/CMakeFiles/neuralops.dir/demo/demo_playbooks.c.o.d"
  "/work/wt/perf/app/engine.c" "app/CMakeFiles/neuralops.dir/engine.c.o" "gcc" "app/CMakeFiles/neuralops.dir/engine.c.o.d"
  "/work/wt/perf/app/main.c" "app/CMakeFiles/neuralops.dir/main.c.o" "gcc" "app/CMakeFiles/neuralops.dir/main.c.o.d"
  "/work/wt/perf/build-scalar/app/nops__demo_fleet.c" "app/CMakeFiles/neuralops.dir/nops__demo_fleet.c.o" "gcc" "app/CMakeFiles/neuralops.dir/nops__demo_fleet.c.o.d"
  "/work/wt/perf/build-scalar/app/nops__demo_playbooks.c" "app/CMakeFiles/neuralops.dir/nops__demo_playbooks.c.o" "gcc" "app/CMakeFiles/neuralops.dir/nops__demo_playbooks.c.o.d"
  "/work/wt/perf/build-scalar/app/nops__demo_policy.c" "app/CMakeFiles/neuralops.dir/nops__demo_policy.c.o" "gcc" "app/CMakeFiles/neuralops.dir/nops__demo_policy.c.o.d"
  )

# Targets to which this target links.
set(CMAKE_TARGET_LINKED_INFO_FILES
  "/work/wt/perf/build-scalar/synth/CMakeFiles/nops_synth.dir/DependInfo.cmake"
  "/work/wt/perf/build-scalar/orchestrate/CMakeFiles/nops_orchestrate.dir/DependInfo.cmake"
  "/work/wt/perf/build-scalar/api/CMakeFiles/nops_api.dir/DependInfo.cmake"
  "/work/wt/perf/build-scalar/recommend/CMakeFiles/nops_recommend.dir/DependInfo.cmake"
  "/work/wt/perf/build-scalar/vector/CMakeFiles/nops_vector.dir/DependInfo.cmake"
  "/work/wt/perf/build-scalar/ingest/CMakeFiles/nops_ingest.dir/DependInfo.cmake"
  "/work/wt/perf/build-scalar/sinks/CMakeFiles/nops_sinks.dir/DependInfo.cmake"
  "/work/wt/perf/build-scalar/detect/CMakeFiles/nops_detect.dir/DependInfo.cmake"
  "/work/wt/perf/build-scalar/core/CMakeFiles/nops_core.dir/DependInfo.cmake"
  "/work/wt/perf/build-scalar/parse/CMakeFiles/nops_parse.dir/DependInfo.cmake"
  "/work/wt/perf/build-scalar/correlate/CMakeFiles/nops_correlate.dir/DependInfo.cmake"
  "/work/wt/perf/build-scalar/pg/CMakeFiles/nops_pg.dir/DependInfo.cmake"
  "/work/wt/perf/build-scalar/kafka/CMakeFiles/nops_kafka.dir/DependInfo.cmake"
  "/work/wt/perf/build-scalar/api/CMakeFiles/nops_auth.dir/DependInfo.cmake"
  )

# Fortran module output directory.
set(CMAKE_Fortran_TARGET_MODULE_DIR "")
