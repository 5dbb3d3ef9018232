"""US surface consistency: predicted points near the observed surface move onto it."""

from __future__ import annotations

import numpy as np
import pytest

from usx_model.network.us_consistency import snap_to_us_surface


def _grid(n: int = 21, step: float = 1.0) -> np.ndarray:
    u = (np.arange(n) - n // 2) * step
    x, y = np.meshgrid(u, u)
    return np.column_stack([x.ravel(), y.ravel(), np.zeros(x.size)])


def test_points_near_a_plane_land_on_it_along_its_normal() -> None:
    us = _grid()
    rng = np.random.default_rng(0)
    pts = np.column_stack([rng.uniform(-8, 8, (200, 2)), rng.uniform(-4, 4, 200)])
    out = snap_to_us_surface(pts, us, max_mm=3.0)
    near = np.abs(pts[:, 2]) <= 3.0  # the nearest US point lies straight below these
    far = np.abs(pts[:, 2]) > 3.0 + np.sqrt(0.5)  # beyond max whatever their x, y
    np.testing.assert_allclose(out[near, 2], 0.0, atol=1e-9)
    np.testing.assert_allclose(out[:, :2], pts[:, :2], atol=1e-9)  # never along the surface
    np.testing.assert_array_equal(out[far], pts[far])


def test_a_curved_surface_is_followed() -> None:
    rng = np.random.default_rng(1)
    d = rng.normal(size=(3000, 3))
    d = d[d[:, 2] > 0.7 * np.linalg.norm(d, axis=1)]  # a cap of the sphere
    us = 30.0 * d / np.linalg.norm(d, axis=1, keepdims=True)
    pred = 31.5 * d[:400] / np.linalg.norm(d[:400], axis=1, keepdims=True)  # 1.5 mm out
    out = snap_to_us_surface(pred, us, max_mm=3.0)
    err = np.abs(np.linalg.norm(out, axis=1) - 30.0)  # was 1.5 mm everywhere
    # local planes are chords of the sphere: a sagitta off, most at the cap's rim
    assert np.median(err) < 0.05 and err.max() < 0.2


@pytest.mark.parametrize(
    ("us", "max_mm"),
    [(np.zeros((3, 3)), 3.0), (_grid(), 0.0), (np.column_stack([np.arange(30.0)] * 3), 3.0)],
    ids=["fewer_than_k", "off", "collinear"],
)
def test_nothing_to_fit_leaves_the_points(us, max_mm) -> None:
    pts = np.array([[0.5, 0.2, 1.0], [2.0, 2.0, 2.5]])
    np.testing.assert_array_equal(snap_to_us_surface(pts, us, max_mm), pts)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"max_mm": -1.0}, r"max_mm: expected >= 0, got -1\.0"),
        ({"k": 2}, r"k: expected >= 3 \(a plane\), got 2"),
        ({"points_mm": np.zeros((4, 2))}, r"expected points_mm as \(N, 3\)"),
        ({"us_mm": np.full((8, 3), np.nan)}, "us_mm contains non-finite values"),
    ],
    ids=["negative_max", "k", "points_shape", "nan_us"],
)
def test_bad_input(kw, match) -> None:
    args = {"points_mm": np.zeros((4, 3)), "us_mm": _grid(), "max_mm": 3.0, **kw}
    with pytest.raises(ValueError, match=match):
        snap_to_us_surface(**args)
