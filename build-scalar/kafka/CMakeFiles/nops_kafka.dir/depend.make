# Empty dependencies file for nops_kafka.
# This may be replaced when dependencies are built.
