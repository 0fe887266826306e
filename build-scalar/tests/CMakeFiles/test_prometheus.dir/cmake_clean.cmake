file(REMOVE_RECURSE
  "CMakeFiles/test_prometheus.dir/api/test_prometheus.c.o"
  "CMakeFiles/test_prometheus.dir/api/test_prometheus.c.o.d"
  "test_prometheus"
  "test_prometheus.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/test_prometheus.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
