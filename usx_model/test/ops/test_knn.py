"""kNN against scipy's cKDTree."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial import cKDTree

from usx_model.ops.knn import knn_points, pairwise_sq_dist


@pytest.mark.parametrize(
    ("m", "n", "k", "chunk"), [(40, 60, 5, 7), (60, 60, 16, 2048), (3, 9, 9, 1)]
)
def test_matches_kdtree(m: int, n: int, k: int, chunk: int) -> None:
    rng = np.random.default_rng(m + n + k)
    q, r = rng.normal(size=(2, m, 3)), rng.normal(size=(2, n, 3))
    res = knn_points(torch.from_numpy(q), torch.from_numpy(r), k, chunk_size=chunk)
    assert res.idx.shape == (2, m, k)
    for b in range(2):
        dist, idx = cKDTree(r[b]).query(q[b], k=k)
        dist, idx = dist.reshape(m, k), idx.reshape(m, k)
        np.testing.assert_array_equal(res.idx[b].numpy(), idx)
        np.testing.assert_allclose(res.dist2[b].numpy(), dist**2, atol=1e-9)


def test_self_included_first() -> None:
    pts = torch.rand(2, 200, 3)
    res = knn_points(pts, pts, 8, chunk_size=64)
    assert torch.equal(res.idx[..., 0], torch.arange(200).expand(2, -1))
    assert float(res.dist2[..., 0].max()) < 1e-6
    assert bool((res.dist2[..., 1:] >= res.dist2[..., :-1]).all())


def test_pairwise_matches_cdist() -> None:
    a, b = torch.rand(1, 13, 3, dtype=torch.float64), torch.rand(1, 17, 3, dtype=torch.float64)
    ref = ((a[0, :, None] - b[0, None]) ** 2).sum(-1)
    torch.testing.assert_close(pairwise_sq_dist(a, b)[0], ref)


def test_duplicates_have_zero_distance() -> None:
    pts = torch.tensor([[[1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [4.0, 0.0, 0.0]]])
    res = knn_points(pts, pts, 2)
    assert res.dist2[0, 0].tolist() == pytest.approx([0.0, 0.0], abs=1e-5)
    assert set(res.idx[0, 0].tolist()) == {0, 1}


@pytest.mark.parametrize(
    ("q", "r", "k", "match"),
    [
        (torch.rand(1, 4, 3), torch.rand(1, 3, 3), 4, r"k: expected 1 <= k <= 3"),
        (torch.rand(1, 4, 2), torch.rand(1, 5, 3), 1, r"query: expected \(B, N, 3\)"),
        (torch.rand(2, 4, 3), torch.rand(1, 5, 3), 1, "batch sizes differ"),
        (torch.rand(1, 4, 3), torch.zeros(1, 0, 3), 1, "ref: expected at least one point"),
    ],
    ids=["k_too_big", "bad_shape", "batch_mismatch", "empty_ref"],
)
def test_bad_input(q, r, k, match) -> None:
    with pytest.raises(ValueError, match=match):
        knn_points(q, r, k)
