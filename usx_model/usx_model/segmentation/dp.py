"""Exact Viterbi (min-sum) decoding of a chain of columns, vectorised over the chain.

The bone surface is at most one pixel per column, continuous between neighbouring
columns except where it jumps at a wall or ends. Each column ``c`` offers ``S`` states
(a few bone candidates plus "no bone"); the best labelling minimises

    sum_c unary[c, s_c] + sum_c pair[c, s_{c-1}, s_c].

The textbook forward/backtrack recursion is sequential over columns, which costs a
Python loop per frame. Min-sum matrix products are associative, so the forward and
backward messages are computed instead as prefix/suffix products with a
Hillis-Steele scan: ``log2(C)`` batched numpy steps on (C, S, S) arrays. The decoded
state of each column minimises its min-marginal ``alpha + beta``, which equals the
Viterbi path when the optimum is unique (ties break towards the lower state index).
"""

from __future__ import annotations

import numpy as np


def _min_plus(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Batched min-sum matrix product: (..., S, S) x (..., S, S) -> (..., S, S).

    Loops over the (few) inner states instead of reducing a (..., S, S, S) array: the
    states are 2-4 here, where numpy's per-call cost dominates.
    """
    out = a[..., :, 0, None] + b[..., None, 0, :]
    for k in range(1, a.shape[-1]):
        np.minimum(out, a[..., :, k, None] + b[..., None, k, :], out=out)
    return out


def _prefix_products(m: np.ndarray) -> np.ndarray:
    """Inclusive prefix min-sum products along axis 1: ``m[:, 0] x ... x m[:, i]``."""
    out = m.copy()
    step = 1
    while step < out.shape[1]:
        out[:, step:] = _min_plus(out[:, :-step], out[:, step:])
        step *= 2
    return out


def chain_decode(unary: np.ndarray, pair: np.ndarray) -> np.ndarray:
    """Best state per column of a chain (min-sum Viterbi).

    Args:
        unary: (C, S) float cost of each state in each column.
        pair: (C - 1, S, S) float cost ``pair[c, i, j]`` of state i in column c followed
            by state j in column c + 1.

    Returns:
        (C,) int64 state index per column.

    Raises:
        ValueError: on mismatched shapes.
    """
    unary = np.asarray(unary, dtype=np.float64)
    pair = np.asarray(pair, dtype=np.float64)
    if unary.ndim != 2 or unary.shape[0] < 1:
        raise ValueError(f"expected (C, S) unary costs with C >= 1, got {unary.shape}")
    n_cols, n_states = unary.shape
    if pair.shape != (n_cols - 1, n_states, n_states):
        raise ValueError(
            f"expected ({n_cols - 1}, {n_states}, {n_states}) pair costs, got {pair.shape}"
        )
    if n_cols == 1:
        return np.array([int(np.argmin(unary[0]))], dtype=np.int64)
    # transition c -> c+1 absorbs the unary of the column it enters
    step = pair + unary[1:, None, :]
    # forward products, and suffix products from the reversed transposed chain
    # ((A x B)^T = B^T x A^T), scanned together in one batch
    both = _prefix_products(np.stack([step, step[::-1].transpose(0, 2, 1)]))
    fwd = both[0]  # fwd[c][i, j]: best cost from col 0 state i to col c+1 state j
    alpha = np.empty_like(unary)
    alpha[0] = unary[0]
    alpha[1:] = np.min(unary[0][None, :, None] + fwd, axis=1)
    bwd = both[1].transpose(0, 2, 1)  # bwd[k] = step[C-2-k] x ... x step[C-2]
    beta = np.zeros_like(unary)
    beta[:-1] = np.min(bwd[::-1], axis=2)
    return np.argmin(alpha + beta, axis=1).astype(np.int64)
