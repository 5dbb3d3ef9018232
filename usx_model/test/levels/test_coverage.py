"""Per-level coverage: bands from bodies and from a lateral X-ray, cells against a naive count."""

from __future__ import annotations

import numpy as np
import pytest

from usx_model.completion.xray_placement import XrayObservation
from usx_model.levels.coverage import (
    BAND_ABOVE,
    BAND_BELOW,
    LevelCoverage,
    bands_from_xray,
    covered,
    level_bands,
)
from usx_model.sim.phantom.spine import generate_spine
from usx_model.sim.xray import body_midplane_point_mm, lateral_geometry, render_lateral_xray

LATERAL = np.array([1.0, 0.0, 0.0])


def _bodies(spacings=(30.0, 32.0, 34.0, 36.0), tilt_deg: float = 10.0):
    """Body centroids L1..L5 from the top down along a tilted axis (in the y-z plane)."""
    a = np.radians(tilt_deg)
    axis = np.array([0.0, np.sin(a), np.cos(a)])
    t = np.concatenate([[0.0], -np.cumsum(spacings)])
    return {lv: (t[lv - 1] * axis + [5.0, 1.0, 2.0])[None] for lv in range(1, 6)}, axis, t


def test_bands_follow_the_bodies_along_the_axis() -> None:
    bodies, axis, t = _bodies()
    b = level_bands(bodies, LATERAL + [0.0, 0.01, 0.0])  # not quite normal to the spine
    np.testing.assert_allclose(b.axis, axis, atol=3e-3)  # L1 cranial, lateral removed
    np.testing.assert_allclose(b.lateral @ b.axis, 0.0, atol=0.02)
    t = t - t.mean()
    gaps = [30.0, 30.0, 32.0, 34.0, 36.0, 36.0]  # above L1 and below L5: the one neighbour's
    for lv in range(1, 6):
        lo, hi = b.bands[lv]
        # (the axis tilts by the lateral's 0.01 rad: positions along it change by 1e-4)
        assert lo == pytest.approx(t[lv - 1] - BAND_BELOW * gaps[lv], abs=0.01)
        assert hi == pytest.approx(t[lv - 1] + BAND_ABOVE * gaps[lv - 1], abs=0.01)


@pytest.mark.parametrize(
    ("bodies", "lateral", "message"),
    [
        ({1: np.zeros((1, 3))}, LATERAL, r"at least two levels, got \[1\]"),
        ({1: np.zeros((0, 3)), 2: np.ones((1, 3))}, LATERAL, "L1 body needs at least 1 points"),
        ({1: np.zeros((1, 3)), 2: np.array([[9.0, 0, 0]])}, LATERAL, "runs along the spine"),
    ],
)
def test_bad_bodies_are_refused(bodies, lateral, message) -> None:
    with pytest.raises(ValueError, match=message):
        level_bands(bodies, lateral)


def _naive(points, b, cell, half_width, midline=0.0):
    """Cells of each band's window that hold a point, counted one cell at a time."""
    d = points - b.origin_mm
    along, lat = d @ b.axis, d @ b.lateral
    out = {}
    for lv, (lo, hi) in b.bands.items():
        rows = int(np.ceil((hi - lo) / cell))
        c0 = round((midline + 80.0 - half_width) / cell)
        c1 = round((midline + 80.0 + half_width) / cell)
        hit = 0
        for r in range(rows):
            for c in range(c0, c1):
                a_lo, l_lo = lo + r * cell, c * cell - 80.0
                inside = (along >= a_lo) & (along < min(a_lo + cell, hi))
                inside &= (lat >= l_lo) & (lat < l_lo + cell)
                hit += bool(inside.any())
        out[lv] = hit / (rows * (c1 - c0))
    return out


def test_fractions_match_a_naive_count() -> None:
    bodies, _, _ = _bodies(tilt_deg=0.0)
    b = level_bands(bodies, LATERAL)
    rng = np.random.default_rng(0)
    points = rng.uniform([-30, -10, -130], [40, 10, 40], (3000, 3)) + [5.0, 1.0, 2.0]
    cov = LevelCoverage(b, cell_mm=4.0, half_width_mm=20.0)
    cov.add(points[:1000])
    cov.add(points[1000:])  # in pieces, as frames arrive
    got, want = cov.fractions(), _naive(points, b, 4.0, 20.0)
    assert got.keys() == want.keys()
    for lv in got:
        assert got[lv] == pytest.approx(want[lv]), lv
    assert 0.0 < min(got.values()) and max(got.values()) <= 1.0
    # points per band, counted independently (all within the +-80 mm lateral range)
    d = points - b.origin_mm
    along = d @ b.axis
    want_n = {lv: int(((along >= lo) & (along < hi)).sum()) for lv, (lo, hi) in b.bands.items()}
    assert cov.points() == want_n and sum(want_n.values()) > 0


def test_nothing_seen_is_zero_and_a_filled_window_is_one() -> None:
    bodies, _, _ = _bodies(tilt_deg=0.0)
    b = level_bands(bodies, LATERAL)
    cov = LevelCoverage(b, cell_mm=2.0, half_width_mm=10.0)
    assert set(cov.fractions().values()) == {0.0}
    lo, hi = b.bands[3]
    a, l_ = np.meshgrid(np.arange(lo + 0.1, hi, 0.2), np.arange(-9.9, 10.0, 0.2))
    pts = b.origin_mm + a.reshape(-1, 1) * b.axis + l_.reshape(-1, 1) * b.lateral
    cov.add(pts)
    f = cov.fractions()
    assert f[3] == 1.0 and f[1] == 0.0 and 0.0 < f[2] < 1.0  # bands overlap


def test_unknown_midline_is_taken_from_the_points() -> None:
    bodies, _, _ = _bodies(tilt_deg=0.0)
    b = level_bands(bodies, LATERAL, midline_known=False)
    cov = LevelCoverage(b)
    rng = np.random.default_rng(1)
    pts = b.origin_mm + rng.normal(0, 8, (4000, 3)) * [1, 0, 6] + [17.0, 0, 0]
    cov.add(pts)
    assert cov.midline_mm == pytest.approx(17.0, abs=2.0)
    known = LevelCoverage(level_bands(bodies, LATERAL))
    known.add(pts)
    assert known.midline_mm == 0.0


@pytest.mark.parametrize("registered", [True, False], ids=["cbct_depth", "us_plane"])
def test_bands_from_a_lateral_xray_bracket_the_true_bodies(registered: bool) -> None:
    spine = generate_spine(3)
    geometry = lateral_geometry(spine, pixel_mm=1.0)
    label = render_lateral_xray(spine, geometry).label.astype(np.int64)
    plane = body_midplane_point_mm(spine) if registered else None
    xray = XrayObservation(label, geometry, plane_point_mm=plane)
    if registered:
        b = bands_from_xray(xray)
    else:
        with pytest.raises(ValueError, match="its level bands need at least 200 bone points"):
            bands_from_xray(xray, np.zeros((199, 3)))
        # posterior surface points of the arches stand in for the sweep's bone points
        arch = np.vstack(
            [
                v.vertices_mm[v.vertices_mm[:, 1] > v.body_centroid_mm[1] + 15]
                for v in spine.vertebrae.values()
            ]
        )
        b = bands_from_xray(xray, arch)
    assert b.midline_known is registered
    for lv, v in spine.vertebrae.items():
        t = (np.asarray(v.body_centroid_mm) - b.origin_mm) @ b.axis
        lo, hi = b.bands[int(lv)]
        # the centroid sits BAND_BELOW : BAND_ABOVE of the way down its band, within a few mm
        expected = lo + (hi - lo) * BAND_BELOW / (BAND_BELOW + BAND_ABOVE)
        assert abs(t - expected) < 3.0, (lv, t, lo, hi)


def test_a_levels_box_spans_its_band_and_window_on_the_midline() -> None:
    bodies, axis, _ = _bodies(tilt_deg=20.0)
    b = level_bands(bodies, LATERAL)
    cov = LevelCoverage(b, cell_mm=2.0, half_width_mm=15.0)
    T, size = cov.box(2)
    R = T[:3, :3]
    np.testing.assert_allclose(R.T @ R, np.eye(3), atol=1e-12)
    assert np.linalg.det(R) == pytest.approx(1.0)
    np.testing.assert_allclose(R[:, 1], axis, atol=1e-9)  # y along the spine
    lo, hi = b.bands[2]
    np.testing.assert_allclose(T[:3, 3], b.origin_mm + axis * (lo + hi) / 2, atol=1e-9)
    np.testing.assert_allclose(size, [30.0, hi - lo, 2.0])


def test_covered_compares_with_the_criterion() -> None:
    assert covered({1: 0.49, 2: 0.5, 3: 0.9}, 0.5) == {1: False, 2: True, 3: True}
