file(REMOVE_RECURSE
  "libnops_detect.a"
)
