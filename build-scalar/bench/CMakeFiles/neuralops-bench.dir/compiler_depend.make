# Empty compiler generated dependencies file for neuralops-bench.
# This may be replaced when dependencies are built.
