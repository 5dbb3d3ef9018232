"""Benchmarks behind ``usx bench NAME``; one module per benchmark.

Each module defines ``NAME``, ``HELP``, ``add_arguments(parser)`` and
``run(args) -> dict``. The dict is printed as JSON together with machine info
(see ``usx_model.bench.common``). ROS benchmarks join through the ``usx.bench``
entry-point group.
"""
