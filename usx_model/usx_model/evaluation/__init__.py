"""Evaluation of completion networks (``usx evaluate``): the paper's Table 1 and more.

- ``methods``: load trained weights as named methods (name = network variant).
- ``pipeline``: predict and score test vertebrae, save predictions (npz).
- ``stats``: mean/std/median aggregation, Wilcoxon and Shapiro-Wilk tests, JSON names.
- ``report``: Table-1-shaped markdown, per-level table, PNG renders.
- ``real``: real meshes/VerSe volumes → LPS, simulated views, dense GT.
- ``shipped``: where the shipped weights live.
"""
