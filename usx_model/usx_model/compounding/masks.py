"""Masks of the valid pixels of a B-mode frame: a rectangle (linear probe) or a fan.

Masks are (H, W) bool arrays indexed [row, column] (v, u); True = pixel carries echo data.
Fan geometry is given in the image frame (see ``usx_model.tracking.calibration``:
x lateral, y depth, mm, origin at ``origin_px``).
"""

from __future__ import annotations

import numpy as np

from usx_model.tracking.calibration import ImageCalibration


def _check_shape(image_shape: tuple[int, int]) -> tuple[int, int]:
    if len(image_shape) != 2 or min(image_shape) < 1:
        raise ValueError(f"expected image_shape (rows, columns) >= 1, got {image_shape}")
    return int(image_shape[0]), int(image_shape[1])


def rectangle_mask(
    image_shape: tuple[int, int],
    rows: tuple[int, int] | None = None,
    columns: tuple[int, int] | None = None,
) -> np.ndarray:
    """True inside rows [r0, r1) and columns [c0, c1) (the whole image by default)."""
    h, w = _check_shape(image_shape)
    r0, r1 = rows if rows is not None else (0, h)
    c0, c1 = columns if columns is not None else (0, w)
    if not (0 <= r0 < r1 <= h and 0 <= c0 < c1 <= w):
        raise ValueError(
            f"expected 0 <= r0 < r1 <= {h} and 0 <= c0 < c1 <= {w}, got rows {rows}, "
            f"columns {columns}"
        )
    mask = np.zeros((h, w), dtype=bool)
    mask[r0:r1, c0:c1] = True
    return mask


def fan_mask(
    image_shape: tuple[int, int],
    calibration: ImageCalibration,
    apex_mm: tuple[float, float],
    radius_mm: tuple[float, float],
    half_angle_deg: float,
) -> np.ndarray:
    """Sector of a curvilinear (convex) or phased probe.

    Args:
        image_shape: (rows, columns).
        calibration: pixel spacing and origin, to place pixel centres in mm.
        apex_mm: (x, y) of the virtual apex in the image frame, mm (for a convex probe of
            radius R with the origin at the face centre: (0, -R)).
        radius_mm: (r_min, r_max) distance from the apex, mm.
        half_angle_deg: half opening angle measured from the depth (+y) axis.

    Returns:
        (H, W) bool.
    """
    h, w = _check_shape(image_shape)
    r_min, r_max = radius_mm
    if not (0 <= r_min < r_max) or not (0 < half_angle_deg <= 180):
        raise ValueError(
            f"expected 0 <= r_min < r_max and 0 < half_angle_deg <= 180, got radius_mm "
            f"{radius_mm} and half_angle_deg {half_angle_deg}"
        )
    (su, sv), (u0, v0) = calibration.spacing_mm, calibration.origin_px
    x = (np.arange(w) - u0) * su - apex_mm[0]
    y = (np.arange(h) - v0) * sv - apex_mm[1]
    dx, dy = np.meshgrid(x, y)  # (H, W), rows = depth
    r = np.hypot(dx, dy)
    angle = np.degrees(np.arctan2(dx, dy))  # 0 along +depth
    return (r >= r_min) & (r <= r_max) & (np.abs(angle) <= half_angle_deg)
