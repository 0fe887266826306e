# Empty compiler generated dependencies file for test_playbook.
# This may be replaced when dependencies are built.
