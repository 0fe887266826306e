file(REMOVE_RECURSE
  "libnops_recommend.a"
)
