"""From a recorded calibration motion (joint states + B-mode frames) to the estimators'
inputs: flange poses by forward kinematics, the frames taken while the robot stood still,
the plate's line and depth per frame. Stamps in ns, joint angles in rad, mm."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from usx_model.calibration.plate_line import PlateLine
from usx_model.calibration.spatial import SpatialParams, SpatialResult, calibrate_spatial
from usx_model.calibration.temporal import (
    TemporalParams,
    TemporalResult,
    calibrate_temporal,
    motion_signal,
)
from usx_model.tracking.calibration import ProbeCalibration
from usx_model.tracking.iiwa import forward_kinematics


def _check_joints(joint_stamps_ns: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ts = np.asarray(joint_stamps_ns, dtype=np.int64)
    q = np.asarray(q, dtype=np.float64)
    if ts.ndim != 1 or q.shape != (len(ts), 7):
        raise ValueError(f"expected (J,) joint stamps and (J, 7) angles, got {ts.shape}, {q.shape}")
    if len(ts) < 2 or np.any(np.diff(ts) <= 0):
        raise ValueError("expected at least 2 joint states with increasing stamps")
    return ts, q


def _check_lines(lines: Sequence, image_stamps_ns: np.ndarray) -> None:
    if len(lines) != len(image_stamps_ns):
        raise ValueError(
            f"expected one line per frame, got {len(lines)} for {len(image_stamps_ns)}"
        )


def joints_at(stamps_ns: np.ndarray, joint_stamps_ns: np.ndarray, q: np.ndarray) -> np.ndarray:
    """(F, 7) joint angles at the stamps, linear between samples (clamped at the ends)."""
    ts, q = _check_joints(joint_stamps_ns, q)
    t = np.asarray(stamps_ns, dtype=np.float64)
    return np.stack([np.interp(t, ts.astype(np.float64), q[:, j]) for j in range(7)], axis=1)


def still_frames(
    stamps_ns: np.ndarray,
    joint_stamps_ns: np.ndarray,
    q: np.ndarray,
    window_s: float = 0.15,
    tolerance_rad: float = 1e-5,
) -> np.ndarray:
    """(F,) bool: no joint moved more than ``tolerance_rad`` within ``window_s`` of the frame
    (either side), so that a clock offset up to ``window_s`` cannot misplace it."""
    ts, q = _check_joints(joint_stamps_ns, q)
    out = np.zeros(len(stamps_ns), dtype=bool)
    w = int(window_s * 1e9)
    lo = np.searchsorted(ts, np.asarray(stamps_ns) - w, side="left")
    hi = np.searchsorted(ts, np.asarray(stamps_ns) + w, side="right")
    for k, (a, b) in enumerate(zip(lo, hi, strict=True)):
        if a == 0 or b >= len(ts) or b - a < 2:
            continue  # not bracketed by joint states on both sides
        seg = q[a:b]
        out[k] = float(np.max(np.ptp(seg, axis=0))) <= tolerance_rad
    return out


def spatial_from_recording(
    joint_stamps_ns: np.ndarray,
    q: np.ndarray,
    image_stamps_ns: np.ndarray,
    lines: Sequence[PlateLine | None],
    initial: ProbeCalibration,
    params: SpatialParams | None = None,
) -> tuple[SpatialResult, dict]:
    """The spatial calibration from the still frames with a plate line.

    Returns:
        (result, counts): counts of frames ``total``, ``still``, ``with_line``, ``used``.
    """
    _check_lines(lines, image_stamps_ns)
    still = still_frames(image_stamps_ns, joint_stamps_ns, q)
    has = np.array([ln is not None for ln in lines], dtype=bool)
    use = still & has
    counts = {
        "total": len(lines),
        "still": int(still.sum()),
        "with_line": int(has.sum()),
        "used": int(use.sum()),
    }
    stamps = np.asarray(image_stamps_ns)[use]
    T_base_ee = forward_kinematics(joints_at(stamps, joint_stamps_ns, q))
    uv = [lines[k].uv_px for k in np.flatnonzero(use)]
    return calibrate_spatial(T_base_ee, uv, initial, params), counts


def temporal_from_recording(
    joint_stamps_ns: np.ndarray,
    q: np.ndarray,
    image_stamps_ns: np.ndarray,
    lines: Sequence[PlateLine | None],
    centre_u_px: float,
    params: TemporalParams | None = None,
) -> TemporalResult:
    """The temporal offset from a heave over the plate: the plate's row at column
    ``centre_u_px`` against the flange's position along its principal motion."""
    ts, q = _check_joints(joint_stamps_ns, q)
    _check_lines(lines, image_stamps_ns)
    keep = [k for k, ln in enumerate(lines) if ln is not None]
    depth = np.array([lines[k].v_at(centre_u_px) for k in keep], dtype=np.float64)
    signal = motion_signal(forward_kinematics(q)[:, :3, 3])
    return calibrate_temporal(
        np.asarray(image_stamps_ns, dtype=np.int64)[keep], depth, ts, signal, params
    )
