"""F-score against a loop over scipy cdist."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist

from usx_model.ops.f1 import f_score


@pytest.mark.parametrize(("n", "m", "tau"), [(40, 30, 0.5), (10, 50, 2.0), (1, 1, 0.1)])
def test_matches_naive(n: int, m: int, tau: float) -> None:
    rng = np.random.default_rng(n)
    p, g = rng.normal(size=(2, n, 3)), rng.normal(size=(2, m, 3))
    res = f_score(torch.from_numpy(p), torch.from_numpy(g), tau)
    for b in range(2):
        d = cdist(p[b], g[b])
        prec = np.mean([d[i].min() < tau for i in range(n)])
        rec = np.mean([d[:, j].min() < tau for j in range(m)])
        f1 = 0.0 if prec + rec == 0 else 2 * prec * rec / (prec + rec)
        assert float(res.precision[b]) == pytest.approx(prec)
        assert float(res.recall[b]) == pytest.approx(rec)
        assert float(res.f1[b]) == pytest.approx(f1)


def test_far_apart_is_zero_not_nan() -> None:
    res = f_score(torch.zeros(1, 3, 3), torch.full((1, 2, 3), 10.0), 1.0)
    assert float(res.f1) == 0.0


def test_bad_threshold() -> None:
    with pytest.raises(ValueError, match="threshold: expected a distance > 0, got 0"):
        f_score(torch.rand(1, 3, 3), torch.rand(1, 3, 3), 0)
