"""Completion datasets: the HDF5 schema and the builder behind ``usx dataset build``."""
