"""Voxel grid geometry and the memory guard."""

from __future__ import annotations

import numpy as np
import pytest

from usx_model.compounding.insert import Compounder
from usx_model.compounding.volume import (
    CompoundingMode,
    VolumeGrid,
    check_memory_budget,
    volume_nbytes,
)


def test_affine_and_index_round_trip():
    grid = VolumeGrid((10.0, -5.0, 2.0), (0.5, 1.0, 2.0), (4, 5, 6))
    ijk = np.array([[0, 0, 0], [3, 4, 5], [1.5, 2, 0.25]])
    expected = np.array([[10, -5, 2], [11.5, -1, 12], [10.75, -3, 2.5]])
    np.testing.assert_allclose(grid.index_to_world(ijk), expected)
    np.testing.assert_allclose((grid.affine @ np.c_[ijk, np.ones(3)].T).T[:, :3], expected)
    np.testing.assert_allclose(grid.world_to_index(expected), ijk)


def test_from_bounds_covers_box_and_scalar_spacing():
    grid = VolumeGrid.from_bounds([0, 0, 0], [10, 5, 0.9], 0.5)
    assert grid.shape == (21, 11, 2) and grid.spacing_mm == (0.5, 0.5, 0.5)
    assert grid.n_voxels == 21 * 11 * 2


@pytest.mark.parametrize(
    ("mode", "bytes_per_voxel"),
    [(CompoundingMode.MEAN, 12), (CompoundingMode.MAXIMUM, 12), (CompoundingMode.LATEST, 20)],
)
def test_nbytes(mode, bytes_per_voxel):
    grid = VolumeGrid((0, 0, 0), (1, 1, 1), (10, 20, 30))
    assert volume_nbytes(grid, mode) == 6000 * bytes_per_voxel


def test_memory_guard_refuses_with_size_in_message():
    grid = VolumeGrid((0, 0, 0), (0.1, 0.1, 0.1), (1000, 1000, 1000))
    with pytest.raises(ValueError, match=r"needs 11444\.1 MiB .* budget of 1024\.0 MiB"):
        check_memory_budget(grid, CompoundingMode.MEAN, 1 << 30)
    with pytest.raises(
        ValueError, match=r"shape \(1000, 1000, 1000\) at spacing \(0\.1, 0\.1, 0\.1\)"
    ):
        Compounder(grid, (8, 8), memory_budget_bytes=1 << 30)
    small = VolumeGrid((0, 0, 0), (1, 1, 1), (10, 10, 10))
    assert check_memory_budget(small, CompoundingMode.LATEST, 20_000) == 20_000
    with pytest.raises(ValueError, match=r"needs 0\.0 MiB"):
        check_memory_budget(small, CompoundingMode.LATEST, 19_999)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (((0, 0), 1, (1, 1, 1)), "origin_mm as 3 finite"),
        (((0, 0, 0), 0, (1, 1, 1)), "spacing_mm > 0"),
        (((0, 0, 0), (1, -1, 1), (1, 1, 1)), "spacing_mm > 0"),
        (((0, 0, 0), 1, (1, 0, 1)), "shape as 3 positive integers"),
        (((0, 0, 0), 1, (1.5, 1, 1)), "shape as 3 positive integers"),
    ],
)
def test_grid_validation(args, match):
    with pytest.raises(ValueError, match=match):
        VolumeGrid(*args)


def test_from_bounds_validation():
    with pytest.raises(ValueError, match="min <= max"):
        VolumeGrid.from_bounds([0, 0, 1], [1, 1, 0], 1.0)
    with pytest.raises(ValueError, match="spacing_mm > 0"):
        VolumeGrid.from_bounds([0, 0, 0], [1, 1, 1], 0.0)
