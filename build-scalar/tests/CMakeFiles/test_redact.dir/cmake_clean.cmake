file(REMOVE_RECURSE
  "CMakeFiles/test_redact.dir/vector/test_redact.c.o"
  "CMakeFiles/test_redact.dir/vector/test_redact.c.o.d"
  "test_redact"
  "test_redact.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/test_redact.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
