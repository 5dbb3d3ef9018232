"""Frame insertion against hand-computed voxels and a naive per-pixel reference."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from usx_model.compounding.insert import Compounder, compound_frames
from usx_model.compounding.volume import CompoundingMode, VolumeGrid


def _naive(images, transforms, grid, mode, mask):
    """Pixel-by-pixel reference: float64 positions, nearest voxel centre, dict accumulators."""
    acc, count, weight, last = {}, {}, {}, {}
    A_inv = np.linalg.inv(grid.affine)
    for f, (image, T) in enumerate(zip(images, transforms, strict=True)):
        for v in range(image.shape[0]):
            for u in range(image.shape[1]):
                if mask is not None and not mask[v, u]:
                    continue
                c = (A_inv @ T @ np.array([u, v, 0.0, 1.0]))[:3]
                ijk = tuple(int(i) for i in np.floor(c + 0.5))
                if any(i < 0 or i >= n for i, n in zip(ijk, grid.shape, strict=True)):
                    continue
                x = float(image[v, u])
                count[ijk] = count.get(ijk, 0) + 1
                if mode is CompoundingMode.MEAN:
                    acc[ijk] = acc.get(ijk, 0.0) + x
                elif mode is CompoundingMode.MAXIMUM:
                    acc[ijk] = max(acc.get(ijk, -np.inf), x)
                else:
                    if last.get(ijk) != f:
                        acc[ijk], weight[ijk], last[ijk] = 0.0, 0, f
                    acc[ijk] += x
                    weight[ijk] += 1
    value = np.zeros(grid.shape, dtype=np.float64)
    coverage = np.zeros(grid.shape, dtype=np.int64)
    for ijk, n in count.items():
        coverage[ijk] = n
        if mode is CompoundingMode.MEAN:
            value[ijk] = acc[ijk] / n
        elif mode is CompoundingMode.MAXIMUM:
            value[ijk] = acc[ijk]
        else:
            value[ijk] = acc[ijk] / weight[ijk]
    return value, coverage


def _pixel_transform(spacing_mm, rotation, translation_mm):
    T = np.eye(4)
    T[:3, :3] = rotation @ np.diag([spacing_mm, spacing_mm, 1.0])
    T[:3, 3] = translation_mm
    return T


def test_axis_aligned_frame_lands_on_known_voxels():
    grid = VolumeGrid((0, 0, 0), (1, 1, 1), (10, 10, 10))
    image = np.arange(12, dtype=np.uint8).reshape(3, 4)  # rows = depth
    # u -> base x, v -> base z, plane at y = 5; 1 mm pixels on 1 mm voxels
    T = np.array([[1, 0, 0, 2], [0, 0, 0, 5], [0, 1, 0, 3], [0, 0, 0, 1]], dtype=float)
    comp = Compounder(grid, image.shape)
    assert comp.insert(image, T) == 12
    res = comp.result()
    for v in range(3):
        for u in range(4):
            assert res.value[2 + u, 5, 3 + v] == image[v, u]
            assert res.coverage[2 + u, 5, 3 + v] == 1
    assert res.coverage.sum() == 12 and res.pixels_inserted == 12


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        (CompoundingMode.MEAN, (10 + 20 + 30 + 40) / 4),
        (CompoundingMode.MAXIMUM, 40.0),
        (CompoundingMode.LATEST, (30 + 40) / 2),  # the second frame's two pixels
    ],
)
def test_modes_on_overlapping_frames(mode, expected):
    # two 1x2 frames, 0.4 mm pixels: both pixels of each frame land in voxel (5, 5, 5)
    grid = VolumeGrid((0, 0, 0), (1, 1, 1), (10, 10, 10))
    T = _pixel_transform(0.4, np.eye(3), [4.9, 5.0, 5.0])
    images = np.array([[[10, 20]], [[30, 40]]], dtype=np.float32)
    res = compound_frames(images, np.stack([T, T]), grid, mode)
    assert res.value[5, 5, 5] == pytest.approx(expected)
    assert res.coverage[5, 5, 5] == 4 and res.coverage.sum() == 4
    assert np.count_nonzero(res.value) == 1


@pytest.mark.parametrize("mode", list(CompoundingMode))
@pytest.mark.parametrize("use_mask", [False, True])
def test_matches_naive_reference_on_random_poses(mode, use_mask):
    rng = np.random.default_rng(7)
    grid = VolumeGrid((-4.0, -3.0, -5.0), (0.7, 0.6, 0.8), (14, 12, 11))
    images = rng.integers(0, 256, (4, 9, 11)).astype(np.uint8)
    rotations = Rotation.random(4, random_state=3).as_matrix()
    # frames partly leave the grid, exercising the bounds test
    transforms = np.stack([_pixel_transform(0.45, R, rng.uniform(-4, 0, 3)) for R in rotations])
    mask = rng.random((9, 11)) > 0.3 if use_mask else None
    res = compound_frames(images, transforms, grid, mode, mask)
    value, coverage = _naive(images, transforms, grid, mode, mask)
    np.testing.assert_array_equal(res.coverage, coverage)
    np.testing.assert_allclose(res.value, value, rtol=1e-6)
    assert 0 < res.pixels_inserted < 4 * 9 * 11
    assert res.value.dtype == np.float32 and res.coverage.dtype == np.uint32


def test_frame_fully_inside_skips_nothing():
    grid = VolumeGrid((0, 0, 0), (1, 1, 1), (30, 30, 30))
    image = np.ones((20, 20), dtype=np.uint8)
    R = Rotation.from_euler("xyz", [20, 30, 40], degrees=True).as_matrix()
    T = _pixel_transform(0.5, R, [15, 15, 15])  # spans at most 13.4 mm from the centre
    comp = Compounder(grid, image.shape)
    flat, pixel = comp.voxel_indices(T)
    assert flat.size == 400 and np.array_equal(pixel, np.arange(400))
    _, coverage = _naive(image[None], T[None], grid, CompoundingMode.MEAN, None)
    comp.insert(image, T)
    np.testing.assert_array_equal(comp.coverage, coverage)


def test_frame_outside_inserts_nothing_and_empty_value():
    grid = VolumeGrid((0, 0, 0), (1, 1, 1), (5, 5, 5))
    comp = Compounder(grid, (4, 4), CompoundingMode.MAXIMUM)
    assert comp.insert(np.full((4, 4), 9.0), _pixel_transform(1, np.eye(3), [100, 0, 0])) == 0
    res = comp.result(empty_value=-1.0)
    assert np.all(res.value == -1.0) and res.coverage.sum() == 0 and res.frames_inserted == 1


def test_deterministic():
    rng = np.random.default_rng(1)
    grid = VolumeGrid((0, 0, 0), (0.5, 0.5, 0.5), (20, 20, 20))
    images = rng.random((3, 16, 16)).astype(np.float32)
    transforms = np.stack([_pixel_transform(0.3, np.eye(3), [2, 3 + i, 2]) for i in range(3)])
    a = compound_frames(images, transforms, grid)
    b = compound_frames(images, transforms, grid)
    np.testing.assert_array_equal(a.value, b.value)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"image_shape": (4,)}, r"image_shape \(rows, columns\) >= 1, got \(4,\)"),
        ({"mask": np.ones((3, 4), dtype=bool)}, r"bool mask of shape \(4, 4\), got bool \(3, 4\)"),
        ({"mask": np.ones((4, 4), dtype=np.uint8)}, r"bool mask of shape \(4, 4\), got uint8"),
        ({"mode": "median"}, "'median' is not a valid CompoundingMode"),
    ],
)
def test_compounder_validation(kwargs, match):
    args = {"grid": VolumeGrid((0, 0, 0), (1, 1, 1), (5, 5, 5)), "image_shape": (4, 4), **kwargs}
    with pytest.raises(ValueError, match=match):
        Compounder(**args)


def test_insert_validation():
    comp = Compounder(VolumeGrid((0, 0, 0), (1, 1, 1), (5, 5, 5)), (4, 4))
    with pytest.raises(ValueError, match=r"image of shape \(4, 4\), got \(4, 5\)"):
        comp.insert(np.zeros((4, 5)), np.eye(4))
    with pytest.raises(ValueError, match=r"finite \(4, 4\) T_base_pixel, got shape \(3, 4\)"):
        comp.insert(np.zeros((4, 4)), np.eye(4)[:3])
    with pytest.raises(ValueError, match=r"\(F, rows, columns\) images and \(F, 4, 4\)"):
        compound_frames(np.zeros((2, 4, 4)), np.eye(4)[None], comp.grid)


def test_warm_up_compiles_what_a_real_frame_uses() -> None:
    # In a fresh interpreter (here the kernel is compiled already): a frame after the
    # warm-up must not compile another specialisation of the kernel, which would put the
    # first-call cost back into the first sweep.
    script = """
import numpy as np
from usx_model.compounding.insert import Compounder, warm_up
from usx_model.compounding.scatter import _kernel
from usx_model.compounding.volume import CompoundingMode, VolumeGrid
grid = VolumeGrid.from_bounds((-20.0, -20.0, -20.0), (20.0, 20.0, 20.0), 1.0)
image = np.random.default_rng(0).integers(0, 255, (64, 48), dtype=np.uint8)
for mode in CompoundingMode:
    warm_up(mode)
    before = list(_kernel().signatures)
    assert Compounder(grid, image.shape, mode).insert(image, np.diag([0.3, 0.3, 1, 1])) > 0
    assert _kernel().signatures == before and len(before) == 1, _kernel().signatures
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_a_pixel_stride_inserts_the_strided_pixels_of_the_naive_reference():
    from usx_model.compounding.insert import insert_stride

    rng = np.random.default_rng(11)
    grid = VolumeGrid((-4.0, -3.0, -5.0), (0.7, 0.6, 0.8), (14, 12, 11))
    images = rng.integers(0, 256, (3, 9, 11)).astype(np.uint8)
    rotations = Rotation.random(3, random_state=5).as_matrix()
    transforms = np.stack([_pixel_transform(0.3, R, rng.uniform(-4, 0, 3)) for R in rotations])
    mask = rng.random((9, 11)) > 0.2
    comp = Compounder(grid, (9, 11), CompoundingMode.MEAN, mask, pixel_stride=2)
    for image, T in zip(images, transforms, strict=True):
        comp.insert(image, T)
    strided = np.zeros_like(mask)
    strided[::2, ::2] = True
    value, coverage = _naive(images, transforms, grid, CompoundingMode.MEAN, mask & strided)
    res = comp.result()
    np.testing.assert_array_equal(res.coverage, coverage)
    np.testing.assert_allclose(res.value, value, rtol=1e-6)
    # 0.15 mm pixels into 0.5 mm voxels: every other pixel (0.3 mm apart); 0.4 mm: all
    assert insert_stride((0.15, 0.15), 0.5) == 2
    assert insert_stride((0.1, 0.4), 0.5) == 1
    assert insert_stride((0.05, 0.05), 0.5) == 6


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda g: Compounder(g, (4, 4), pixel_stride=0),
            "pixel_stride: expected an integer >= 1, got 0",
        ),
        (
            lambda g: Compounder(g, (4, 4), pixel_stride=1.5),
            "pixel_stride: expected an integer >= 1, got 1.5",
        ),
        (
            lambda g: __import__("usx_model.compounding.insert", fromlist=["x"]).insert_stride(
                (0.0, 0.1), 0.5
            ),
            "expected positive pixel and voxel sizes",
        ),
    ],
)
def test_bad_strides_are_named(call, message):
    grid = VolumeGrid((0.0, 0.0, 0.0), (1.0, 1.0, 1.0), (4, 4, 4))
    with pytest.raises(ValueError, match=message):
        call(grid)
