"""Tests of the per-frame bone segmentation on synthetic frames with analytic answers."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from usx_model.segmentation.bone import BoneSegmentation, BoneSegParams, segment_bone
from usx_model.tracking.calibration import pixels_to_base

COLS = 192


def _rows(value_of_col) -> np.ndarray:
    return np.array([value_of_col(u) for u in range(COLS)], dtype=np.int64)


@pytest.mark.parametrize("row", [40, 101, 150, 203])
def test_shadowed_line_is_found_at_its_row_in_every_column(make_line_frame, row):
    seg = segment_bone(make_line_frame(_rows(lambda u: row)))
    np.testing.assert_array_equal(seg.u_px, np.arange(COLS))
    assert np.max(np.abs(seg.v_px - row)) <= 0.5
    assert np.all((seg.confidence > 0.3) & (seg.confidence <= 1.0))


@pytest.mark.parametrize("slope", [0.25, -0.5, 1.0])
def test_tilted_line_is_found_per_column(make_line_frame, slope):
    truth = _rows(lambda u: int(np.floor(120 + slope * (u - COLS / 2))))
    seg = segment_bone(make_line_frame(truth, seed=3))
    # a few columns at the frame's sides may lack context; the rest must be exact
    assert len(seg.u_px) >= 0.95 * COLS
    err = seg.v_px - truth[seg.u_px.astype(int)]
    assert np.max(np.abs(err)) <= 0.5


def test_one_column_per_bone_pixel_and_increasing_columns(make_line_frame):
    seg = segment_bone(make_line_frame(_rows(lambda u: 90 if u < 96 else 160)))
    assert np.all(np.diff(seg.u_px) > 0)
    # a step (a wall) is kept on both sides, not interpolated across
    left, right = seg.u_px < 94, seg.u_px > 97
    assert np.max(np.abs(seg.v_px[left] - 90)) <= 0.5
    assert np.max(np.abs(seg.v_px[right] - 160)) <= 0.5


@pytest.mark.parametrize("kind", ["line-no-shadow", "speckle-only", "black", "white"])
def test_no_bone_without_a_shadowed_ridge(make_line_frame, make_speckle, kind):
    frame = {
        "line-no-shadow": lambda: make_line_frame(_rows(lambda u: 120), shadow=False),
        "speckle-only": lambda: make_speckle((256, COLS)).clip(0, 255).astype(np.uint8),
        "black": lambda: np.zeros((256, COLS), np.uint8),
        "white": lambda: np.full((256, COLS), 255, np.uint8),
    }[kind]()
    seg = segment_bone(frame)
    assert seg.u_px.shape == seg.v_px.shape == seg.confidence.shape == (0,)
    assert not seg.to_mask().any()


def test_soft_tissue_layer_above_bone_is_rejected(make_line_frame):
    img = make_line_frame(_rows(lambda u: 170))
    layer = make_line_frame(_rows(lambda u: 60), shadow=False)
    img[50:70] = layer[50:70]  # a bright fascia line over tissue, bone deeper
    seg = segment_bone(img)
    assert len(seg.u_px) == COLS
    assert np.max(np.abs(seg.v_px - 170)) <= 0.5


def test_partial_bone_leaves_other_columns_empty(make_line_frame):
    truth = _rows(lambda u: 130 if 40 <= u < 120 else -1)
    seg = segment_bone(make_line_frame(truth))
    assert set(seg.u_px.astype(int)) <= set(range(36, 124))
    assert set(range(44, 116)) <= set(seg.u_px.astype(int))


def test_deterministic(make_line_frame):
    img = make_line_frame(_rows(lambda u: int(100 + 20 * np.sin(u / 20))), seed=7)
    a, b = segment_bone(img), segment_bone(img.copy())
    for name in ("u_px", "v_px", "confidence"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


@pytest.mark.parametrize(
    ("image", "match"),
    [
        (
            np.zeros((64, 64)),
            r"expected a \(rows, cols\) uint8 B-mode image, got float64 \(64, 64\)",
        ),
        (np.zeros((64, 64, 3), np.uint8), r"got uint8 \(64, 64, 3\)"),
        (np.zeros((0, 0), np.uint8), r"at least 8 x 8 pixels, got \(0, 0\)"),
        (np.zeros((64, 4), np.uint8), r"at least 8 x 8 pixels, got \(64, 4\)"),
    ],
)
def test_bad_images_are_rejected(image, match):
    with pytest.raises(ValueError, match=match):
        segment_bone(image)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"col_step": 0}, "col_step must be an integer >= 1, got 0"),
        ({"row_step": 1.5}, "row_step must be an integer >= 1, got 1.5"),
        ({"pixel_mm": (0.15, 0.0)}, r"pixel_mm must be 2 positive numbers, got \(0.15, 0.0\)"),
        ({"shadow_mm": 0.0}, "shadow_mm must be > 0, got 0.0"),
        ({"jump_cost": -1.0}, "jump_cost must be >= 0, got -1.0"),
        ({"search_mm": (1.0, -1.0)}, r"search_mm must be 2 numbers >= 0"),
    ],
)
def test_bad_params_are_rejected(change, match):
    params = dataclasses.replace(BoneSegParams(), **change)
    with pytest.raises(ValueError, match=match):
        segment_bone(np.zeros((64, 64), np.uint8), params)


def test_mask_and_base_points_follow_the_pixels():
    seg = BoneSegmentation(
        u_px=np.array([0.0, 5.0, 9.0]),
        v_px=np.array([2.4, 7.6, 0.0]),
        confidence=np.array([0.2, 0.9, 0.5]),
        shape=(10, 10),
    )
    mask = seg.to_mask()
    assert sorted(zip(*np.nonzero(mask), strict=True)) == [(0, 9), (2, 0), (8, 5)]
    T = np.eye(4)
    T[:3, :2] = [[0.1, 0.0], [0.0, 0.2], [0.3, 0.1]]
    T[:3, 3] = [1.0, 2.0, 3.0]
    # independent reference: homogeneous pixel (u, v, 0, 1) through the affine
    ref = np.array([T @ [u, v, 0.0, 1.0] for u, v in zip(seg.u_px, seg.v_px, strict=True)])
    np.testing.assert_allclose(seg.to_base(T), ref[:, :3])
    np.testing.assert_allclose(seg.to_base(T, min_confidence=0.5), ref[1:, :3])
    np.testing.assert_allclose(pixels_to_base(seg.uv_px, T), ref[:, :3])


@pytest.mark.parametrize(("cols", "col_step"), [(8, 16), (8, 4), (12, 4)])
def test_narrow_frames_with_one_or_few_coarse_columns(make_line_frame, cols, col_step):
    img = make_line_frame(np.full(cols, 100), shape=(256, cols))
    seg = segment_bone(img, dataclasses.replace(BoneSegParams(), col_step=col_step))
    np.testing.assert_array_equal(seg.u_px, np.arange(cols))
    assert np.max(np.abs(seg.v_px - 100)) <= 0.5


def test_a_lone_detection_stays_only_if_its_score_pays_for_switching(make_line_frame):
    # one coarse column (4 image columns) of bone, nothing around it; the DP keeps it when
    # min_score - score + 2 * switch_cost < 0 (score ~0.95 here)
    truth = np.where((np.arange(COLS) >= 96) & (np.arange(COLS) < 100), 120, -1)
    strong = segment_bone(make_line_frame(truth))
    assert 96 in strong.u_px
    costly = dataclasses.replace(BoneSegParams(), switch_cost=0.5)
    assert len(segment_bone(make_line_frame(truth), costly).u_px) == 0
