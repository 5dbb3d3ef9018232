"""Tests of the vectorised chain (Viterbi) decoder against brute force."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from usx_model.segmentation.dp import chain_decode


def _brute_force(unary: np.ndarray, pair: np.ndarray) -> np.ndarray:
    """Naive reference: the cheapest of all S**C labellings (first one on ties)."""
    n_cols, n_states = unary.shape
    best, best_path = np.inf, None
    for path in itertools.product(range(n_states), repeat=n_cols):
        cost = sum(unary[c, s] for c, s in enumerate(path))
        cost += sum(pair[c, path[c], path[c + 1]] for c in range(n_cols - 1))
        if cost < best:
            best, best_path = cost, path
    return np.array(best_path)


@pytest.mark.parametrize(("n_cols", "n_states"), [(1, 3), (2, 2), (3, 3), (5, 3), (7, 2), (6, 4)])
def test_matches_brute_force_on_random_chains(n_cols, n_states):
    rng = np.random.default_rng(n_cols * 10 + n_states)
    for _ in range(20):
        unary = rng.normal(size=(n_cols, n_states))
        pair = rng.normal(size=(n_cols - 1, n_states, n_states))
        np.testing.assert_array_equal(chain_decode(unary, pair), _brute_force(unary, pair))


def test_smoothness_overrides_a_lone_outlier():
    # state 0 is cheap everywhere except column 2; switching costs more than it saves
    unary = np.zeros((5, 2))
    unary[:, 1] = 1.0
    unary[2] = [0.5, 0.0]
    pair = np.where(np.eye(2, dtype=bool), 0.0, 0.4)[None].repeat(4, axis=0)
    np.testing.assert_array_equal(chain_decode(unary, pair), [0, 0, 0, 0, 0])


def test_infinite_costs_are_avoided():
    unary = np.array([[np.inf, 0.0], [0.0, 0.0], [0.0, np.inf]])
    pair = np.zeros((2, 2, 2))
    np.testing.assert_array_equal(chain_decode(unary, pair), [1, 0, 0])


@pytest.mark.parametrize(
    ("unary", "pair", "match"),
    [
        (
            np.zeros(3),
            np.zeros((2, 1, 1)),
            r"expected \(C, S\) unary costs with C >= 1, got \(3,\)",
        ),
        (np.zeros((0, 2)), np.zeros((0, 2, 2)), r"got \(0, 2\)"),
        (
            np.zeros((3, 2)),
            np.zeros((3, 2, 2)),
            r"expected \(2, 2, 2\) pair costs, got \(3, 2, 2\)",
        ),
    ],
)
def test_bad_shapes_are_rejected(unary, pair, match):
    with pytest.raises(ValueError, match=match):
        chain_decode(unary, pair)
