file(REMOVE_RECURSE
  "libnops_synth.a"
)
