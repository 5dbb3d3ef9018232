"""How much of each anatomical part a partial cloud covers (the US occlusion check).

A ground-truth surface sample counts as *seen* when the partial holds a point within
``radius_mm`` of it. Real spine ultrasound sees the posterior elements (spinous process,
laminae, transverse processes) and almost none of the vertebral body.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from usx_model.base.parts import POSTERIOR_VISIBLE_PARTS, Part
from usx_model.base.points import check_points
from usx_model.sim.phantom.types import Spine
from usx_model.sim.scene import sample_surface
from usx_model.sim.us_partial import UsPartial


@dataclass
class VisibilityFractions:
    """Fractions in [0, 1] of GT surface samples with a partial point within the radius.

    Attributes:
        body: over samples of the vertebral body (Part.BODY); nan if none.
        posterior: over spinous process, laminae and transverse processes; nan if none.
    """

    body: float
    posterior: float


def visibility_fractions(
    gt_points_mm: np.ndarray,
    gt_part: np.ndarray,
    partial_mm: np.ndarray,
    radius_mm: float = 1.5,
) -> VisibilityFractions:
    """Fraction of body and posterior-element GT points covered by a partial cloud.

    Args:
        gt_points_mm: (M, 3) ground-truth surface samples, mm.
        gt_part: (M,) part codes of those samples.
        partial_mm: (N, 3) partial cloud, mm, same frame.
        radius_mm: coverage radius.

    Returns:
        VisibilityFractions.
    """
    gt = check_points(gt_points_mm, "gt_points_mm")
    part = np.asarray(gt_part)
    if part.shape != (len(gt),):
        raise ValueError(f"expected ({len(gt)},) gt_part, got {part.shape}")
    partial = check_points(partial_mm, "partial_mm")
    if len(partial) == 0:
        seen = np.zeros(len(gt), dtype=bool)
    else:
        dist, _ = cKDTree(partial).query(gt, distance_upper_bound=radius_mm)
        seen = np.isfinite(dist)
    body = part == Part.BODY
    post = np.isin(part, [int(p) for p in POSTERIOR_VISIBLE_PARTS])
    return VisibilityFractions(
        body=float(seen[body].mean()) if body.any() else float("nan"),
        posterior=float(seen[post].mean()) if post.any() else float("nan"),
    )


def spine_visibility(
    spine: Spine,
    partials: dict[int, UsPartial],
    n_samples: int = 5000,
    radius_mm: float = 1.5,
    seed: int = 0,
) -> dict[int, VisibilityFractions]:
    """Visibility fractions of each level's own surface in its own cropped partial."""
    out = {}
    for level in spine.levels:
        gt, part = sample_surface(spine.vertebrae[level], n_samples, seed)
        out[level] = visibility_fractions(gt, part, partials[level].points_mm, radius_mm)
    return out
