file(REMOVE_RECURSE
  "libnops_kafka.a"
)
