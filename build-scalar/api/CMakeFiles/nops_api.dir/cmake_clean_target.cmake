file(REMOVE_RECURSE
  "libnops_api.a"
)
