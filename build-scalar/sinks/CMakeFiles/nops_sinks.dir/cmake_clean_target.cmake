file(REMOVE_RECURSE
  "libnops_sinks.a"
)
