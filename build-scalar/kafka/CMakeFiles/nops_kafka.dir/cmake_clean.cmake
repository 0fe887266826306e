file(REMOVE_RECURSE
  "CMakeFiles/nops_kafka.dir/kafka.c.o"
  "CMakeFiles/nops_kafka.dir/kafka.c.o.d"
  "libnops_kafka.a"
  "libnops_kafka.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/nops_kafka.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
