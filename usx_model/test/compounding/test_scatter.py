"""The compiled scatter against ``voxel_indices`` + ``ufunc.at``, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from usx_model.compounding.insert import Compounder
from usx_model.compounding.scatter import MODE_CODES, scatter_frame
from usx_model.compounding.volume import CompoundingMode, VolumeGrid


def _reference(compounder: Compounder, images, transforms, mode: CompoundingMode):
    """The interpreted insertion: arrays from ``voxel_indices``, updates by ``ufunc.at``."""
    n = compounder.grid.n_voxels
    acc = np.full(n, -np.inf if mode is CompoundingMode.MAXIMUM else 0.0, dtype=np.float32)
    count, weight = np.zeros(n, np.uint32), np.zeros(n, np.uint32)
    frame_id = np.full(n, -1, np.int32)
    for f, (image, T) in enumerate(zip(images, transforms, strict=True)):
        flat, pixel = compounder.voxel_indices(T)
        values = image.reshape(-1)[pixel].astype(np.float32)
        if mode is CompoundingMode.MEAN:
            np.add.at(acc, flat, values)
        elif mode is CompoundingMode.MAXIMUM:
            np.maximum.at(acc, flat, values)
        else:
            stale = flat[frame_id[flat] != f]
            acc[stale], weight[stale] = 0.0, 0
            frame_id[flat] = f
            np.add.at(acc, flat, values)
            np.add.at(weight, flat, np.ones(flat.size, np.uint32))
        np.add.at(count, flat, np.ones(flat.size, np.uint32))
    return acc, count, weight


@pytest.mark.parametrize("mode", list(CompoundingMode))
def test_identical_to_the_interpreted_insertion(mode: CompoundingMode) -> None:
    rng = np.random.default_rng(11)
    grid = VolumeGrid((-20.0, -15.0, -25.0), (0.5, 0.5, 0.5), (70, 60, 90))
    shape = (64, 80)
    images = rng.normal(100, 40, (6, *shape)).astype(np.float32)
    transforms = []
    for R in Rotation.random(6, random_state=5).as_matrix():
        T = np.eye(4)
        T[:3, :2] = R[:, :2] * 0.37  # non-round spacing: float32 rounding everywhere
        T[:3, 3] = rng.uniform(-25, 5, 3)  # frames partly outside the grid
        transforms.append(T)
    mask = rng.random(shape) > 0.2
    compounder = Compounder(grid, shape, mode, mask)
    for image, T in zip(images, transforms, strict=True):
        compounder.insert(image, T)
    acc, count, weight = _reference(compounder, images, transforms, mode)
    assert 0 < compounder.pixels_inserted < 6 * mask.sum()
    assert compounder.pixels_inserted == int(count.sum())
    np.testing.assert_array_equal(compounder._count, count)
    np.testing.assert_array_equal(compounder._acc, acc)
    if mode is CompoundingMode.LATEST:
        np.testing.assert_array_equal(compounder._weight, weight)


def test_maximum_keeps_nan_like_numpy() -> None:
    acc, count = np.zeros(1, np.float32), np.zeros(1, np.uint32)
    uv = np.zeros((2, 2), np.float32)
    image = np.array([np.nan, 5.0], np.float32)
    a, b = np.zeros((3, 2), np.float32), np.full(3, 0.5, np.float32)
    scatter_frame(
        uv,
        np.arange(2),
        image,
        a,
        b,
        (1, 1, 1),
        "maximum",
        0,
        acc,
        count,
        count,
        count.view(np.int32),
    )
    reference = np.zeros(1, np.float32)
    with np.errstate(invalid="ignore"):
        np.maximum.at(reference, [0, 0], image)
    assert np.isnan(acc[0]) and np.isnan(reference[0]) and count[0] == 2


def test_modes_match_the_enum() -> None:
    assert set(MODE_CODES) == {m.value for m in CompoundingMode}
