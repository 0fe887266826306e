file(REMOVE_RECURSE
  "../neuralops-bench"
  "../neuralops-bench.pdb"
  "CMakeFiles/neuralops-bench.dir/bench_audit.c.o"
  "CMakeFiles/neuralops-bench.dir/bench_audit.c.o.d"
  "CMakeFiles/neuralops-bench.dir/bench_detect.c.o"
  "CMakeFiles/neuralops-bench.dir/bench_detect.c.o.d"
  "CMakeFiles/neuralops-bench.dir/bench_http.c.o"
  "CMakeFiles/neuralops-bench.dir/bench_http.c.o.d"
  "CMakeFiles/neuralops-bench.dir/bench_ingest.c.o"
  "CMakeFiles/neuralops-bench.dir/bench_ingest.c.o.d"
  "CMakeFiles/neuralops-bench.dir/bench_main.c.o"
  "CMakeFiles/neuralops-bench.dir/bench_main.c.o.d"
  "CMakeFiles/neuralops-bench.dir/bench_recommend.c.o"
  "CMakeFiles/neuralops-bench.dir/bench_recommend.c.o.d"
  "CMakeFiles/neuralops-bench.dir/bench_vector.c.o"
  "CMakeFiles/neuralops-bench.dir/bench_vector.c.o.d"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/neuralops-bench.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
