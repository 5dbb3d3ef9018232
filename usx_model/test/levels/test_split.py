"""Level split with X-ray centroids, the min-cut refinement and the US-only fallback."""

from __future__ import annotations

import numpy as np
import pytest

from usx_model.levels.refine import refine_mincut
from usx_model.levels.split import arch_boundary_mm, split_levels_xray
from usx_model.levels.us_only import (
    BODY_DEPTH_MM,
    TIP_TO_BODY_CRANIAL_MM,
    body_centroids_from_tips,
    spinous_peaks,
    split_levels_us_only,
)

PITCH = 36.0


def _centroids(curve_deg: float = 0.0) -> dict[int, np.ndarray]:
    """Body centroids L1..L5 on an arc in the y-z plane (x lateral), L1 on top."""
    ang = np.radians(curve_deg) * (np.arange(5) - 2) / 4
    return {
        lv: np.array([0.0, 60.0 * (1 - np.cos(a)), PITCH * (3 - lv)])
        for lv, a in zip(range(1, 6), ang, strict=True)
    }


@pytest.mark.parametrize("curve_deg", [0.0, 40.0])
def test_points_near_each_body_get_its_level(curve_deg):
    c = _centroids(curve_deg)
    rng = np.random.default_rng(0)
    pts, truth = [], []
    for lv, cc in c.items():
        # body-depth points within 0.35 pitch of the centroid along z: unambiguous
        p = cc + np.column_stack(
            [
                rng.uniform(-20, 20, 200),
                rng.uniform(-5, 5, 200) + 10,
                rng.uniform(-0.35, 0.35, 200) * PITCH,
            ]
        )
        pts.append(p)
        truth.append(np.full(200, lv))
    pts, truth = np.vstack(pts), np.concatenate(truth)
    got = split_levels_xray(pts, c, [1.0, 0, 0], boundary="rule", refine=False)
    np.testing.assert_array_equal(got, truth)


BOUNDARY_CASES = [
    ([0.0, 0.0, 19.0], 2),  # just above the L2/L3 midpoint (z = 18) at body depth
    ([0.0, 0.0, 17.0], 3),
    ([0.0, 50.0, 12.0], 2),  # medial and deep: the upper arch hangs below the midpoint
    ([30.0, 40.0, 22.0], 3),  # lateral and deep: the lower transverse process reaches up
    ([120.0, 10.0, 0.0], 0),  # outside every box laterally
    ([0.0, -80.0, 0.0], 0),  # far anterior
    ([0.0, 10.0, 140.0], 0),  # far above L1
]


def test_boundary_cases():
    """One batch (the depth axis is oriented towards the batch, which lies posterior)."""
    pts = np.array([p for p, _ in BOUNDARY_CASES])
    got = split_levels_xray(pts, _centroids(), [1.0, 0, 0], boundary="rule", refine=False)
    np.testing.assert_array_equal(got, [lv for _, lv in BOUNDARY_CASES])


@pytest.mark.parametrize(
    ("lateral", "depth", "expected"),
    [(0.0, 0.0, 0.0), (0.0, 40.0, -8.0), (40.0, 40.0, 8.0), (18.0, 40.0, 0.0), (0.0, 12.5, -4.0)],
)
def test_arch_boundary_table(lateral, depth, expected):
    assert arch_boundary_mm(np.array([lateral]), np.array([depth]), 8.0)[0] == pytest.approx(
        expected
    )


def test_mincut_moves_a_tongue_across_the_plane():
    """Upper bone with a tongue reaching 8 mm below the plane z = 0, lower bone beside it
    across a 3 mm gap: the plane gets the tongue wrong, the cut through the gap does not."""
    g = np.arange(0.0, 20.0, 0.5)
    xx, zz = np.meshgrid(g, np.arange(-20.0, 20.0, 0.5), indexing="ij")
    x, z = xx.ravel(), zz.ravel()
    upper = ((z >= 3) & (z <= 18)) | ((x <= 5) & (z > -8) & (z < 3))
    lower = (x >= 8) & (z <= -3) | ((z <= -12) & (x < 8))
    keep = upper | lower
    pts = np.column_stack([x, np.zeros_like(x), z])[keep]
    truth = np.where(upper[keep], 0, 1)
    above = pts[:, 2:3]  # signed distance above the plane z = 0
    idx = (above[:, 0] < 0).astype(int)
    assert np.mean(idx != truth) > 0.05  # the plane alone is wrong on the tongue
    refined = refine_mincut(pts, idx, above, radius_mm=0.75, seed_mm=10.0, edge_cost=100)
    np.testing.assert_array_equal(refined, truth)


def _spinous_cloud(tips_z, rng, flat=False, heights=None):
    """Midline ridge with a bump (spinous tip) at each z, plus a lateral lamina sheet."""
    z = rng.uniform(-95, 95, 20000)
    x = rng.uniform(-40, 40, 20000)
    heights = heights or [1.0] * len(tips_z)
    bump = sum(
        h * np.exp(-0.5 * ((z - t) / 5.0) ** 2) for t, h in zip(tips_z, heights, strict=True)
    )
    y = 30.0 + (0.0 if flat else 25.0) * bump * (np.abs(x) < 6) + rng.normal(0, 0.3, z.size)
    return np.column_stack([x, y, z])


def test_us_only_finds_spinous_tips_and_places_bodies():
    rng = np.random.default_rng(1)
    tips = [70.0, 35.0, 0.0, -35.0, -70.0]
    pts = _spinous_cloud(tips, rng)
    found, axes, centre = spinous_peaks(pts, cranial=[0, 0, 1], towards_probe=[0, 1, 0])
    # tips are measured from the cloud centroid along the (cranial) axis, cranial first
    np.testing.assert_allclose(found + pts.mean(axis=0) @ axes[0], tips, atol=2.5)
    np.testing.assert_allclose(np.abs(axes), np.eye(3)[[2, 0, 1]], atol=0.05)
    assert axes[0] @ [0, 0, 1] > 0 and axes[2] @ [0, 1, 0] > 0
    flipped, _, _ = spinous_peaks(pts, cranial=[0, 0, -1], towards_probe=[0, 1, 0])
    np.testing.assert_allclose(flipped, -found[::-1], atol=2.5)
    # bodies sit at the fitted offsets from their tips (independent arithmetic)
    bodies = body_centroids_from_tips(pts, found, axes, centre, (1, 2, 3, 4, 5))
    c = pts.mean(axis=0)
    for i, lv in enumerate(range(1, 6)):
        rel = bodies[lv] - c
        assert rel @ axes[0] == pytest.approx(found[i] - TIP_TO_BODY_CRANIAL_MM[i])
        assert rel @ axes[2] == pytest.approx(BODY_DEPTH_MM[i])
    # the split is the X-ray split with those centroids
    lv = split_levels_us_only(pts, cranial=[0, 0, 1], towards_probe=[0, 1, 0])
    np.testing.assert_array_equal(lv, split_levels_xray(pts, bodies, axes[1]))


def test_extra_low_peak_is_dropped():
    tips = [80.0, 50.0, 20.0, -10.0, -40.0, -70.0]
    pts = _spinous_cloud(tips, np.random.default_rng(3), heights=[1, 1, 0.3, 1, 1, 1])
    found, axes, _ = spinous_peaks(pts, [0, 0, 1], [0, 1, 0])
    assert len(found) == 6
    kept, _, _ = spinous_peaks(pts, [0, 0, 1], [0, 1, 0], max_peaks=5)
    expected = np.array([80.0, 50.0, -10.0, -40.0, -70.0]) - pts.mean(axis=0) @ axes[0]
    np.testing.assert_allclose(kept, expected, atol=2.5)


def test_us_only_without_peaks_falls_back_to_equal_parts():
    pts = _spinous_cloud([], np.random.default_rng(2), flat=True)
    lv = split_levels_us_only(pts, cranial=[0, 0, 1], towards_probe=[0, 1, 0])
    # five equal slabs of the z extent (~-95..95, 38 mm each)
    assert np.all(lv[pts[:, 2] > 60] == 1) and np.all(lv[pts[:, 2] < -60] == 5)
    assert np.all(lv[np.abs(pts[:, 2]) < 15] == 3)


C2 = {1: np.zeros(3), 2: np.array([0.0, 0.0, -36.0])}


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (
            lambda: split_levels_xray(np.zeros((3, 2)), C2, [1, 0, 0]),
            r"expected points_mm as \(N, 3\)",
        ),
        (lambda: split_levels_xray(np.full((3, 3), np.nan), C2, [1, 0, 0]), "non-finite"),
        (
            lambda: split_levels_xray(np.zeros((3, 3)), {1: np.zeros(3)}, [1, 0, 0]),
            "at least 2 levels",
        ),
        (
            lambda: split_levels_xray(np.zeros((3, 3)), {1: np.zeros(3), 7: np.ones(3)}, [1, 0, 0]),
            r"levels in 1..5",
        ),
        (
            lambda: split_levels_xray(
                np.zeros((3, 3)), {1: np.zeros(3), 2: [np.nan] * 3}, [1, 0, 0]
            ),
            "L2 centroid contains non-finite",
        ),
        (lambda: split_levels_xray(np.zeros((3, 3)), C2, [0, 0, 0]), "lateral_axis as a non-zero"),
        (
            lambda: split_levels_xray(np.zeros((3, 3)), C2, [1, 0, 0], midplanes={}),
            r"midplanes lack levels \[1, 2\]",
        ),
        (lambda: split_levels_us_only(np.zeros((2, 3)), [0, 0, 1], [0, 1, 0]), "N >= 4"),
        (
            lambda: split_levels_us_only(np.ones((9, 3)), [0, 0, 0], [0, 1, 0]),
            "cranial as a non-zero",
        ),
        (
            lambda: split_levels_us_only(np.ones((9, 3)), [0, 0, 1], [0, 1, 0], levels=(3, 2)),
            "ascending levels",
        ),
    ],
)
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()
