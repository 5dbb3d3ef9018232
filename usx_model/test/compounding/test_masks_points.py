"""Pixel masks and bone pixels -> base points."""

from __future__ import annotations

import numpy as np
import pytest

from usx_model.compounding.masks import fan_mask, rectangle_mask
from usx_model.compounding.points import mask_to_base_points, sweep_to_base_points
from usx_model.tracking.calibration import ImageCalibration, pixels_to_base


def test_rectangle_mask():
    mask = rectangle_mask((4, 5), rows=(1, 3), columns=(0, 2))
    assert mask.sum() == 4 and mask[1, 0] and mask[2, 1] and not mask[3, 0] and not mask[1, 2]
    assert rectangle_mask((4, 5)).all()
    with pytest.raises(ValueError, match=r"0 <= r0 < r1 <= 4"):
        rectangle_mask((4, 5), rows=(2, 2))


@pytest.mark.parametrize(
    ("uv", "inside"),
    [
        ((50, 0), False),  # face centre: 20 mm from the apex, r_min is 21 mm
        ((50, 20), True),  # 10 mm deep on the axis
        ((50, 99), False),  # 49.5 mm deep: r = 69.5 > r_max = 60
        ((99, 10), False),  # far lateral at shallow depth: angle atan(24.5 / 25) > 40 deg
        ((80, 60), True),  # x = 15, y = 50 from apex: r = 52.2, angle 16.7 deg
    ],
)
def test_fan_mask_geometry(uv, inside):
    cal = ImageCalibration.centred_on_face(101, (0.5, 0.5))  # origin at column 50, row 0
    mask = fan_mask(
        (100, 101), cal, apex_mm=(0.0, -20.0), radius_mm=(21.0, 60.0), half_angle_deg=40
    )
    assert mask[uv[1], uv[0]] == inside


def test_fan_mask_validation():
    cal = ImageCalibration((1, 1), (0, 0))
    with pytest.raises(ValueError, match="r_min < r_max"):
        fan_mask((4, 4), cal, (0, 0), (5, 5), 30)
    with pytest.raises(ValueError, match=r"image_shape \(rows, columns\)"):
        fan_mask((4,), cal, (0, 0), (0, 5), 30)


def test_mask_to_points_and_sweep():
    T0 = np.array([[0.2, 0, 0, 10], [0, 0, 1, 0], [0, 0.1, 0, -5], [0, 0, 0, 1]], dtype=float)
    T1 = T0.copy()
    T1[1, 3] = 2.0
    mask = np.zeros((5, 6), dtype=bool)
    mask[2, 3] = mask[4, 0] = True
    pts = mask_to_base_points(mask, T0)
    np.testing.assert_allclose(pts, [[10.6, 0, -4.8], [10.0, 0, -4.6]])
    np.testing.assert_allclose(pts, pixels_to_base(np.array([[3, 2], [0, 4]]), T0))
    masks = np.stack([mask, np.zeros_like(mask), mask])
    points, frame = sweep_to_base_points(masks, np.stack([T0, T0, T1]))
    np.testing.assert_array_equal(frame, [0, 0, 2, 2])
    np.testing.assert_allclose(points[2:], pts + [0, 2, 0])
    with pytest.raises(ValueError, match=r"\(rows, columns\) bool mask, got float64"):
        mask_to_base_points(mask.astype(float), T0)
    with pytest.raises(ValueError, match=r"\(F, 4, 4\) transforms"):
        sweep_to_base_points(masks, np.stack([T0, T0]))
