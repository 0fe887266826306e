file(REMOVE_RECURSE
  "libnops_correlate.a"
)
