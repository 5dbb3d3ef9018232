"""Min-cut refinement: the normal-weighted cut follows a crease; normals against analytic ones."""

import numpy as np
import pytest

from usx_model.levels.refine import (
    neighbour_graph,
    point_normals,
    refine_mincut,
)


def _crease(angle_deg: float, offset_mm: float, n: int = 20, width: int = 30):
    """Two 1 mm point grids meeting at a crease along y, with no gap.

    The floor (lower level, index 1) lies in z = 0 at x > 0, the wall (upper level,
    index 0) rises from the crease line at ``angle_deg`` to the floor. Both grids start
    0.5 mm from the crease, so as many graph edges (radius 1.5 mm) cross the crease as
    cross any row of the wall: only the normals tell the crease from the prior boundary,
    the plane z = ``offset_mm`` that puts the wall's lowest rows into the lower level.

    Returns:
        points (N, 3) mm, prior idx (N,), above (N, 1) mm, truth idx (N,), distance from
        the crease line (N,) mm.
    """
    a = np.deg2rad(angle_deg)
    t = np.arange(n) + 0.5
    tt, yy = np.meshgrid(t, np.arange(width, dtype=float), indexing="ij")
    wall = np.stack([-np.cos(a) * tt, yy, np.sin(a) * tt], axis=-1).reshape(-1, 3)
    floor = np.stack([tt, yy, np.zeros_like(tt)], axis=-1).reshape(-1, 3)
    pts = np.concatenate([wall, floor])
    truth = np.r_[np.zeros(len(wall), int), np.ones(len(floor), int)]
    above = pts[:, 2:] - offset_mm
    idx = (above[:, 0] < 0).astype(int)
    return pts, idx, above, truth, np.hypot(pts[:, 0], pts[:, 2])


@pytest.mark.parametrize("angle_deg", [60.0, 90.0, 120.0])
@pytest.mark.parametrize("offset_mm", [2.5, 3.5, 5.5])
def test_cut_follows_a_crease_only_with_normals(angle_deg, offset_mm):
    pts, idx, above, truth, crease_mm = _crease(angle_deg, offset_mm)
    assert np.any(idx != truth)
    # the normal of a point within 1 mm of the crease is fitted across it: that row may
    # go either way, every other point must be right
    far = crease_mm > 1.0
    with_normals = refine_mincut(pts, idx, above, seed_mm=10.0)
    np.testing.assert_array_equal(with_normals[far], truth[far])
    # equal edge costs: the crease is no cheaper to cut than the prior boundary
    plain = refine_mincut(pts, idx, above, seed_mm=10.0, normal_sigma=None)
    assert np.sum(plain[far] != truth[far]) >= len(np.unique(pts[:, 1]))


def _rotation(seed: int) -> np.ndarray:
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    return q * np.sign(np.diag(r))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_point_normals_of_a_plane_and_a_sphere(seed):
    rot = _rotation(seed)
    g = np.arange(-15.0, 16.0)
    plane = np.stack(np.meshgrid(g, g, [0.0], indexing="ij"), axis=-1).reshape(-1, 3)
    n = point_normals(plane @ rot.T + [100.0, -250.0, 400.0])
    np.testing.assert_allclose(np.abs(n @ rot[:, 2]), 1.0, atol=1e-9)
    # Fibonacci sphere of radius 30 mm, ~1 mm spacing: normals are radial up to the
    # curvature over a 10-point patch
    k = 4 * np.pi * 30.0**2
    i = np.arange(int(k)) + 0.5
    z = 1 - 2 * i / len(i)
    phi = np.pi * (1 + 5**0.5) * i
    u = np.stack([np.sqrt(1 - z**2) * np.cos(phi), np.sqrt(1 - z**2) * np.sin(phi), z], axis=1)
    n = point_normals(30.0 * u @ rot.T)
    assert np.min(np.abs(np.einsum("ni,ni->n", n, u @ rot.T))) > 0.999


def test_undefined_normals_cost_the_full_edge():
    # a line of points has no normals: the cut must ignore them, not cut for free
    pts = np.c_[np.arange(20.0), np.zeros(20), np.zeros(20)]
    above = (pts[:, 0] - 9.5)[:, None]
    idx = (above[:, 0] < 0).astype(int)
    np.testing.assert_array_equal(refine_mincut(pts, idx, above), idx)


@pytest.mark.parametrize(
    "args, match",
    [
        ((np.zeros((4, 2)), np.zeros(4, int), np.zeros((4, 1))), r"\(N, 3\)"),
        ((np.zeros((4, 3)), np.zeros(3, int), np.zeros((4, 1))), "idx"),
        ((np.zeros((4, 3)), np.zeros(4, int), np.zeros(4)), "idx"),
        ((np.full((4, 3), np.nan), np.zeros(4, int), np.zeros((4, 1))), "finite"),
        ((np.zeros((4, 3)), np.zeros(4, int), np.full((4, 1), np.inf)), "finite"),
    ],
)
def test_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        refine_mincut(*args)


def test_a_graph_built_beforehand_gives_the_same_cut():
    pts, idx, above, _, _ = _crease(90.0, 3.5)
    graph = neighbour_graph(pts)
    np.testing.assert_array_equal(
        refine_mincut(pts, idx, above, seed_mm=10.0, graph=graph),
        refine_mincut(pts, idx, above, seed_mm=10.0),
    )
    # a graph of other points is refused, not used
    with pytest.raises(ValueError, match=r"graph: built on \d+ points, expected"):
        refine_mincut(pts[:-3], idx[:-3], above[:-3], graph=graph)
