"""Tools around the graph: bag record/replay, the launcher, the demo, the graph benchmark."""
