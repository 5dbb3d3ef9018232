"""Shared point-cloud validation: accepted inputs and the pinned messages for bad ones."""

from __future__ import annotations

import numpy as np
import pytest

from usx_model.base.points import (
    ThinnedCloud,
    check_points,
    nearest_distance,
    nearest_neighbours,
    thin_points,
)


@pytest.mark.parametrize(
    ("points", "min_count"),
    [
        (np.zeros((0, 3), dtype=np.float32), 0),
        ([[1, 2, 3]], 1),
        (np.arange(12.0).reshape(4, 3), 4),
    ],
    ids=["empty_allowed", "int_list", "exactly_min"],
)
def test_good_input_becomes_float64(points, min_count) -> None:
    got = check_points(points, "cloud", min_count)
    assert got.dtype == np.float64 and got.shape == (len(points), 3)
    np.testing.assert_array_equal(got, np.asarray(points, dtype=np.float64))


def test_result_is_a_copy() -> None:
    src = np.ones((2, 3))
    check_points(src, "cloud")[0, 0] = 5.0
    assert src[0, 0] == 1.0


@pytest.mark.parametrize(
    ("points", "min_count", "match"),
    [
        (np.zeros((4, 2)), 0, r"expected cloud as \(N, 3\) float points, got \(4, 2\)"),
        (np.zeros(3), 0, r"expected cloud as \(N, 3\) float points, got \(3,\)"),
        (np.zeros((2, 3)), 3, "cloud needs at least 3 points, got 2"),
        (np.array([[0.0, np.nan, 0.0]]), 0, "cloud contains non-finite values"),
        (np.array([[0.0, 0.0, np.inf]]), 0, "cloud contains non-finite values"),
    ],
    ids=["columns", "flat", "too_few", "nan", "inf"],
)
def test_bad_input(points, min_count, match) -> None:
    with pytest.raises(ValueError, match=match):
        check_points(points, "cloud", min_count)


def test_nearest_distance_is_the_brute_force_minimum() -> None:
    rng = np.random.default_rng(3)
    ref = rng.normal(0.0, 10.0, (700, 3))
    ref[:, 2] = 0.0  # a planar reference, like the X-ray body points
    ref[100:120] = ref[0]  # exact duplicates
    query = rng.normal(0.0, 15.0, (300, 3))
    naive = np.sqrt(((query[:, None, :] - ref[None, :, :]) ** 2).sum(-1)).min(axis=1)
    np.testing.assert_allclose(nearest_distance(query, ref), naive, rtol=0, atol=1e-12)
    assert nearest_distance(np.zeros((0, 3)), ref).shape == (0,)


@pytest.mark.parametrize(
    ("query", "ref", "match"),
    [
        (np.zeros((2, 3)), np.zeros((0, 3)), "reference points needs at least 1 points, got 0"),
        (np.zeros((2, 2)), np.zeros((2, 3)), r"expected query points as \(N, 3\)"),
        (np.zeros((2, 3)), np.full((2, 3), np.nan), "reference points contains non-finite"),
    ],
    ids=["empty_reference", "query_columns", "nan_reference"],
)
def test_nearest_distance_bad_input(query, ref, match) -> None:
    with pytest.raises(ValueError, match=match):
        nearest_distance(query, ref)


def test_nearest_neighbours_are_the_brute_force_k_nearest() -> None:
    rng = np.random.default_rng(4)
    ref, query = rng.normal(0.0, 10.0, (400, 3)), rng.normal(0.0, 12.0, (50, 3))
    d_all = np.sqrt(((query[:, None, :] - ref[None, :, :]) ** 2).sum(-1))
    dist, idx = nearest_neighbours(query, ref, 6)
    np.testing.assert_array_equal(idx, np.argsort(d_all, axis=1)[:, :6])  # no ties here
    np.testing.assert_allclose(dist, np.sort(d_all, axis=1)[:, :6], rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="reference points needs at least 6 points, got 5"):
        nearest_neighbours(query, ref[:5], 6)


def _thin_naive(points: np.ndarray, voxel_mm: float) -> np.ndarray:
    first: dict[tuple, int] = {}
    for i, p in enumerate(points):
        first.setdefault(tuple(np.floor(p / voxel_mm).astype(int)), i)
    return points[sorted(first.values())]


@pytest.mark.parametrize("voxel_mm", [0.5, 1.0, 3.0])
def test_thin_points_keeps_the_first_point_of_each_voxel(voxel_mm) -> None:
    pts = np.random.default_rng(3).uniform(-20.0, 20.0, (3000, 3))
    np.testing.assert_array_equal(thin_points(pts, voxel_mm), _thin_naive(pts, voxel_mm))


def test_thinning_at_nested_sizes_is_thinning_once_at_the_coarser() -> None:
    # why the sweep is thinned once, at the completion's size: the completion's thinning
    # (same size) and the placement's (twice it) then give what they would on all points
    pts = np.random.default_rng(4).uniform(-30.0, 30.0, (20000, 3))
    once = thin_points(pts, 1.0)
    np.testing.assert_array_equal(thin_points(once, 1.0), once)
    np.testing.assert_array_equal(thin_points(once, 2.0), thin_points(pts, 2.0))
    np.testing.assert_array_equal(thin_points(thin_points(pts, 0.5), 1.0), once)


@pytest.mark.parametrize("voxel_mm", [0.5, 1.0, 3.0])
def test_a_thinned_cloud_kept_chunk_by_chunk_is_thin_points_of_the_whole(voxel_mm) -> None:
    rng = np.random.default_rng(5)
    # chunks that revisit the same voxels (passes over one place), with points on voxel
    # faces and on both sides of the origin
    base = rng.uniform(-15.0, 15.0, (400, 3))
    chunks = [base[rng.choice(len(base), 150)] + rng.normal(0, 0.3, (150, 3)) for _ in range(12)]
    chunks[3] = np.round(chunks[3] / voxel_mm) * voxel_mm  # exactly on voxel faces
    chunks.insert(5, np.zeros((0, 3)))
    cloud = ThinnedCloud(voxel_mm)
    for c in chunks:
        cloud.add(c)
    whole = np.concatenate(chunks)
    np.testing.assert_array_equal(cloud.points(), _thin_naive(whole, voxel_mm))
    assert len(cloud) == len(cloud.points())


@pytest.mark.parametrize(
    ("voxel_mm", "points", "match"),
    [
        (0.0, np.zeros((1, 3)), "voxel_mm: expected > 0, got 0.0"),
        (1.0, np.zeros((2, 2)), r"expected points_mm as \(N, 3\) float points, got \(2, 2\)"),
        (1.0, [[0.0, np.nan, 0.0]], "points_mm contains non-finite values"),
        (1.0, [[0.0, 2e6, 0.0]], "expected within 1.04858e\\+06 mm of the origin"),
    ],
)
def test_a_thinned_cloud_rejects_bad_input(voxel_mm, points, match) -> None:
    with pytest.raises(ValueError, match=match):
        ThinnedCloud(voxel_mm).add(np.asarray(points, dtype=float))
