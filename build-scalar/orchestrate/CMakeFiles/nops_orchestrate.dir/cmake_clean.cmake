file(REMOVE_RECURSE
  "CMakeFiles/nops_orchestrate.dir/audit.c.o"
  "CMakeFiles/nops_orchestrate.dir/audit.c.o.d"
  "CMakeFiles/nops_orchestrate.dir/audit_chain.c.o"
  "CMakeFiles/nops_orchestrate.dir/audit_chain.c.o.d"
  "CMakeFiles/nops_orchestrate.dir/audit_head.c.o"
  "CMakeFiles/nops_orchestrate.dir/audit_head.c.o.d"
  "CMakeFiles/nops_orchestrate.dir/audit_verify.c.o"
  "CMakeFiles/nops_orchestrate.dir/audit_verify.c.o.d"
  "CMakeFiles/nops_orchestrate.dir/kstep.c.o"
  "CMakeFiles/nops_orchestrate.dir/kstep.c.o.d"
  "CMakeFiles/nops_orchestrate.dir/orchestrator.c.o"
  "CMakeFiles/nops_orchestrate.dir/orchestrator.c.o.d"
  "CMakeFiles/nops_orchestrate.dir/playbook.c.o"
  "CMakeFiles/nops_orchestrate.dir/playbook.c.o.d"
  "CMakeFiles/nops_orchestrate.dir/policy.c.o"
  "CMakeFiles/nops_orchestrate.dir/policy.c.o.d"
  "CMakeFiles/nops_orchestrate.dir/records.c.o"
  "CMakeFiles/nops_orchestrate.dir/records.c.o.d"
  "CMakeFiles/nops_orchestrate.dir/records_files.c.o"
  "CMakeFiles/nops_orchestrate.dir/records_files.c.o.d"
  "CMakeFiles/nops_orchestrate.dir/runner.c.o"
  "CMakeFiles/nops_orchestrate.dir/runner.c.o.d"
  "CMakeFiles/nops_orchestrate.dir/seal.c.o"
  "CMakeFiles/nops_orchestrate.dir/seal.c.o.d"
  "CMakeFiles/nops_orchestrate.dir/steps.c.o"
  "CMakeFiles/nops_orchestrate.dir/steps.c.o.d"
  "libnops_orchestrate.a"
  "libnops_orchestrate.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/nops_orchestrate.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
