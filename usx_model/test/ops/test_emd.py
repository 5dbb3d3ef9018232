"""EMD against brute force over all permutations (tiny n)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from usx_model.ops.emd import earth_movers_distance


def brute_emd(x: np.ndarray, y: np.ndarray) -> float:
    n = len(x)
    return min(
        np.mean([np.linalg.norm(x[i] - y[p[i]]) for i in range(n)])
        for p in itertools.permutations(range(n))
    )


@pytest.mark.parametrize("n", [1, 3, 6])
def test_matches_permutations(n: int) -> None:
    rng = np.random.default_rng(n)
    x, y = rng.normal(size=(2, n, 3)), rng.normal(size=(2, n, 3))
    got = earth_movers_distance(x, torch.from_numpy(y))
    assert got.shape == (2,)
    for b in range(2):
        assert got[b] == pytest.approx(brute_emd(x[b], y[b]))


def test_translation_and_permutation() -> None:
    x = np.random.default_rng(0).normal(size=(20, 3))
    y = x[::-1] + [0.0, 0.0, 2.0]
    assert earth_movers_distance(x, y)[0] == pytest.approx(2.0)
    assert earth_movers_distance(x, x[::-1])[0] == pytest.approx(0.0)


@pytest.mark.parametrize(
    ("x", "y", "match"),
    [
        (np.zeros((4, 3)), np.zeros((5, 3)), "EMD needs clouds of equal size"),
        (np.zeros((4, 2)), np.zeros((4, 2)), r"x: expected \(N, 3\) or \(B, N, 3\)"),
        (np.zeros((0, 3)), np.zeros((0, 3)), "empty cloud"),
        (np.full((2, 3), np.nan), np.zeros((2, 3)), "NaN or Inf"),
    ],
    ids=["ragged", "shape", "empty", "nan"],
)
def test_bad_input(x, y, match) -> None:
    with pytest.raises(ValueError, match=match):
        earth_movers_distance(x, y)
