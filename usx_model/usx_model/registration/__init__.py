"""CBCT <-> US rigid registration (point-to-plane ICP) and its evaluation on phantoms.

- :mod:`.icp`: coarse-to-fine point-to-plane ICP, ``T_base_cbct`` from bone surfaces.
- :mod:`.cases`: simulated sweeps in a random base frame (shared by the evaluations).
- :mod:`.evaluate`: ICP error distribution under 10 mm / 10 deg initial errors.
"""
