file(REMOVE_RECURSE
  "libnops_auth.a"
)
