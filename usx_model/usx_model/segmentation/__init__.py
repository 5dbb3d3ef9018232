"""Automatic bone-surface segmentation of B-mode frames (per frame, shadow-aware).

- :mod:`.bone`: the segmentation (``segment_bone``) and its result type.
- :mod:`._score`: its bone score per coarse pixel, compiled.
- :mod:`.dp`: vectorised min-sum (Viterbi) decoding used for continuity across columns.

Its 3D accuracy against a simulator's ground truth: ``usx bench segmentation``
(``usx_model.evaluation.segmentation``).
"""
