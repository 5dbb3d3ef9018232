"""kNN (both methods) against a brute-force reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from usx_model.ops.knn import knn_points, pairwise_sq_dist

METHODS = ("kdtree", "matmul")


def _brute_force(q: np.ndarray, r: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    d2 = ((q[:, None, :] - r[None, :, :]) ** 2).sum(-1)
    idx = np.argsort(d2, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(d2, idx, axis=1), idx


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(
    ("m", "n", "k", "chunk"), [(40, 60, 5, 7), (60, 60, 16, 2048), (3, 9, 9, 1), (50, 1, 1, 8)]
)
def test_matches_brute_force(m: int, n: int, k: int, chunk: int, method: str) -> None:
    rng = np.random.default_rng(m + n + k)
    q, r = rng.normal(size=(2, m, 3)), rng.normal(size=(2, n, 3))
    res = knn_points(torch.from_numpy(q), torch.from_numpy(r), k, chunk_size=chunk, method=method)
    assert res.idx.shape == res.dist2.shape == (2, m, k)
    assert res.dist2.dtype == torch.float64 and res.idx.dtype == torch.int64
    for b in range(2):
        dist2, idx = _brute_force(q[b], r[b], k)
        np.testing.assert_array_equal(res.idx[b].numpy(), idx)
        np.testing.assert_allclose(res.dist2[b].numpy(), dist2, atol=1e-9)


def test_methods_agree_float32() -> None:
    pts = torch.rand(3, 700, 3)
    a, b = (knn_points(pts[:, :300], pts, 6, method=m) for m in METHODS)
    assert a.dist2.dtype == b.dist2.dtype == torch.float32
    torch.testing.assert_close(a.dist2, b.dist2, atol=1e-5, rtol=0)
    assert (a.idx == b.idx).float().mean() > 0.999  # float32 ties may order differently


@pytest.mark.parametrize("method", METHODS)
def test_self_included_first(method: str) -> None:
    pts = torch.rand(2, 200, 3)
    res = knn_points(pts, pts, 8, chunk_size=64, method=method)
    assert torch.equal(res.idx[..., 0], torch.arange(200).expand(2, -1))
    assert float(res.dist2[..., 0].max()) < 1e-6
    assert bool((res.dist2[..., 1:] >= res.dist2[..., :-1]).all())


def test_pairwise_matches_cdist() -> None:
    a, b = torch.rand(1, 13, 3, dtype=torch.float64), torch.rand(1, 17, 3, dtype=torch.float64)
    ref = ((a[0, :, None] - b[0, None]) ** 2).sum(-1)
    torch.testing.assert_close(pairwise_sq_dist(a, b)[0], ref)


@pytest.mark.parametrize("method", METHODS)
def test_duplicates_have_zero_distance(method: str) -> None:
    pts = torch.tensor([[[1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [4.0, 0.0, 0.0]]])
    res = knn_points(pts, pts, 2, method=method)
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
@pytest.mark.parametrize("method", METHODS)
def test_bad_input(q, r, k, match, method) -> None:
    with pytest.raises(ValueError, match=match):
        knn_points(q, r, k, method=method)


def test_unknown_method() -> None:
    with pytest.raises(ValueError, match=r"method: expected one of .* got 'ball'"):
        knn_points(torch.rand(1, 4, 3), torch.rand(1, 4, 3), 1, method="ball")


def test_kdtree_orders_equal_distances_by_index() -> None:
    # On a lattice the six face neighbours of a node are equidistant: the attention reads
    # neighbours in order, so the order must be (distance, index), not the tree's.
    g = torch.arange(5, dtype=torch.float32)
    pts = torch.stack(torch.meshgrid(g, g, g, indexing="ij"), -1).reshape(1, -1, 3)
    perm = torch.randperm(pts.shape[1], generator=torch.Generator().manual_seed(0))
    pts = pts[:, perm]
    res = knn_points(pts, pts, 7, method="kdtree")
    dist2, idx = _brute_force(pts[0].double().numpy(), pts[0].double().numpy(), 7)
    inner = ((pts[0] > 0) & (pts[0] < 4)).all(1).numpy()  # nodes with all six neighbours
    np.testing.assert_array_equal(res.idx[0].numpy()[inner], idx[inner])
    np.testing.assert_array_equal(res.dist2[0].numpy()[inner], dist2[inner].astype(np.float32))
