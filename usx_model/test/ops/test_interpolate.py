"""Three-NN interpolation against a brute-force reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist

from usx_model.ops.interpolate import three_interpolate, three_nn, three_weights


def test_three_nn_and_interpolation_match_bruteforce() -> None:
    rng = np.random.default_rng(3)
    tgt, src = rng.normal(size=(1, 20, 3)), rng.normal(size=(1, 8, 3))
    feat = rng.normal(size=(1, 4, 8))
    dist, idx = three_nn(torch.from_numpy(tgt), torch.from_numpy(src))
    out = three_interpolate(torch.from_numpy(feat), idx, three_weights(dist)).numpy()
    d = cdist(tgt[0], src[0])
    for i in range(20):
        nn3 = np.argsort(d[i])[:3]
        assert idx[0, i].tolist() == nn3.tolist()
        w = 1 / d[i, nn3]
        w /= w.sum()
        np.testing.assert_allclose(out[0, :, i], feat[0][:, nn3] @ w, rtol=1e-10)


def test_coincident_point_takes_source_value() -> None:
    src = torch.tensor([[[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]]])
    feat = torch.tensor([[[5.0, 1.0, 2.0, 3.0]]])
    dist, idx = three_nn(src[:, :1], src)
    out = three_interpolate(feat, idx, three_weights(dist))
    assert float(out) == pytest.approx(5.0, abs=1e-6)


def test_gradient_reaches_features_only() -> None:
    feat = torch.randn(1, 2, 6, dtype=torch.float64, requires_grad=True)
    tgt = torch.randn(1, 5, 3, dtype=torch.float64)
    src = torch.randn(1, 6, 3, dtype=torch.float64, requires_grad=True)
    dist, idx = three_nn(tgt, src)
    w = three_weights(dist)
    assert not w.requires_grad and not dist.requires_grad
    assert torch.autograd.gradcheck(lambda f: three_interpolate(f, idx, w), (feat,))


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: three_nn(torch.rand(1, 4, 3), torch.rand(1, 2, 3)), "at least 3 points"),
        (
            lambda: three_interpolate(
                torch.rand(1, 2, 5), torch.zeros(1, 4, 3).long(), torch.rand(1, 4, 2)
            ),
            r"weight: expected shape \(1, 4, 3\)",
        ),
    ],
    ids=["too_few_sources", "weight_shape"],
)
def test_bad_input(call, match) -> None:
    with pytest.raises(ValueError, match=match):
        call()
