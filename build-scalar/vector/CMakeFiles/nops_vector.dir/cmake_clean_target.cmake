file(REMOVE_RECURSE
  "libnops_vector.a"
)
