file(REMOVE_RECURSE
  "CMakeFiles/test_sinks.dir/sinks/test_sinks.c.o"
  "CMakeFiles/test_sinks.dir/sinks/test_sinks.c.o.d"
  "test_sinks"
  "test_sinks.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/test_sinks.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
