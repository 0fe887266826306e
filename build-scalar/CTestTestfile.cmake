# CMake generated Testfile for 
# Source directory: /work/wt/perf
# Build directory: /work/wt/perf/build-scalar
# 
# This file includes the relevant testing commands required for 
# testing this directory and lists subdirectories to be tested as well.
subdirs("core")
subdirs("kafka")
subdirs("pg")
subdirs("parse")
subdirs("detect")
subdirs("correlate")
subdirs("sinks")
subdirs("ingest")
subdirs("vector")
subdirs("recommend")
subdirs("orchestrate")
subdirs("api")
subdirs("synth")
subdirs("app")
subdirs("bench")
subdirs("tests")
