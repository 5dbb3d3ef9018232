"""The X-ray placement pipelines: label image -> per-level 3D body points, base frame.

Both follow US-X Complete (Sec. 2.3: X-ray points on the sagittal plane through the
vertebra's lateral middle) and then refine each level's plane to the vertebra's own
symmetry plane (:mod:`usx_model.ingest.symmetry`):

- :func:`place_without_cbct`: ``T_base_xray`` from elsewhere (a tracked or calibrated
  C-arm); the first plane is the US points' OBB axis-2 mid-extent;
- :func:`place_with_cbct`: ``T_base_xray = T_base_cbct @ T_cbct_xray``; the first plane
  is the registered CBCT bone's mid-extent along the beam, and the per-level symmetry
  planes are fitted on the CBCT bone (complete, noise-free) instead of the US points.
"""

from __future__ import annotations

import numpy as np

from usx_model.base.transforms import apply_transform
from usx_model.base.xray_geometry import XrayGeometry
from usx_model.ingest.symmetry import symmetry_planes
from usx_model.ingest.xray_points import (
    LateralPlane,
    lateral_plane_along,
    lateral_plane_from_us,
    level_centroids,
    per_level_planes,
    place_xray_labels,
    xray_chain,
)


def _refine(
    label: np.ndarray,
    geometry: XrayGeometry,
    T_base_xray: np.ndarray,
    bone_base_mm: np.ndarray,
    plane: LateralPlane,
) -> tuple[dict[int, np.ndarray], dict[int, LateralPlane]]:
    """First placement on ``plane``, then per-level slab and symmetry planes."""
    first = place_xray_labels(label, geometry, T_base_xray, plane)
    if len(first) < 2:  # one level: no neighbours to cut a slab between
        return first, dict.fromkeys(first, plane)
    centroids = level_centroids(first)
    planes = symmetry_planes(
        bone_base_mm, centroids, per_level_planes(bone_base_mm, centroids, plane)
    )
    return place_xray_labels(label, geometry, T_base_xray, planes), planes


def place_without_cbct(
    label: np.ndarray,
    geometry: XrayGeometry,
    T_base_xray: np.ndarray,
    us_points_base_mm: np.ndarray,
) -> tuple[dict[int, np.ndarray], dict[int, LateralPlane]]:
    """Place the X-ray body labels using the US bone points for the lateral position.

    Args:
        label: (rows, cols) integer label image, 0 background, 1..5 = L1..L5 bodies.
        geometry: the shot's geometry in the X-ray frame.
        T_base_xray: (4, 4) pose of the X-ray frame in the robot base frame.
        us_points_base_mm: (N, 3) US bone segmentation, base frame.

    Returns:
        (level -> (N_l, 3) points, base frame; level -> the plane used).

    Raises:
        ValueError: see :func:`usx_model.ingest.xray_points.place_xray_labels`.
    """
    plane = lateral_plane_from_us(us_points_base_mm)
    return _refine(label, geometry, T_base_xray, np.asarray(us_points_base_mm, float), plane)


def place_with_cbct(
    label: np.ndarray,
    geometry: XrayGeometry,
    T_base_cbct: np.ndarray,
    T_cbct_xray: np.ndarray,
    cbct_bone_mm: np.ndarray,
) -> tuple[dict[int, np.ndarray], dict[int, LateralPlane]]:
    """Place the X-ray body labels through the CBCT registration chain.

    Args:
        label: (rows, cols) integer label image, 0 background, 1..5 = L1..L5 bodies.
        geometry: the shot's geometry in the X-ray frame.
        T_base_cbct: (4, 4) CBCT pose in the base frame (CBCT <-> US ICP).
        T_cbct_xray: (4, 4) X-ray frame in the CBCT frame (C-arm calibration).
        cbct_bone_mm: (M, 3) CBCT bone surface points (all of it, not only the
            posterior part), CBCT frame.

    Returns:
        (level -> (N_l, 3) points, base frame; level -> the plane used).
    """
    T_base_xray = xray_chain(T_base_cbct, T_cbct_xray)
    bone = apply_transform(T_base_cbct, np.asarray(cbct_bone_mm, dtype=np.float64))
    plane = lateral_plane_along(bone, T_base_xray[:3, :3] @ geometry.normal)
    return _refine(label, geometry, T_base_xray, bone, plane)
