file(REMOVE_RECURSE
  "CMakeFiles/nops_vector.dir/embed.c.o"
  "CMakeFiles/nops_vector.dir/embed.c.o.d"
  "CMakeFiles/nops_vector.dir/faiss_c_shim.cpp.o"
  "CMakeFiles/nops_vector.dir/faiss_c_shim.cpp.o.d"
  "CMakeFiles/nops_vector.dir/histdir.c.o"
  "CMakeFiles/nops_vector.dir/histdir.c.o.d"
  "CMakeFiles/nops_vector.dir/histdir_open.c.o"
  "CMakeFiles/nops_vector.dir/histdir_open.c.o.d"
  "CMakeFiles/nops_vector.dir/redact.c.o"
  "CMakeFiles/nops_vector.dir/redact.c.o.d"
  "CMakeFiles/nops_vector.dir/redact_pii.c.o"
  "CMakeFiles/nops_vector.dir/redact_pii.c.o.d"
  "CMakeFiles/nops_vector.dir/redact_rules.c.o"
  "CMakeFiles/nops_vector.dir/redact_rules.c.o.d"
  "CMakeFiles/nops_vector.dir/vectorize.c.o"
  "CMakeFiles/nops_vector.dir/vectorize.c.o.d"
  "CMakeFiles/nops_vector.dir/vindex.c.o"
  "CMakeFiles/nops_vector.dir/vindex.c.o.d"
  "libnops_vector.a"
  "libnops_vector.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C CXX)
  include(CMakeFiles/nops_vector.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
