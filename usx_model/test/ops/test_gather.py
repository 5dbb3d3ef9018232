"""Gather/group/index ops against explicit loops, including their gradients."""

from __future__ import annotations

import pytest
import torch

from usx_model.ops.gather import gather_points, group_points, index_points


def test_gather_points_loop_and_grad() -> None:
    f = torch.randn(2, 4, 6, dtype=torch.float64, requires_grad=True)
    idx = torch.tensor([[0, 5, 5], [2, 1, 0]])
    out = gather_points(f, idx)
    for b in range(2):
        for m in range(3):
            assert torch.equal(out[b, :, m], f[b, :, idx[b, m]])
    out.sum().backward()
    # Index 5 is gathered twice in cloud 0: its gradient accumulates.
    assert f.grad[0, :, 5].tolist() == [2.0] * 4
    assert f.grad[0, :, 1].tolist() == [0.0] * 4


def test_group_points_loop() -> None:
    f = torch.randn(2, 3, 7)
    idx = torch.randint(0, 7, (2, 5, 4))
    out = group_points(f, idx)
    assert out.shape == (2, 3, 5, 4)
    for b in range(2):
        for m in range(5):
            for k in range(4):
                assert torch.equal(out[b, :, m, k], f[b, :, idx[b, m, k]])


def test_index_points_loop_and_grad() -> None:
    p = torch.randn(2, 7, 5, dtype=torch.float64, requires_grad=True)
    idx = torch.randint(0, 7, (2, 3, 4))
    out = index_points(p, idx)
    assert out.shape == (2, 3, 4, 5)
    for b in range(2):
        for i in range(3):
            for j in range(4):
                assert torch.equal(out[b, i, j], p[b, idx[b, i, j]])
    assert torch.autograd.gradcheck(lambda x: index_points(x, idx), (p,))


@pytest.mark.parametrize(
    ("fn", "f", "idx", "match"),
    [
        (gather_points, torch.rand(1, 2, 3), torch.tensor([[3]]), r"indices must lie in \[0, 3\)"),
        (gather_points, torch.rand(1, 2, 3), torch.tensor([[0.0]]), "int64 index"),
        (group_points, torch.rand(1, 2, 3), torch.tensor([[0]]), "expected 3 dims"),
        (gather_points, torch.rand(2, 3), torch.tensor([[0]]), r"expected \(B, C, N\)"),
    ],
    ids=["out_of_range", "float_index", "group_wrong_dims", "features_2d"],
)
def test_bad_input(fn, f, idx, match) -> None:
    with pytest.raises(ValueError, match=match):
        fn(f, idx)
