file(REMOVE_RECURSE
  "libnops_orchestrate.a"
)
