"""Tests of the cumulative-sum window means against a naive loop."""

from __future__ import annotations

import numpy as np
import pytest

from usx_model.segmentation._boxes import BoxMeans, clip01


def _naive(scan: np.ndarray, a: int, b: int) -> np.ndarray:
    out = np.zeros_like(scan, dtype=np.float64)
    n = scan.shape[1]
    for r in range(n):
        lo, hi = min(max(r + a, 0), n), min(max(r + b, 0), n)
        if hi > lo:
            out[:, r] = scan[:, lo:hi].mean(axis=1)
    return out


@pytest.mark.parametrize(("a", "b"), [(0, 1), (0, 3), (-4, 0), (2, 6), (4, 24), (-20, 0), (-3, 5)])
def test_window_means_match_a_naive_loop(a, b):
    scan = np.random.default_rng(abs(a) * 100 + b).random((5, 30)).astype(np.float32)
    got = BoxMeans(scan, reach=24)(a, b)
    np.testing.assert_allclose(got, _naive(scan, a, b), atol=1e-5)


def test_clip01_clips_in_place():
    x = np.array([-1.0, 0.25, 3.0])
    assert clip01(x) is x
    np.testing.assert_array_equal(x, [0.0, 0.25, 1.0])
