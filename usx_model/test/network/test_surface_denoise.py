"""Surface denoising against a naive reference and analytic planes and spheres."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from usx_model.network.surface_denoise import denoise_surface


def naive_denoise(points: np.ndarray, k: int, step: float, stride: int) -> np.ndarray:
    """Per anchor a brute-force k-nearest SVD plane; per point its nearest anchor's plane."""
    planes = []
    for a in points[::stride]:
        nb = points[np.argsort(np.linalg.norm(points - a, axis=1))[:k]]
        c = nb.mean(axis=0)
        planes.append((c, np.linalg.svd(nb - c)[2][-1]))  # least-variance direction
    anchors = points[::stride]
    out = points.copy()
    for i, p in enumerate(points):
        c, normal = planes[int(np.argmin(np.linalg.norm(anchors - p, axis=1)))]
        out[i] = p - step * ((p - c) @ normal) * normal
    return out


def noisy_plane(sigma: float, seed: int = 0) -> np.ndarray:
    """(400, 3) grid on z = 0, 0.5 spacing, with N(0, sigma) noise along z."""
    x, y = np.meshgrid(np.arange(20) * 0.5, np.arange(20) * 0.5)
    z = np.random.default_rng(seed).normal(0.0, sigma, x.size)
    return np.stack([x.ravel(), y.ravel(), z], axis=1)


def sphere(n: int, radius: float, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, 3))
    return radius * v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.mark.parametrize(
    ("k", "step", "stride"), [(8, 1.0, 1), (24, 0.5, 1), (32, 0.5, 4), (16, 0.25, 3)]
)
def test_matches_naive_reference(k, step, stride) -> None:
    rng = np.random.default_rng(3)
    pts = sphere(600, 10.0) + rng.normal(0.0, 0.3, (600, 3))
    got = denoise_surface(torch.from_numpy(pts)[None], k, step, stride)[0].numpy()
    np.testing.assert_allclose(got, naive_denoise(pts, k, step, stride), atol=1e-9)


def test_noise_across_a_plane_shrinks_by_the_step() -> None:
    pts = noisy_plane(0.2)
    z0 = pts[:, 2].std()
    full = denoise_surface(torch.from_numpy(pts)[None], k=24, step=1.0, anchor_stride=1)[0]
    half = denoise_surface(torch.from_numpy(pts)[None], k=24, step=0.5, anchor_stride=1)[0]
    full, half = full.numpy(), half.numpy()
    assert full[:, 2].std() < 0.3 * z0  # residual: the plane fit's own error, ~ sigma/sqrt(k)
    assert 0.4 * z0 < half[:, 2].std() < 0.65 * z0
    inner = np.all((pts[:, :2] > 2.0) & (pts[:, :2] < 7.5), axis=1)  # away from the rim
    np.testing.assert_allclose(half[inner, :2], pts[inner, :2], atol=0.05)  # along the normal


def test_points_on_a_plane_stay() -> None:
    pts = noisy_plane(0.0)
    got = denoise_surface(torch.from_numpy(pts)[None], k=24, step=0.5)[0].numpy()
    np.testing.assert_allclose(got, pts, atol=1e-9)


def test_a_clean_sphere_shrinks_by_the_expected_curvature_bias() -> None:
    # 2000 points on r = 10: spacing ~0.8, 24-neighbourhood radius a ~2.2, cap depth
    # a^2 / 2r ~0.24; the neighbourhood centroid sits about half of it inside, and the step
    # moves half of that: ~0.06 inward. Planes at every 4th point tilt a little for the
    # points between anchors, but on average the bias is the same.
    pts = torch.from_numpy(sphere(2000, 10.0))[None]
    for stride in (1, 4):
        got = denoise_surface(pts, k=24, step=0.5, anchor_stride=stride)[0].numpy()
        shrink = 10.0 - np.linalg.norm(got, axis=1)
        assert 0.03 < shrink.mean() < 0.09 and np.abs(shrink).max() < 0.2, stride
        assert stride > 1 or shrink.min() > 0.0  # every own plane lies inside the sphere


def test_equivariant_under_similarity() -> None:
    pts = sphere(500, 10.0) + np.random.default_rng(1).normal(0.0, 0.3, (500, 3))
    rot = Rotation.from_rotvec([0.4, -0.2, 0.9]).as_matrix()
    ref = denoise_surface(torch.from_numpy(pts)[None])[0].numpy()
    got = denoise_surface(torch.from_numpy(2.5 * pts @ rot.T + [30.0, -4.0, 7.0])[None])[0]
    np.testing.assert_allclose(got.numpy(), 2.5 * ref @ rot.T + [30.0, -4.0, 7.0], atol=1e-9)


def test_a_plane_at_every_point_is_equivariant_under_order() -> None:
    pts = sphere(500, 10.0) + np.random.default_rng(1).normal(0.0, 0.3, (500, 3))
    perm = np.random.default_rng(2).permutation(len(pts))
    ref = denoise_surface(torch.from_numpy(pts)[None], anchor_stride=1)[0].numpy()
    got = denoise_surface(torch.from_numpy(pts[perm])[None], anchor_stride=1)[0].numpy()
    np.testing.assert_allclose(got, ref[perm], atol=1e-12)


def test_step_zero_is_the_identity_and_batches_are_independent() -> None:
    a, b = sphere(300, 8.0, seed=4), noisy_plane(0.2, seed=5)[:300]
    batch = torch.from_numpy(np.stack([a, b]))
    np.testing.assert_array_equal(denoise_surface(batch, step=0.0).numpy(), batch.numpy())
    one = denoise_surface(torch.from_numpy(b)[None])[0]
    torch.testing.assert_close(denoise_surface(batch)[1], one)


@pytest.mark.parametrize(
    ("points", "kwargs", "match"),
    [
        (torch.zeros(1, 40, 3), {"k": 2}, r"k: expected 3 <= k <= N = 40"),
        (torch.zeros(1, 10, 3), {"k": 24}, r"k: expected 3 <= k <= N = 10 .*got 24"),
        (torch.zeros(1, 40, 3), {"anchor_stride": 0}, "anchor_stride: expected >= 1, got 0"),
        (torch.zeros(1, 40, 3), {"step": 1.5}, r"step: expected a share in \[0, 1\], got 1.5"),
        (torch.zeros(1, 40, 3), {"step": -0.1}, r"step: expected a share in \[0, 1\]"),
        (torch.full((1, 40, 3), float("nan")), {}, "points: points contain NaN or Inf"),
        (torch.zeros(40, 3), {}, r"points: expected \(B, N, 3\) float points, got \(40, 3\)"),
        (torch.zeros(1, 0, 3), {}, "points: expected at least one point"),
    ],
    ids=[
        "k_small",
        "k_above_n",
        "stride_zero",
        "step_big",
        "step_negative",
        "nan",
        "shape",
        "empty",
    ],
)
def test_bad_input(points, kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        denoise_surface(points, **kwargs)
