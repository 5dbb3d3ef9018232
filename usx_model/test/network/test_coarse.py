"""The coarse stage's encoder (network/coarse.py): inference path against the training maths."""

from __future__ import annotations

import torch

from usx_model.network.coarse import PCNEncoder


def test_encoder_without_gradients_equals_the_training_maths() -> None:
    """The pooled half of the third layer made once per cloud gives the per-point layer's
    global feature."""
    torch.manual_seed(0)
    enc = PCNEncoder((16, 32, 64, 48))
    points = torch.randn(3, 100, 3)
    with torch.enable_grad():
        want = enc(points).detach()
    with torch.inference_mode():
        got = enc(points)
    assert got.shape == (3, 48)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-5)
