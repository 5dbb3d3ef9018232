"""CBCT <-> US rigid registration (point-to-plane ICP).

- :mod:`.icp`: coarse-to-fine point-to-plane ICP, ``T_base_cbct`` from bone surfaces.

Its error distribution on phantom spines: ``usx measure registration``
(``usx_model.evaluation.registration``).
"""
