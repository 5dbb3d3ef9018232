"""Every evaluation harness of usx: figures against ground truth, never run on a patient.

Runtime stages never import this package (``usx_model/test/test_layers.py``).

Completion networks, ``usx evaluate`` (the paper's Table 1 and more):

- ``methods``: load trained weights as named methods (name = network variant).
- ``pipeline``: predict and score test vertebrae, save predictions (npz).
- ``stats``: mean/std/median aggregation, Wilcoxon and Shapiro-Wilk tests, JSON names.
- ``report``: Table-1-shaped markdown, per-level table, PNG renders.
- ``real``: real meshes/VerSe volumes → LPS, simulated views, dense GT.
- ``floor``: the sampling floor of the metrics (``usx evaluate --floor``).

The whole chain and single stages on phantom spines:

- ``offline``: ``usx pipeline``, a simulated robotic sweep through every stage, scored;
- ``spine_report``: per-level scores and pictures of a completed spine (pipeline, demo);
- ``cases``: simulated sweeps in a random base frame, shared by the stage measurements;
- ``registration``, ``levels``: ``usx measure registration|levels``;
- ``segmentation``: 3D accuracy of the bone segmentation (``usx bench segmentation``);
- ``realism``: best-of-N Chamfer of the phantom to real vertebrae (``usx phantom realism``).
"""
