file(REMOVE_RECURSE
  "CMakeFiles/test_playbook.dir/orchestrate/test_playbook.c.o"
  "CMakeFiles/test_playbook.dir/orchestrate/test_playbook.c.o.d"
  "test_playbook"
  "test_playbook.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/test_playbook.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
