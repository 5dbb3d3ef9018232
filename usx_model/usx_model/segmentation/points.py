"""Segmented bone pixels of tracked frames -> 3D points in the base frame.

The sub-pixel counterpart of ``compounding.points.sweep_to_base_points`` (which takes
boolean masks): each frame's ``BoneSegmentation`` goes through its own
``T_base_pixel`` (``tracking.calibration.base_pixel_transform``).
"""

from __future__ import annotations

import numpy as np

from usx_model.segmentation.bone import BoneSegmentation


def sweep_bone_points(
    segmentations: list[BoneSegmentation],
    T_base_pixel: np.ndarray,
    min_confidence: float = 0.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bone points of every frame of a sweep, in the base frame.

    Args:
        segmentations: F per-frame results of ``segment_bone``.
        T_base_pixel: (F, 4, 4) per-frame pixel -> base affines (mm).
        min_confidence: keep only points with at least this confidence.

    Returns:
        ``(points, frame, confidence)``: (K, 3) float64 base-frame mm, (K,) int64 frame
        index and (K,) float64 confidence of each point.
    """
    T = np.asarray(T_base_pixel, dtype=np.float64)
    if T.ndim != 3 or T.shape[1:] != (4, 4) or T.shape[0] != len(segmentations):
        raise ValueError(
            f"expected ({len(segmentations)}, 4, 4) transforms for {len(segmentations)} "
            f"segmentations, got {T.shape}"
        )
    if not segmentations:
        return np.zeros((0, 3)), np.zeros(0, dtype=np.int64), np.zeros(0)
    u = np.concatenate([s.u_px for s in segmentations])
    v = np.concatenate([s.v_px for s in segmentations])
    conf = np.concatenate([s.confidence for s in segmentations])
    frame = np.repeat(np.arange(len(segmentations)), [len(s.u_px) for s in segmentations])
    keep = conf >= min_confidence
    u, v, conf, frame = u[keep], v[keep], conf[keep], frame[keep]
    A = T[frame][:, :3, :]  # (K, 3, 4): columns u, v, (unused z), translation
    pts = A[:, :, 0] * u[:, None] + A[:, :, 1] * v[:, None] + A[:, :, 3]
    return pts, frame.astype(np.int64), conf
