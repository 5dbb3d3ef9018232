"""Chamfer distance against scipy cdist, gradients by gradcheck."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist

from usx_model.ops.chamfer import chamfer_distance


def naive_chamfer(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    d = cdist(x, y)
    d_xy, d_yx = d.min(1), d.min(0)
    return 0.5 * (d_xy.mean() + d_yx.mean()), (d_xy**2).mean() + (d_yx**2).mean()


@pytest.mark.parametrize(
    ("n", "m", "chunk"),
    [(30, 30, 2048), (50, 17, 8), (1, 40, 3), (40, 1, 2048)],
    ids=["equal", "ragged_chunked", "single_x", "single_y"],
)
def test_matches_cdist(n: int, m: int, chunk: int) -> None:
    rng = np.random.default_rng(n + m)
    x, y = rng.normal(size=(3, n, 3)), rng.normal(size=(3, m, 3))
    res = chamfer_distance(torch.from_numpy(x), torch.from_numpy(y), chunk_size=chunk)
    assert res.cd_p.shape == (3,) and res.dist_xy.shape == (3, n) and res.idx_yx.shape == (3, m)
    for b in range(3):
        cd_p, cd_t = naive_chamfer(x[b], y[b])
        assert float(res.cd_p[b]) == pytest.approx(cd_p, rel=1e-9)
        assert float(res.cd_t[b]) == pytest.approx(cd_t, rel=1e-9)


def test_identical_and_duplicate_clouds_are_zero() -> None:
    x = torch.tensor([[[0.0, 0, 0], [0, 0, 0], [1, 2, 3]]])
    res = chamfer_distance(x, x[:, [2, 0]])
    assert float(res.cd_t) == 0.0
    assert float(res.cd_p) < 1e-5  # sqrt(eps) floor


def test_known_value() -> None:
    x = torch.tensor([[[0.0, 0, 0]]])
    y = torch.tensor([[[3.0, 4, 0], [0, 0, 1]]])
    res = chamfer_distance(x, y)
    # x→y: 1; y→x: 5 and 1 (mean 3) → cd_p = ½(1 + 3) = 2; cd_t = 1 + (25 + 1)/2 = 14.
    assert float(res.cd_p) == pytest.approx(2.0)
    assert float(res.cd_t) == pytest.approx(14.0)


@pytest.mark.parametrize("which", ["cd_p", "cd_t"])
def test_gradcheck(which: str) -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 6, 3, dtype=torch.float64, generator=gen, requires_grad=True)
    y = torch.randn(2, 4, 3, dtype=torch.float64, generator=gen, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: getattr(chamfer_distance(a, b), which), (x, y))


def test_grad_memory_path_needs_no_matrix() -> None:
    # The gradient must not depend on chunking: same result at chunk 1 and 2048.
    x = torch.randn(1, 20, 3, dtype=torch.float64, requires_grad=True)
    y = torch.randn(1, 15, 3, dtype=torch.float64)
    g1 = torch.autograd.grad(chamfer_distance(x, y, chunk_size=1).cd_p.sum(), x)[0]
    g2 = torch.autograd.grad(chamfer_distance(x, y).cd_p.sum(), x)[0]
    torch.testing.assert_close(g1, g2)


@pytest.mark.parametrize(
    ("x", "y", "match"),
    [
        (torch.rand(1, 5, 2), torch.rand(1, 5, 3), r"x: expected \(B, N, 3\) float points"),
        (torch.rand(1, 5, 3), torch.zeros(1, 0, 3), "y: expected at least one point"),
        (torch.full((1, 2, 3), float("nan")), torch.rand(1, 5, 3), "x: points contain NaN"),
        (torch.rand(2, 5, 3), torch.rand(3, 5, 3), "batch sizes differ"),
    ],
    ids=["shape", "empty", "nan", "batch"],
)
def test_bad_input(x, y, match) -> None:
    with pytest.raises(ValueError, match=match):
        chamfer_distance(x, y)
