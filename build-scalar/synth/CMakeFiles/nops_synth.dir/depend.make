# Empty dependencies file for nops_synth.
# This may be replaced when dependencies are built.
