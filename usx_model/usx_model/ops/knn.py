"""k nearest neighbours (self included when query == reference).

Two exact methods: a k-d tree (scipy) for CPU tensors, and chunked matrix products for
accelerators. On this project's clouds (B x 4096 x 4096) the tree is 8-50x faster on CPU,
where ``topk`` over a dense distance block is memory-bound; on a GPU the dense block wins.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from scipy.spatial import cKDTree

from usx_model.ops._checks import check_points, check_same_batch


class KnnResult(NamedTuple):
    """Result of :func:`knn_points`.

    Attributes:
        dist2: (B, M, K) squared Euclidean distances, ascending along K.
        idx: (B, M, K) int64 indices into the reference cloud.
    """

    dist2: torch.Tensor
    idx: torch.Tensor


def pairwise_sq_dist(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Squared distances ``|a_i - b_j|^2`` via ``|a|^2 + |b|^2 - 2 a.b``, clamped >= 0.

    Args:
        a: (B, M, 3), b: (B, N, 3).

    Returns:
        (B, M, N) squared distances. Cancellation makes values near 0 inexact (~1e-6
        relative to |a|^2); use exact differences where a value matters.
    """
    sq = a.square().sum(-1)[:, :, None] + b.square().sum(-1)[:, None, :]
    return torch.baddbmm(sq, a, b.transpose(1, 2), alpha=-2.0).clamp_min_(0.0)


#: Methods of :func:`knn_points`.
KNN_METHODS = ("auto", "kdtree", "matmul")


def knn_points(
    query: torch.Tensor,
    ref: torch.Tensor,
    k: int,
    chunk_size: int = 2048,
    method: str = "auto",
) -> KnnResult:
    """The k nearest reference points of every query point; no gradient.

    ``matmul``: distances from a matrix product computed ``chunk_size`` query rows at a
    time, memory O(B * chunk_size * N). ``kdtree``: scipy's cKDTree per cloud, on as many
    threads as torch uses (CPU tensors only). ``auto``: kdtree on CPU, matmul elsewhere.
    When ``query`` is ``ref`` each point is its own first neighbour (distance 0) up to
    ties with exact duplicates.

    Args:
        query: (B, M, 3) query points.
        ref: (B, N, 3) reference points.
        k: number of neighbours, 1 <= k <= N.
        chunk_size: query rows per distance block (matmul).
        method: one of :data:`KNN_METHODS`.

    Returns:
        KnnResult with dist2 (B, M, K) and idx (B, M, K), nearest first.

    Raises:
        ValueError: bad shapes, NaN/Inf, empty clouds, k out of range, unknown method,
            kdtree asked for a non-CPU tensor.
    """
    check_points("query", query)
    check_points("ref", ref)
    check_same_batch("query", query, "ref", ref)
    n = ref.shape[1]
    if not 1 <= int(k) <= n:
        raise ValueError(f"k: expected 1 <= k <= {n} (reference size), got {k}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size: expected >= 1, got {chunk_size}")
    if method not in KNN_METHODS:
        raise ValueError(f"method: expected one of {KNN_METHODS}, got {method!r}")
    on_cpu = query.device.type == "cpu"
    if method == "kdtree" and not on_cpu:
        raise ValueError(f"method: kdtree needs CPU tensors, got {query.device}")
    if method == "kdtree" or (method == "auto" and on_cpu):
        return _knn_kdtree(query, ref, int(k))
    return _knn_matmul(query, ref, int(k), chunk_size)


def _knn_kdtree(query: torch.Tensor, ref: torch.Tensor, k: int) -> KnnResult:
    q = query.detach().numpy()
    r = ref.detach().numpy()
    dists = np.empty(q.shape[:2] + (k,), dtype=np.float64)
    idxs = np.empty(q.shape[:2] + (k,), dtype=np.int64)
    workers = max(1, torch.get_num_threads())
    for b in range(q.shape[0]):
        d, i = cKDTree(r[b]).query(q[b], k=k, workers=workers)
        dists[b], idxs[b] = d.reshape(-1, k), i.reshape(-1, k)
    dist2 = torch.from_numpy(np.square(dists)).to(query.dtype)
    return KnnResult(dist2, torch.from_numpy(idxs))


def _knn_matmul(query: torch.Tensor, ref: torch.Tensor, k: int, chunk_size: int) -> KnnResult:
    with torch.no_grad():
        q, r = query.detach(), ref.detach()
        r_sq = r.square().sum(-1)[:, None, :]  # (B, 1, N)
        dists, idxs = [], []
        for start in range(0, q.shape[1], chunk_size):
            qc = q[:, start : start + chunk_size]
            # |q|^2 is constant along a row, so ranking |r|^2 - 2 q.r is enough; it is
            # added back to the k kept values only (saves a full (B, chunk, N) pass).
            partial = torch.baddbmm(r_sq, qc, r.transpose(1, 2), alpha=-2.0)
            val, ind = torch.topk(partial, int(k), dim=2, largest=False, sorted=True)
            dists.append((val + qc.square().sum(-1, keepdim=True)).clamp_min_(0.0))
            idxs.append(ind)
        return KnnResult(torch.cat(dists, 1), torch.cat(idxs, 1))
