"""`provgraph …`: the command line, the application on top of every other layer."""
