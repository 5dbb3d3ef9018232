"""Cutting the US bone points into vertebra levels L1..L5.

- :mod:`.split`: with the X-ray body centroids (boxes, bent boundaries, graph cut).
- :mod:`.us_only`: without X-ray (spinous-process peaks, equal-parts fallback).
- :mod:`.boundary_prior`, :mod:`.refine`: the boundary shape and the min-cut.

Their accuracy on phantom spines: ``usx measure levels`` (``usx_model.evaluation.levels``).
"""
