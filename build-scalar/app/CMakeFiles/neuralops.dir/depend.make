# Empty dependencies file for neuralops.
# This may be replaced when dependencies are built.
