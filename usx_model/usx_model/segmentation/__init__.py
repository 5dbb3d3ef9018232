"""Automatic bone-surface segmentation of B-mode frames (per frame, shadow-aware).

- :mod:`.bone`: the segmentation (``segment_bone``) and its result type.
- :mod:`.dp`: vectorised min-sum (Viterbi) decoding used for continuity across columns.
- :mod:`.points`: segmented pixels of a tracked sweep -> base-frame 3D points.
- :mod:`.evaluate`: 3D accuracy against a simulator's ground truth and the spine mesh.
"""
