"""The ``usx`` command-line interface."""
