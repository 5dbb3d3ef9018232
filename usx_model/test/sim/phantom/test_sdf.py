from __future__ import annotations

import numpy as np
import pytest

from usx_model.sim.phantom.sdf import RoundedBox, TaperedCapsule, axes_from, smooth_union


def _naive_box_distance(p, centre, axes, half):
    """Reference: distance to a sharp oriented box by clamping in its local frame."""
    local = (p - centre) @ axes
    clamped = np.clip(local, -half, half)
    outside = np.linalg.norm(local - clamped, axis=1)
    inside = np.min(half - np.abs(local), axis=1)
    return np.where(outside > 0, outside, -inside)


def test_rounded_box_with_zero_radius_matches_naive_box_distance():
    axes = np.asarray(axes_from([1.0, 1.0, 0.2], [0, 0, 1]))
    half = np.array([5.0, 2.0, 3.0])
    box = RoundedBox((1.0, -2.0, 0.5), tuple(map(tuple, axes)), tuple(half), 0.0)
    p = np.random.default_rng(0).uniform(-12, 12, size=(2000, 3))
    np.testing.assert_allclose(
        box.distance(p), _naive_box_distance(p, np.array([1.0, -2.0, 0.5]), axes, half), atol=1e-9
    )


def test_capsule_with_equal_radii_matches_point_segment_distance():
    a, b, r = np.array([0.0, 0.0, 0.0]), np.array([10.0, 3.0, 1.0]), 2.0
    cap = TaperedCapsule(tuple(a), tuple(b), (r, r), (r, r))
    p = np.random.default_rng(1).uniform(-8, 18, size=(2000, 3))
    t = np.clip((p - a) @ (b - a) / np.dot(b - a, b - a), 0, 1)
    ref = np.linalg.norm(p - (a + t[:, None] * (b - a)), axis=1) - r
    np.testing.assert_allclose(cap.distance(p), ref, atol=1e-9)


def test_bounds_contain_the_inside():
    shapes = [
        RoundedBox((0, 1, 2), axes_from([1, 2, 0], [0, 0, 1]), (4, 1, 3), 0.5),
        TaperedCapsule((0, 0, 0), (5, 5, 2), (2, 3), (1, 1)),
    ]
    p = np.random.default_rng(2).uniform(-15, 15, size=(20000, 3))
    for s in shapes:
        lo, hi = s.bounds()
        inside = p[s.distance(p) < 0]
        assert len(inside) > 0
        assert np.all(inside >= lo - 1e-9) and np.all(inside <= hi + 1e-9)


@pytest.mark.parametrize(
    ("a", "b", "k", "expected"),
    [
        (1.0, 5.0, 2.0, 1.0),  # far apart: plain minimum
        (-3.0, 4.0, 2.0, -3.0),
        (1.0, 1.0, 2.0, 0.5),  # equal: min - k/4
        (1.0, 1.0, 0.0, 1.0),  # no blend
    ],
)
def test_smooth_union_table(a, b, k, expected):
    out = smooth_union(np.array([a]), np.array([b]), k)
    assert out[0] == pytest.approx(expected)
