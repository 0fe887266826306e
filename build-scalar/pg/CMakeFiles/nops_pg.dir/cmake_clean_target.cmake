file(REMOVE_RECURSE
  "libnops_pg.a"
)
