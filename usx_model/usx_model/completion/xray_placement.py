"""Stage 2 of the spine completion: the lateral X-ray's body labels placed in the base
frame, per level (mm).

Kept apart from ``completion.spine`` so that the X-ray node (``xray_ingest``) does not load
the network and torch: a node restarted after a crash is back sooner.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from usx_model.base.points import thin_points
from usx_model.base.xray_geometry import XrayGeometry, transform_geometry
from usx_model.ingest.placement import place_without_cbct
from usx_model.ingest.xray_points import LateralPlane, place_xray_labels
from usx_model.registration.xray_us import (
    AnteriorGradients,
    anterior_gradients,
    register_xray_to_us,
)

#: Coarser thinning for the X-ray placement's symmetry-plane ICP.
PLACEMENT_VOXEL_MM = 2.0


@dataclass(frozen=True)
class XrayObservation:
    """A lateral X-ray's vertebral-body labels with its geometry.

    Attributes:
        label: (rows, cols) int label image, 0 background, 1..5 = L1..L5 bodies.
        geometry: projection geometry in the X-ray frame, mm.
        T_base_xray: (4, 4) X-ray frame in the base frame (identity when the geometry is
            already expressed in the base frame).
        plane_point_mm: (3,) a point of the body mid-plane in the base frame when the
            depth along the beam is registered (CBCT); None: use the US heuristic.
        image: (rows, cols) the X-ray's intensity (bone bright), for re-registering it
            to the US bone points; None: not available.
    """

    label: np.ndarray
    geometry: XrayGeometry
    T_base_xray: np.ndarray = field(default_factory=lambda: np.eye(4))
    plane_point_mm: np.ndarray | None = None
    image: np.ndarray | None = None


def registration_gradients(
    xray: XrayObservation, posterior: np.ndarray | None
) -> AnteriorGradients | None:
    """What re-registering ``xray`` samples, made once per X-ray (``place_xray``'s
    ``gradients``); None where it is not re-registered (no image or no ``posterior``).

    Raises:
        ValueError: see ``registration.xray_us.anterior_gradients``.
    """
    if xray.image is None or posterior is None:
        return None
    geometry_base = transform_geometry(xray.geometry, xray.T_base_xray)
    return anterior_gradients(xray.image, geometry_base, posterior)


def place_xray(
    bone_points_mm: np.ndarray,
    xray: XrayObservation,
    posterior: np.ndarray | None = None,
    gradients: AnteriorGradients | None = None,
) -> dict[int, np.ndarray]:
    """Per-level X-ray body points in the base frame (stage 2).

    With the X-ray's image and the patient's ``posterior`` direction (base frame), the
    shot is first re-registered in its plane to the US bone points
    (``registration.xray_us``), undoing a patient's motion since the shot; ``gradients``
    (:func:`registration_gradients` of the same X-ray and posterior) spares that step
    smoothing the image again for each sweep.

    With a registered depth (``plane_point_mm``) the label rays are cut with the plane
    through that point normal to the beam; otherwise with each vertebra's mid-sagittal
    symmetry plane of the US bone points, started from the paper's heuristic plane (the
    mid-extent along their second principal axis; ``ingest.placement``).

    Raises:
        ValueError: empty labels, bad geometry, rays parallel to the plane.
    """
    if xray.image is not None and posterior is not None:
        geometry_base = transform_geometry(xray.geometry, xray.T_base_xray)
        reg = register_xray_to_us(
            xray.image, geometry_base, bone_points_mm, posterior, gradients=gradients
        )
        if reg.applied:
            xray = dataclasses.replace(xray, T_base_xray=reg.T_correction @ xray.T_base_xray)
    if xray.plane_point_mm is None:
        # Per-vertebra mid-sagittal symmetry planes, started from the paper's plane; on
        # points thinned to PLACEMENT_VOXEL_MM (phantom: within 0.05 mm of the planes of
        # the full cloud at a tenth of the ICP time).
        us = thin_points(bone_points_mm, PLACEMENT_VOXEL_MM)
        by_level, _ = place_without_cbct(xray.label, xray.geometry, xray.T_base_xray, us)
        return by_level
    beam = np.asarray(xray.T_base_xray)[:3, :3] @ xray.geometry.normal
    normal = beam / np.linalg.norm(beam)
    point = np.asarray(xray.plane_point_mm, dtype=np.float64)
    plane = LateralPlane(point, normal, np.eye(3), np.full(3, np.nan))
    return place_xray_labels(xray.label, xray.geometry, xray.T_base_xray, plane)
