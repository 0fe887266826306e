file(REMOVE_RECURSE
  "libnops_core.a"
)
