"""Tests of the sweep-level pixel -> base mapping of segmented bone points."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from usx_model.segmentation.bone import BoneSegmentation
from usx_model.segmentation.points import sweep_bone_points
from usx_model.tracking.calibration import pixels_to_base


def _seg(u, v, c) -> BoneSegmentation:
    return BoneSegmentation(np.array(u, float), np.array(v, float), np.array(c, float), (8, 8))


def _affine(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    T = np.eye(4)
    T[:3, :3] = Rotation.random(random_state=seed).as_matrix() @ np.diag([0.2, 0.3, 1.0])
    T[:3, 3] = rng.normal(size=3) * 50
    return T


def test_matches_per_frame_pixels_to_base():
    segs = [_seg([0, 3], [1.5, 2.25], [0.9, 0.1]), _seg([], [], []), _seg([7], [6.0], [0.5])]
    T = np.stack([_affine(i) for i in range(3)])
    pts, frame, conf = sweep_bone_points(segs, T)
    ref = np.vstack([pixels_to_base(s.uv_px, T[i]) for i, s in enumerate(segs)])
    np.testing.assert_allclose(pts, ref)
    np.testing.assert_array_equal(frame, [0, 0, 2])
    np.testing.assert_array_equal(conf, [0.9, 0.1, 0.5])
    pts, frame, _ = sweep_bone_points(segs, T, min_confidence=0.5)
    np.testing.assert_allclose(pts, ref[[0, 2]])
    np.testing.assert_array_equal(frame, [0, 2])


def test_empty_sweep_and_bad_transforms():
    pts, frame, conf = sweep_bone_points([], np.zeros((0, 4, 4)))
    assert pts.shape == (0, 3) and frame.shape == conf.shape == (0,)
    with pytest.raises(ValueError, match=r"expected \(2, 4, 4\) transforms for 2 segmentations"):
        sweep_bone_points([_seg([], [], [])] * 2, np.zeros((3, 4, 4)))
