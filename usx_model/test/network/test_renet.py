"""The refinement stage (network/renet.py): pooling, and the inference path against the
training maths."""

from __future__ import annotations

import pytest
import torch

from usx_model.network import renet
from usx_model.network.renet import (
    SHARE,
    LocalFolding,
    RENet,
    SelfAttention,
    _grouped_neighbour_sum,
    edge_preserving_pool,
)
from usx_model.ops.knn import knn_points


@pytest.mark.parametrize("k", [8, 16, 4])
def test_pooling_from_the_self_neighbours_equals_a_new_search(k: int) -> None:
    """The centres are points of the cloud: their nearest are the first rows of the cloud's
    own neighbour lists (k >= pool_k), else the pool searches again (k < pool_k)."""
    g = torch.Generator().manual_seed(3)
    xyz = torch.randn(2, 300, 3, generator=g) * torch.tensor([20.0, 8.0, 12.0])
    feat = torch.randn(2, 300, 5, generator=g)
    self_knn = knn_points(xyz, xyz, k).idx
    want_xyz, want = edge_preserving_pool(xyz, feat, 64, 8)
    got_xyz, got = edge_preserving_pool(xyz, feat, 64, 8, self_knn)
    assert torch.equal(got_xyz, want_xyz)
    assert torch.equal(got, want)
    # the pooled half differs from the centre's own features: the test sees the neighbours
    assert not torch.equal(got[..., 5:], got[..., :5])


def _both_paths(fn):
    """fn() with gradients (the training maths) and without (the inference path)."""
    with torch.enable_grad():
        want = fn()
    with torch.inference_mode():
        got = fn()
    return want.detach(), got


@pytest.mark.parametrize("channels", [32, 64, 128, 256])
def test_attention_without_gradients_equals_the_training_maths(channels: int) -> None:
    """The weighted neighbour sum per weight group (embedding_bag) equals the gathered,
    broadcast product of the training path, for every group count the network uses."""
    torch.manual_seed(0)
    att = SelfAttention(channels, k=16)
    x = torch.randn(2, 200, channels)
    idx = knn_points(torch.randn(2, 200, 3), torch.randn(2, 200, 3), 16).idx
    want, got = _both_paths(lambda: att(x, idx))
    torch.testing.assert_close(got, want, rtol=0, atol=1e-5)


def test_grouped_neighbour_sum_against_loops() -> None:
    g = torch.Generator().manual_seed(1)
    groups, k = 2, 3
    values = torch.randn(2, 7, SHARE * groups, generator=g)
    idx = torch.randint(0, 7, (2, 5, k), generator=g)
    w = torch.randn(2, 5, k, groups, generator=g)
    want = torch.zeros(2, 5, SHARE * groups)
    for b in range(2):
        for n in range(5):
            for c in range(SHARE * groups):
                want[b, n, c] = sum(
                    w[b, n, j, c % groups] * values[b, idx[b, n, j], c] for j in range(k)
                )
    torch.testing.assert_close(_grouped_neighbour_sum(values, idx, w), want, rtol=0, atol=1e-5)


def test_folding_without_gradients_equals_the_training_maths() -> None:
    """Blocks of centres (more than one block, and a partial last one) and the first
    layer split into centre and code parts give the per-child MLP's points."""
    torch.manual_seed(0)
    fold = LocalFolding(in_dim=32, ratio=8)
    n = 2 * renet.FOLD_BLOCK + 37
    xyz, feat = torch.randn(2, n, 3), torch.randn(2, n, 32)
    want, got = _both_paths(lambda: fold(xyz, feat))
    torch.testing.assert_close(got, want, rtol=0, atol=1e-5)
    # training keeps the reference's per-child MLP bit for bit (make train reproduces)
    codes = fold.grid[None, None].expand(2, n, -1, -1)
    children = fold.mlp(torch.cat([feat[:, :, None].expand(-1, -1, 8, -1), codes], -1))
    assert torch.equal(want, (xyz[:, :, None] + children.detach()).reshape(2, n * 8, 3))


def test_refinement_without_gradients_equals_the_training_maths(tiny) -> None:
    """The propagation's weights applied before the interpolation (and the interpolation
    as one weighted row sum) give the training path's positions and head features."""
    torch.manual_seed(0)
    cfg = tiny()
    net = RENet(cfg)
    torch.nn.init.normal_(net.to_xyz.weight, std=0.1)  # the offset head starts at zero
    xyz = torch.randn(2, 120, 3)
    onehot = torch.eye(cfg.n_sources)[torch.randint(0, cfg.n_sources, (2, 120))]
    for part in (0, 1):
        want, got = _both_paths(lambda p=part: net(xyz, onehot)[p])
        torch.testing.assert_close(got, want, rtol=0, atol=1e-5)
