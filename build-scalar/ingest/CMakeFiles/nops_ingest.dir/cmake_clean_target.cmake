file(REMOVE_RECURSE
  "libnops_ingest.a"
)
