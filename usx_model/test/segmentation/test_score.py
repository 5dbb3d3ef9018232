"""The compiled bone score against a vectorised NumPy evaluation of the same arithmetic
(itself checked against naive window means)."""

from __future__ import annotations

import numpy as np
import pytest

from usx_model.bench.compounding import _frames
from usx_model.segmentation.bone import BoneSegParams, bone_score


def _window_means(scan: np.ndarray, reach: int):
    """Means of rows [r + a, r + b) of every scanline (clipped; 0 when empty), from one
    float32 cumulative sum: the reference's windows."""
    n = scan.shape[1]
    csum = np.zeros((scan.shape[0], n + 1 + 2 * reach), dtype=np.float32)
    np.cumsum(scan, axis=1, out=csum[:, reach + 1 : reach + 1 + n])
    csum[:, reach + 1 + n :] = csum[:, reach + n : reach + 1 + n]

    def mean(a: int, b: int) -> np.ndarray:
        r = np.arange(n)
        count = np.clip(r + b, 0, n) - np.clip(r + a, 0, n)
        inv = (1.0 / np.maximum(count, 1)).astype(np.float32)
        return (csum[:, reach + b : reach + b + n] - csum[:, reach + a : reach + a + n]) * inv

    return mean


def _reference_score(image: np.ndarray, p: BoneSegParams) -> np.ndarray:
    """The bone score as whole-array NumPy operations (the kernel's docstring)."""
    dz = p.pixel_mm[1] * p.row_step
    scan = np.ascontiguousarray(image[:: p.row_step, :: p.col_step].T, dtype=np.float32)
    scan *= np.float32(1 / 255)
    n_rows = scan.shape[1]
    m = max(1, round(p.smooth_mm / dz))
    k = max(1, round(p.ridge_mm / dz))
    gap = max(m, round(p.shadow_gap_mm / dz))
    w = max(1, round(p.shadow_mm / dz))
    box = _window_means(scan, max(m + k, gap + w))
    s = box(0, m)
    ridge = s - np.maximum(box(-k, 0), box(m, m + k))
    shadow = box(gap, gap + w)
    front = np.maximum(box(-w, 0), np.float32(0.25) * s)
    with np.errstate(invalid="ignore", divide="ignore"):
        dark = np.where(front > 0, np.float32(1.0) - shadow / front, np.float32(0.0))
    score = np.clip(ridge * np.float32(2.0), 0, 1) * np.clip(dark, 0, 1)
    score[:, : round(p.min_depth_mm / dz)] = 0.0
    score[:, max(0, n_rows - w // 4 - gap) :] = 0.0
    return score.astype(np.float32)


@pytest.mark.parametrize(("a", "b"), [(0, 1), (0, 3), (-4, 0), (2, 6), (4, 24), (-20, 0), (-3, 5)])
def test_the_references_window_means_match_a_naive_loop(a, b):
    scan = np.random.default_rng(abs(a) * 100 + b).random((5, 30)).astype(np.float32)
    want = np.zeros(scan.shape)
    for r in range(30):
        lo, hi = min(max(r + a, 0), 30), min(max(r + b, 0), 30)
        if hi > lo:
            want[:, r] = scan[:, lo:hi].mean(axis=1)
    np.testing.assert_allclose(_window_means(scan, 24)(a, b), want, atol=1e-5)


def _images():
    rng = np.random.default_rng(11)
    real = _frames((512, 512), 0.15)  # B-mode content of the simulator
    yield from ((f"bmode{i}", img, BoneSegParams()) for i, img in enumerate(real[:4]))
    yield "noise", rng.integers(0, 256, (512, 512), dtype=np.uint8), BoneSegParams()
    yield "black", np.zeros((64, 48), np.uint8), BoneSegParams()
    yield "small", rng.integers(0, 256, (9, 8), dtype=np.uint8), BoneSegParams()
    coarse_px = BoneSegParams(pixel_mm=(0.3, 0.4), row_step=1, col_step=3, shadow_gap_mm=0.0)
    yield "other_params", rng.integers(0, 256, (200, 130), dtype=np.uint8), coarse_px


@pytest.mark.parametrize(
    ("name", "image", "params"), [pytest.param(*case, id=case[0]) for case in _images()]
)
def test_the_compiled_score_equals_the_numpy_arithmetic_bit_for_bit(name, image, params):
    got = bone_score(image, params)
    want = _reference_score(image, params)
    assert got.dtype == np.float32 and got.shape == want.shape
    np.testing.assert_array_equal(got, want)
    if name.startswith("bmode"):
        assert got.max() > 0.5  # the frames hold bone: the comparison sees real scores
