"""Where the boundary between two lumbar levels runs behind the vertebral bodies.

Between the bodies the boundary is the plane halfway between consecutive body centroids
(a disc lies there). Behind them it is not: the arch of the upper vertebra (spinous
process, laminae, inferior articular processes) hangs caudally into the lower level's
height, the lower vertebra's superior articular and transverse processes reach up
beside it, and at the facet joints the two interleave. Both priors here give the
boundary's offset along the local cranial axis (mm, + = cranial) as a function of the
point's distance from the mid-sagittal plane (``side``) and its depth posterior of the
line between the centroids:

- ``BoundaryPrior.RULE`` (:func:`arch_boundary_mm`): three zones, medial -shift,
  lateral +shift, linear across the facets, ramped in behind the canal;
- ``BoundaryPrior.TABLE`` (:func:`table_offset_mm`): a (side, depth) grid of offsets
  fitted by :func:`fit_boundary_offsets` on phantom spines of seeds 6000-6029 (US
  points with the level of the mesh that produced them), disjoint from the evaluation
  seeds (>= 7000); cells without enough training points use the rule. Refit with
  :func:`usx_model.evaluation.levels.fit_prior_table` when the phantom changes.
"""

from __future__ import annotations

import enum

import numpy as np


class BoundaryPrior(enum.StrEnum):
    """Shape of the inter-level boundary behind the bodies."""

    TABLE = "table"
    RULE = "rule"


def arch_boundary_mm(lateral_mm: np.ndarray, depth_mm: np.ndarray, shift_mm: float) -> np.ndarray:
    """Offset (mm, + = cranial) of the boundary between two levels behind the bodies.

    Anatomical prior: behind the canal (depth > ~15 mm from the centroids' line) the
    medial arch (spinous process, laminae, inferior articular processes, |lateral| <
    14 mm) of the upper vertebra hangs below the disc, so the boundary moves caudally
    by ``shift_mm``; the lateral elements (superior articular and transverse processes,
    |lateral| > 22 mm) of the lower vertebra reach above it, so it moves cranially by
    ``shift_mm``; linear in between (the facet joints, where the two interleave) and
    ramped in over depth 5..20 mm so the bodies keep the plain halfway boundary.

    Args:
        lateral_mm: (N,) |distance| from the midline.
        depth_mm: (N,) distance posterior of the line between the body centroids.
        shift_mm: size of the shift.

    Returns:
        (N,) boundary offsets along the local cranial axis, mm.
    """
    side = np.clip((np.asarray(lateral_mm) - 14.0) / 8.0, 0.0, 1.0)  # 0 medial .. 1 lateral
    ramp = np.clip((np.asarray(depth_mm) - 5.0) / 15.0, 0.0, 1.0)
    return shift_mm * (2.0 * side - 1.0) * ramp


#: Grid of the table: |lateral| bins from 0 mm, depth bins from DEPTH_MIN_MM (mm).
SIDE_BIN_MM = 3.0
DEPTH_BIN_MM = 5.0
DEPTH_MIN_MM = -10.0
TABLE_SHAPE = (16, 17)
#: Default shift of the rule, mm (used for empty table cells too).
RULE_SHIFT_MM = 8.0


def _cells(side: np.ndarray, depth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.clip(np.floor(np.asarray(side) / SIDE_BIN_MM), 0, TABLE_SHAPE[0] - 1).astype(int)
    d = (np.asarray(depth) - DEPTH_MIN_MM) / DEPTH_BIN_MM
    b = np.clip(np.floor(d), 0, TABLE_SHAPE[1] - 1).astype(int)
    return a, b


def fit_boundary_offsets(
    side: np.ndarray,
    depth: np.ndarray,
    height: np.ndarray,
    is_upper: np.ndarray,
    min_count: int = 200,
) -> np.ndarray:
    """Per table cell, the offset that misassigns the fewest training points.

    Args:
        side, depth, height: (N,) boundary coordinates of training points of the two
            levels of a boundary (see ``levels.split.boundary_coordinates``), mm.
        is_upper: (N,) True where the point belongs to the upper (cranial) level.
        min_count: cells with fewer points take the rule's offset.

    Returns:
        (16, 17) offsets, mm (ties: the median of the best candidates).
    """
    side, depth, height = (np.asarray(v, dtype=np.float64).ravel() for v in (side, depth, height))
    upper = np.asarray(is_upper, dtype=bool).ravel()
    if not (len(side) == len(depth) == len(height) == len(upper)):
        raise ValueError("expected side, depth, height and is_upper of one length")
    a_idx, b_idx = _cells(side, depth)
    grid_a, grid_b = np.meshgrid(
        np.arange(TABLE_SHAPE[0]), np.arange(TABLE_SHAPE[1]), indexing="ij"
    )
    centre_side = (grid_a + 0.5) * SIDE_BIN_MM
    centre_depth = DEPTH_MIN_MM + (grid_b + 0.5) * DEPTH_BIN_MM
    table = arch_boundary_mm(centre_side, centre_depth, RULE_SHIFT_MM)
    candidates = np.arange(-30.0, 30.25, 0.5)
    flat = a_idx * TABLE_SHAPE[1] + b_idx
    for cell in np.unique(flat):
        k = flat == cell
        if k.sum() < min_count:
            continue
        errors = np.sum((height[k][:, None] > candidates[None]) != upper[k][:, None], axis=0)
        best = candidates[errors == errors.min()]
        table[cell // TABLE_SHAPE[1], cell % TABLE_SHAPE[1]] = np.median(best)
    return table


def table_offset_mm(
    side: np.ndarray, depth: np.ndarray, table: np.ndarray | None = None
) -> np.ndarray:
    """Boundary offset (mm, + = cranial) looked up in ``table`` (default: the fitted one)."""
    t = OFFSET_TABLE_MM if table is None else np.asarray(table, dtype=np.float64)
    if t.shape != TABLE_SHAPE:
        raise ValueError(f"expected a boundary table of shape {TABLE_SHAPE}, got {t.shape}")
    a, b = _cells(side, depth)
    return t[a, b]


#: Fitted offsets in half millimetres (rows: |lateral| bins, columns: depth bins).
# fmt: off
OFFSET_TABLE_MM = 0.5 * np.array(
    [
        [  1,   2,   0, -18,   1,   0, -16, -16, -11, -10, -11, -14, -23, -25, -24, -25, -22],
        [  1,   1,   1,   1,   0,   0, -16, -39, -16, -10, -10, -16, -22, -24, -23, -25, -24],
        [  0,   0,   0,   6,   2,   0, -18, -21, -18, -16, -15, -16, -16, -23, -18, -23, -24],
        [  0,   3,   0,  -3,   2,   0, -11, -16, -19, -25, -32, -16, -16, -16, -16, -16, -16],
        [  0,   0,   0,  -3,   2,   0,   4,   5, -17, -28, -38,   4, -16, -16, -16, -16, -16],
        [  0,   0,   0,   0,   0,   0,   6,   8,  11, -25, -38,   5,  -6,  -6,  -6,  -6,  -6],
        [  0,   2,   0,  -1,   0, -24,   4,   8,  14,  22,  24,   6,   6,   6,   6,   6,   6],
        [  0,   2,  -2,  -2,  -2,  13,   8,  11,  17,  22,  25,  16,  16,  16,  16,  16,  16],
        [  0,   0,  -1,   0, -10,  13,  12,  17,  19,  22,  16,  16,  16,  16,  16,  16,  16],
        [  0,   0,   0,   3,   8,  13,   5,  19,  21,  22,  16,  16,  16,  16,  16,  16,  16],
        [  0,   0,   0,   3,   8,  13,   6,  14,  20,  22,  16,  16,  16,  16,  16,  16,  16],
        [  0,   0,   0,   3,   8,  13,   7,  14,  18,  12,  16,  16,  16,  16,  16,  16,  16],
        [  0,   0,   0,   3,   8,  13,   6,  10,  10,  14,  16,  16,  16,  16,  16,  16,  16],
        [  0,   0,   0,   3,   8,  13,   7,  12,  12,  16,  16,  16,  16,  16,  16,  16,  16],
        [  0,   0,   0,   3,   8,  13,  16,  12,  14,  16,  14,  16,  16,  16,  16,  16,  16],
        [  0,   0,   0,   3,   8,  13,  16,  18,  17,  20,  19,  16,  16,  16,  16,  16,  16],
    ]
)
# fmt: on
