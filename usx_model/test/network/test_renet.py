"""The refinement stage's pooling (network/renet.py)."""

from __future__ import annotations

import pytest
import torch

from usx_model.network.renet import edge_preserving_pool
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
