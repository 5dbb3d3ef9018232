"""US surface consistency of a completed vertebra (our post-process of the network).

The US bone points are the part of the vertebra the sweep saw; the network's prediction
passes near them but not through them: it is blurred by about a millimetre on phantom
bone and by more on real bone, whose shapes the phantom prior does not reach
(docs/results.md, "Where the real-anatomy gap comes from"). :func:`snap_to_us_surface`
moves each predicted point that has an observed point within ``max_mm`` onto the local
surface of its ``k`` nearest observed points (the plane through them), along that plane's
normal only: the prediction keeps its own sampling along the surface and takes the
observed surface's position. Points farther from every observation stay as predicted.

It runs after the quality gate has judged the network's own output (moved onto the
observations, a wrong prediction would look as if it fitted them). Units mm, any frame.
"""

from __future__ import annotations

import numpy as np

from usx_model.base.planes import scatter_matrices, smallest_eigenvectors
from usx_model.base.points import check_points, nearest_neighbours

#: The product's radius (mm): the completion node's ``us_snap_mm`` and the evaluation
#: commands' ``--us-snap-mm`` default. Chosen on the validation sets only (15 real
#: vertebrae, 60 phantom ones; docs/results.md, "US surface consistency"): 3, 4, 5, 6 and
#: 8 mm gave real CD-L1 1.46, 1.43, 1.41-1.40, 1.42, 1.46 mm (1.57 without), phantom
#: 1.07, 1.08, 1.09, -, - (1.12 without).
US_SNAP_MM = 5.0
#: Neighbours of the local plane fit. On the 15 real validation vertebrae (loose) 4-6
#: gave the lowest error, 8 a little more, 16 clearly more (the plane spans the curvature).
US_SNAP_K = 6


def snap_to_us_surface(
    points_mm: np.ndarray, us_mm: np.ndarray, max_mm: float, k: int = US_SNAP_K
) -> np.ndarray:
    """Move predicted points near the observed US surface onto it; see the module docstring.

    Args:
        points_mm: (N, 3) completed vertebra.
        us_mm: (M, 3) its US bone points (the crop the network took), same frame.
        max_mm: a point whose nearest US point is farther than this stays.
        k: US points of each local plane.

    Returns:
        (N, 3) float64 points; with fewer than ``k`` US points or ``max_mm`` 0, a copy of
        ``points_mm``.

    Raises:
        ValueError: bad shapes or NaN/Inf, a negative ``max_mm``, ``k`` < 3.
    """
    pts = check_points(points_mm, "points_mm")
    us = check_points(us_mm, "us_mm")
    if not max_mm >= 0:
        raise ValueError(f"max_mm: expected >= 0, got {max_mm}")
    if k < 3:
        raise ValueError(f"k: expected >= 3 (a plane), got {k}")
    if max_mm == 0 or len(us) < k or not len(pts):
        return pts
    dist, idx = nearest_neighbours(pts, us, k)
    near = dist[:, 0] <= max_mm
    if not near.any():
        return pts
    nb = us[idx[near]]  # (P, k, 3)
    normal = smallest_eigenvectors(scatter_matrices(nb))
    # a neighbourhood along a line (or one point) fits no unique plane (NaN): leave its point
    planar = np.isfinite(normal[:, 0])
    normal[~planar] = 0.0
    offset = np.einsum("pi,pi->p", pts[near] - nb.mean(axis=1), normal)
    out = pts.copy()
    out[near] -= offset[:, None] * normal
    return out
