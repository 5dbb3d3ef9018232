"""Farthest point sampling against a python-loop reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from usx_model.ops.fps import _fps_compiled, _fps_torch, farthest_point_sample


def naive_fps(points: np.ndarray, m: int) -> list[int]:
    """Loop FPS: start at 0, never repeat a point, then cycle when m > n."""
    n = len(points)
    chosen = [0]
    best = np.full(n, np.inf)
    while len(chosen) < min(m, n):
        last = points[chosen[-1]]
        for i in range(n):
            d = sum((points[i, j] - last[j]) ** 2 for j in range(3))
            best[i] = min(best[i], d)
        cand = [i for i in range(n) if i not in chosen]
        chosen.append(max(cand, key=lambda i: (best[i], -i)))
    return [chosen[j % n] for j in range(m)]


@pytest.mark.parametrize(
    ("n", "m"),
    [(50, 10), (50, 50), (30, 45), (1, 4), (7, 1)],
    ids=["random", "m_equals_n", "m_gt_n", "single_point", "one_sample"],
)
def test_matches_naive(n: int, m: int) -> None:
    rng = np.random.default_rng(n * 100 + m)
    pts = rng.normal(size=(2, n, 3))
    got = farthest_point_sample(torch.from_numpy(pts), m)
    assert got.shape == (2, m) and got.dtype == torch.int64
    for b in range(2):
        assert got[b].tolist() == naive_fps(pts[b], m)


def test_duplicates_all_points_before_repeat() -> None:
    pts = np.array([[0, 0, 0], [1, 0, 0], [1, 0, 0], [0, 0, 0], [0, 2, 0]], dtype=float)
    got = farthest_point_sample(torch.from_numpy(pts)[None], 7)[0].tolist()
    assert got == naive_fps(pts, 7)
    assert sorted(got[:5]) == [0, 1, 2, 3, 4]
    assert got[5:] == got[:2]


def test_m_equals_n_is_permutation() -> None:
    pts = torch.rand(3, 64, 3)
    got = farthest_point_sample(pts, 64)
    for row in got:
        assert sorted(row.tolist()) == list(range(64))


def test_ragged_lengths_equal_separate_calls() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(40, 3)), rng.normal(size=(25, 3))
    padded = np.zeros((2, 40, 3))
    padded[0], padded[1, :25] = a, b
    got = farthest_point_sample(torch.from_numpy(padded), 30, torch.tensor([40, 25]))
    assert got[0].tolist() == naive_fps(a, 30)
    assert got[1].tolist() == naive_fps(b, 30)
    assert int(got[1].max()) < 25


def test_no_gradient_and_deterministic() -> None:
    pts = torch.rand(2, 100, 3, requires_grad=True)
    a, b = farthest_point_sample(pts, 20), farthest_point_sample(pts, 20)
    assert not a.requires_grad
    assert torch.equal(a, b)


@pytest.mark.parametrize(
    ("points", "m", "lengths", "match"),
    [
        (torch.rand(2, 10, 4), 3, None, r"expected \(B, N, 3\) float points, got \(2, 10, 4\)"),
        (torch.rand(10, 3), 3, None, r"expected \(B, N, 3\)"),
        (torch.zeros(1, 0, 3), 3, None, "empty cloud"),
        (torch.tensor([[[0.0, float("nan"), 0.0]]]), 1, None, "NaN or Inf"),
        (torch.rand(1, 5, 3), 0, None, "n_samples: expected >= 1"),
        (torch.rand(2, 5, 3), 2, torch.tensor([5, 0]), r"lengths: expected values in \[1, 5\]"),
        (torch.randint(0, 5, (1, 5, 3)), 2, None, "dtype"),
    ],
    ids=["four_coords", "unbatched", "empty", "nan", "zero_samples", "bad_lengths", "int"],
)
def test_bad_input(points, m, lengths, match) -> None:
    with pytest.raises(ValueError, match=match):
        farthest_point_sample(points, m, lengths)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    "points",
    [
        lambda g, dt: torch.randn(4, 700, 3, generator=g, dtype=dt),
        # lattices: many equal distances, so the tie rule decides, within the compiled
        # loop's lanes, across them and in the tail (7^3 = 343 is not a multiple of 16)
        lambda g, dt: torch.stack(
            torch.meshgrid(*[torch.arange(8, dtype=dt)] * 3, indexing="ij"), -1
        ).reshape(1, -1, 3),
        lambda g, dt: torch.stack(
            torch.meshgrid(*[torch.arange(7, dtype=dt)] * 3, indexing="ij"), -1
        ).reshape(1, -1, 3),
    ],
    ids=["random", "lattice_512", "lattice_343"],
)
def test_compiled_loop_gives_the_torch_loops_indices(points, dtype) -> None:
    x = points(torch.Generator().manual_seed(3), dtype)
    b, n, _ = x.shape
    lengths = torch.tensor([n - 7 * i for i in range(b)])
    for lens in (lengths, torch.full((b,), n)):
        a = _fps_compiled(x, lens, min(300, n))
        t = _fps_torch(x, lens, min(300, n))
        assert torch.equal(a, t)
