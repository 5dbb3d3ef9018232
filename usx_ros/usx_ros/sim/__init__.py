"""The simulation node: the digital phantom that stands in for robot, US machine and C-arm."""
