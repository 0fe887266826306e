file(REMOVE_RECURSE
  "libnops_parse.a"
)
