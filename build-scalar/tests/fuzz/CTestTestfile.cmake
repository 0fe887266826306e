# CMake generated Testfile for 
# Source directory: /work/wt/perf/tests/fuzz
# Build directory: /work/wt/perf/build-scalar/tests/fuzz
# 
# This file includes the relevant testing commands required for 
# testing this directory and lists subdirectories to be tested as well.
add_test([=[replay_fuzz_csv]=] "/work/wt/perf/build-scalar/tests/fuzz/replay_fuzz_csv" "/work/wt/perf/tests/fuzz/corpus/fuzz_csv")
set_tests_properties([=[replay_fuzz_csv]=] PROPERTIES  TIMEOUT "120" _BACKTRACE_TRIPLES "/work/wt/perf/tests/fuzz/CMakeLists.txt;8;add_test;/work/wt/perf/tests/fuzz/CMakeLists.txt;18;nops_fuzz_target;/work/wt/perf/tests/fuzz/CMakeLists.txt;0;")
add_test([=[replay_fuzz_config]=] "/work/wt/perf/build-scalar/tests/fuzz/replay_fuzz_config" "/work/wt/perf/tests/fuzz/corpus/fuzz_config")
set_tests_properties([=[replay_fuzz_config]=] PROPERTIES  TIMEOUT "120" _BACKTRACE_TRIPLES "/work/wt/perf/tests/fuzz/CMakeLists.txt;8;add_test;/work/wt/perf/tests/fuzz/CMakeLists.txt;19;nops_fuzz_target;/work/wt/perf/tests/fuzz/CMakeLists.txt;0;")
add_test([=[replay_fuzz_metrics]=] "/work/wt/perf/build-scalar/tests/fuzz/replay_fuzz_metrics" "/work/wt/perf/tests/fuzz/corpus/fuzz_metrics")
set_tests_properties([=[replay_fuzz_metrics]=] PROPERTIES  TIMEOUT "120" _BACKTRACE_TRIPLES "/work/wt/perf/tests/fuzz/CMakeLists.txt;8;add_test;/work/wt/perf/tests/fuzz/CMakeLists.txt;20;nops_fuzz_target;/work/wt/perf/tests/fuzz/CMakeLists.txt;0;")
add_test([=[replay_fuzz_api_body]=] "/work/wt/perf/build-scalar/tests/fuzz/replay_fuzz_api_body" "/work/wt/perf/tests/fuzz/corpus/fuzz_api_body")
set_tests_properties([=[replay_fuzz_api_body]=] PROPERTIES  TIMEOUT "120" _BACKTRACE_TRIPLES "/work/wt/perf/tests/fuzz/CMakeLists.txt;8;add_test;/work/wt/perf/tests/fuzz/CMakeLists.txt;21;nops_fuzz_target;/work/wt/perf/tests/fuzz/CMakeLists.txt;0;")
add_test([=[replay_fuzz_redact]=] "/work/wt/perf/build-scalar/tests/fuzz/replay_fuzz_redact" "/work/wt/perf/tests/fuzz/corpus/fuzz_redact")
set_tests_properties([=[replay_fuzz_redact]=] PROPERTIES  TIMEOUT "120" _BACKTRACE_TRIPLES "/work/wt/perf/tests/fuzz/CMakeLists.txt;8;add_test;/work/wt/perf/tests/fuzz/CMakeLists.txt;22;nops_fuzz_target;/work/wt/perf/tests/fuzz/CMakeLists.txt;0;")
add_test([=[replay_fuzz_jwt]=] "/work/wt/perf/build-scalar/tests/fuzz/replay_fuzz_jwt" "/work/wt/perf/tests/fuzz/corpus/fuzz_jwt")
set_tests_properties([=[replay_fuzz_jwt]=] PROPERTIES  TIMEOUT "120" _BACKTRACE_TRIPLES "/work/wt/perf/tests/fuzz/CMakeLists.txt;8;add_test;/work/wt/perf/tests/fuzz/CMakeLists.txt;23;nops_fuzz_target;/work/wt/perf/tests/fuzz/CMakeLists.txt;0;")
add_test([=[replay_fuzz_policy]=] "/work/wt/perf/build-scalar/tests/fuzz/replay_fuzz_policy" "/work/wt/perf/tests/fuzz/corpus/fuzz_policy")
set_tests_properties([=[replay_fuzz_policy]=] PROPERTIES  TIMEOUT "120" _BACKTRACE_TRIPLES "/work/wt/perf/tests/fuzz/CMakeLists.txt;8;add_test;/work/wt/perf/tests/fuzz/CMakeLists.txt;24;nops_fuzz_target;/work/wt/perf/tests/fuzz/CMakeLists.txt;0;")
add_test([=[replay_fuzz_manifest]=] "/work/wt/perf/build-scalar/tests/fuzz/replay_fuzz_manifest" "/work/wt/perf/tests/fuzz/corpus/fuzz_manifest")
set_tests_properties([=[replay_fuzz_manifest]=] PROPERTIES  TIMEOUT "120" _BACKTRACE_TRIPLES "/work/wt/perf/tests/fuzz/CMakeLists.txt;8;add_test;/work/wt/perf/tests/fuzz/CMakeLists.txt;25;nops_fuzz_target;/work/wt/perf/tests/fuzz/CMakeLists.txt;0;")
