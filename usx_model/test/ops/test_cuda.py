"""The same ops give the same answers on CUDA as on CPU (skipped without a GPU)."""

from __future__ import annotations

import pytest
import torch

from usx_model.ops import chamfer_distance, f_score, farthest_point_sample, knn_points

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


def test_ops_match_cpu() -> None:
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(2, 300, 3, generator=g), torch.rand(2, 200, 3, generator=g)
    xc, yc = x.cuda(), y.cuda()
    assert torch.equal(farthest_point_sample(xc, 64).cpu(), farthest_point_sample(x, 64))
    assert torch.equal(knn_points(xc, yc, 8).idx.cpu(), knn_points(x, y, 8).idx)
    torch.testing.assert_close(chamfer_distance(xc, yc).cd_p.cpu(), chamfer_distance(x, y).cd_p)
    torch.testing.assert_close(f_score(xc, yc, 0.05).f1.cpu(), f_score(x, y, 0.05).f1)
