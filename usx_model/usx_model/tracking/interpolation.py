"""Pose at an image timestamp: linear translation + slerp between the two bracketing poses.

Timestamps are **integer nanoseconds** (``stamp_ns``, as ROS ``sec * 10**9 + nanosec``);
durations in configuration are float seconds and converted once. Quaternions are
(x, y, z, w); translations mm.

A frame whose lookup time ``t = stamp_image + temporal_offset`` is not bracketed by two
buffered poses each within ``tolerance`` of ``t`` is dropped and counted (``no_pose``);
a pose with non-finite values or a quaternion whose norm is off by more than
``quat_norm_tolerance`` is rejected (``invalid_pose``); a pose whose stamp is not after the
newest buffered one is rejected (``out_of_order``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from usx_model.base.transforms import make_transform


class DropReason(StrEnum):
    """Why a pose or a frame was not used."""

    NO_POSE = "no_pose"
    OUT_OF_ORDER = "out_of_order"
    INVALID_POSE = "invalid_pose"


def seconds_to_ns(seconds: float) -> int:
    """Float seconds -> integer nanoseconds (rounded)."""
    return round(float(seconds) * 1e9)


def _check_stamp(stamp_ns: int) -> int:
    # a float here is almost always seconds passed by mistake
    if isinstance(stamp_ns, bool) or not isinstance(stamp_ns, int | np.integer):
        raise ValueError(
            f"expected an integer stamp in nanoseconds, got {type(stamp_ns).__name__} {stamp_ns!r}"
        )
    return int(stamp_ns)


def quat_slerp(q0: np.ndarray, q1: np.ndarray, fraction: np.ndarray) -> np.ndarray:
    """Shortest-path spherical linear interpolation of unit quaternions.

    Args:
        q0, q1: (..., 4) unit quaternions (x, y, z, w).
        fraction: (...) in [0, 1]; 0 gives q0, 1 gives q1 (up to sign).

    Returns:
        (..., 4) unit quaternions.
    """
    q0 = np.asarray(q0, dtype=np.float64)
    q1 = np.asarray(q1, dtype=np.float64)
    f = np.asarray(fraction, dtype=np.float64)[..., None]
    dot = np.sum(q0 * q1, axis=-1, keepdims=True)
    q1 = np.where(dot < 0, -q1, q1)  # q and -q are the same rotation: take the short arc
    dot = np.abs(dot)
    theta = np.arccos(np.clip(dot, -1.0, 1.0))
    sin_theta = np.sin(theta)
    # nearly equal quaternions: the slerp weights tend to (1 - f, f); avoid 0/0
    near = sin_theta < 1e-9
    safe = np.where(near, 1.0, sin_theta)
    w0 = np.where(near, 1.0 - f, np.sin((1.0 - f) * theta) / safe)
    w1 = np.where(near, f, np.sin(f * theta) / safe)
    q = w0 * q0 + w1 * q1
    return q / np.linalg.norm(q, axis=-1, keepdims=True)


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """(..., 4) unit quaternions (x, y, z, w) -> (..., 3, 3) rotation matrices."""
    x, y, z, w = np.moveaxis(np.asarray(q, dtype=np.float64), -1, 0)
    return np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
            np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
            np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
        ],
        -2,
    )


def _slerp_one(q0: list[float], q1: list[float], f: float) -> list[float]:
    """:func:`quat_slerp` of two quaternions (x, y, z, w lists) on Python floats."""
    dot = sum(a * b for a, b in zip(q0, q1, strict=True))
    if dot < 0:
        q1, dot = [-b for b in q1], -dot
    theta = math.acos(min(max(dot, -1.0), 1.0))
    sin_theta = math.sin(theta)
    if sin_theta < 1e-9:
        w0, w1 = 1.0 - f, f
    else:
        w0, w1 = math.sin((1.0 - f) * theta) / sin_theta, math.sin(f * theta) / sin_theta
    q = [w0 * a + w1 * b for a, b in zip(q0, q1, strict=True)]
    norm = math.sqrt(sum(c * c for c in q))
    return [c / norm for c in q]


def _quat_matrix(q: list[float]) -> list[list[float]]:
    """:func:`quat_to_matrix` of one quaternion (x, y, z, w) on Python floats."""
    x, y, z, w = q
    return [
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ]


def interpolate_poses(
    stamps_ns: np.ndarray,
    translations_mm: np.ndarray,
    quats_xyzw: np.ndarray,
    query_ns: np.ndarray,
    tolerance_ns: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Interpolate a pose track at many query times.

    Args:
        stamps_ns: (P,) int64, strictly increasing.
        translations_mm: (P, 3) positions, mm.
        quats_xyzw: (P, 4) unit quaternions.
        query_ns: (M,) int64 lookup times (image stamp + temporal offset).
        tolerance_ns: a query is valid when the pose before and the pose after it are each
            at most this far away (an exact stamp match needs only itself).

    Returns:
        ``(T, valid)``: (M, 4, 4) float64 poses (identity where invalid) and (M,) bool.
    """
    stamps_ns = np.asarray(stamps_ns)
    query_ns = np.atleast_1d(np.asarray(query_ns))
    p = stamps_ns.shape[0] if stamps_ns.ndim == 1 else -1
    if (
        p < 0
        or np.shape(translations_mm) != (p, 3)
        or np.shape(quats_xyzw) != (p, 4)
        or query_ns.ndim != 1
    ):
        raise ValueError(
            "expected (P,) stamps, (P, 3) translations, (P, 4) quaternions and (M,) queries, "
            f"got {stamps_ns.shape}, {np.shape(translations_mm)}, {np.shape(quats_xyzw)} and "
            f"{query_ns.shape}"
        )
    if not (
        np.issubdtype(stamps_ns.dtype, np.integer) and np.issubdtype(query_ns.dtype, np.integer)
    ):
        raise ValueError(
            f"expected integer nanosecond stamps, got {stamps_ns.dtype} and {query_ns.dtype}"
        )
    stamps_ns = stamps_ns.astype(np.int64)
    query_ns = query_ns.astype(np.int64)
    if np.any(np.diff(stamps_ns) <= 0):
        raise ValueError("expected strictly increasing pose stamps")
    m = query_ns.shape[0]
    T = np.broadcast_to(np.eye(4), (m, 4, 4)).copy()
    valid = np.zeros(m, dtype=bool)
    if stamps_ns.shape[0] == 0:
        return T, valid
    # hi: first pose with stamp >= t; lo: last pose with stamp <= t
    hi = np.searchsorted(stamps_ns, query_ns, side="left")
    last = stamps_ns.shape[0] - 1
    exact = (hi <= last) & (stamps_ns[np.minimum(hi, last)] == query_ns)
    lo = np.where(exact, hi, hi - 1)
    inside = (lo >= 0) & (hi <= last)
    lo_c = np.clip(lo, 0, last)
    hi_c = np.clip(hi, 0, last)
    t_lo, t_hi = stamps_ns[lo_c], stamps_ns[hi_c]
    valid = inside & (query_ns - t_lo <= tolerance_ns) & (t_hi - query_ns <= tolerance_ns)
    span = np.maximum(t_hi - t_lo, 1)
    fraction = np.where(hi_c == lo_c, 0.0, (query_ns - t_lo) / span)
    fraction = np.clip(fraction, 0.0, 1.0)
    t = translations_mm[lo_c] + fraction[:, None] * (translations_mm[hi_c] - translations_mm[lo_c])
    q = quat_slerp(quats_xyzw[lo_c], quats_xyzw[hi_c], fraction)
    T[valid] = make_transform(quat_to_matrix(q[valid]), t[valid])
    return T, valid


@dataclass(frozen=True)
class PoseLookup:
    """Result of one lookup: ``T_base_ee`` (4, 4) mm when valid, else None and a reason."""

    valid: bool
    T_base_ee: np.ndarray | None
    reason: DropReason | None = None


class PoseBuffer:
    """A bounded, time-ordered buffer of flange poses with counted rejections.

    Args:
        capacity: poses kept (oldest dropped first).
        tolerance_s: the largest gap, seconds, between the lookup time and each of the two
            bracketing poses.
        temporal_offset_s: added to an image stamp before the lookup (positive when the
            image stamp is early relative to the tracking clock).
        quat_norm_tolerance: a quaternion with | ||q|| - 1 | above this is rejected;
            accepted ones are renormalised.
    """

    def __init__(
        self,
        capacity: int = 1000,
        tolerance_s: float = 0.05,
        temporal_offset_s: float = 0.0,
        quat_norm_tolerance: float = 1e-3,
    ) -> None:
        if capacity < 2:
            raise ValueError(f"expected capacity >= 2 poses, got {capacity}")
        if not tolerance_s >= 0:
            raise ValueError(f"expected tolerance_s >= 0, got {tolerance_s}")
        self.capacity = int(capacity)
        self.tolerance_ns = seconds_to_ns(tolerance_s)
        self.temporal_offset_ns = seconds_to_ns(temporal_offset_s)
        self.quat_norm_tolerance = float(quat_norm_tolerance)
        # twice the capacity so that trimming is an occasional block copy, not per pose
        self._stamps = np.empty(2 * self.capacity, dtype=np.int64)
        self._t = np.empty((2 * self.capacity, 3))
        self._q = np.empty((2 * self.capacity, 4))
        self._start = 0
        self._end = 0
        self.counts: dict[DropReason, int] = dict.fromkeys(DropReason, 0)
        self.accepted_poses = 0

    def __len__(self) -> int:
        return self._end - self._start

    @property
    def newest_stamp_ns(self) -> int | None:
        return int(self._stamps[self._end - 1]) if len(self) else None

    def restarted(self) -> PoseBuffer:
        """A buffer with the same settings and poses, its counters at zero.

        For the next sweep: the pose stream does not stop between sweeps, and a frame at
        the very start of one needs the pose just before it, which may have arrived
        before the start did.
        """
        out = PoseBuffer(
            self.capacity,
            self.tolerance_ns / 1e9,
            self.temporal_offset_ns / 1e9,
            self.quat_norm_tolerance,
        )
        n = len(self)
        out._stamps[:n] = self._stamps[self._start : self._end]
        out._t[:n] = self._t[self._start : self._end]
        out._q[:n] = self._q[self._start : self._end]
        out._end = n
        return out

    def add(
        self, stamp_ns: int, translation_mm: np.ndarray, quat_xyzw: np.ndarray
    ) -> DropReason | None:
        """Append one pose; return None when accepted, else the (counted) reason."""
        t = np.asarray(translation_mm, dtype=np.float64)
        q = np.asarray(quat_xyzw, dtype=np.float64)
        if t.shape != (3,) or q.shape != (4,):
            raise ValueError(
                f"expected a (3,) translation and a (4,) quaternion, got {t.shape} and {q.shape}"
            )
        norm = np.linalg.norm(q)
        if (
            not (np.all(np.isfinite(t)) and np.isfinite(norm))
            or abs(norm - 1.0) > self.quat_norm_tolerance
        ):
            self.counts[DropReason.INVALID_POSE] += 1
            return DropReason.INVALID_POSE
        stamp_ns = _check_stamp(stamp_ns)
        newest = self.newest_stamp_ns
        if newest is not None and stamp_ns <= newest:
            self.counts[DropReason.OUT_OF_ORDER] += 1
            return DropReason.OUT_OF_ORDER
        if self._end == self._stamps.shape[0]:
            keep = slice(self._end - self.capacity + 1, self._end)
            n = self.capacity - 1
            self._stamps[:n] = self._stamps[keep]
            self._t[:n] = self._t[keep]
            self._q[:n] = self._q[keep]
            self._start, self._end = 0, n
        self._stamps[self._end] = int(stamp_ns)
        self._t[self._end] = t
        self._q[self._end] = q / norm
        self._end += 1
        self._start = max(self._start, self._end - self.capacity)
        self.accepted_poses += 1
        return None

    def add_transform(self, stamp_ns: int, T_base_ee: np.ndarray) -> DropReason | None:
        """Append a pose given as a (4, 4) transform (e.g. from forward kinematics)."""
        from scipy.spatial.transform import Rotation

        T = np.asarray(T_base_ee, dtype=np.float64)
        if T.shape != (4, 4):
            raise ValueError(f"expected T_base_ee of shape (4, 4), got {T.shape}")
        if not np.all(np.isfinite(T)):
            self.counts[DropReason.INVALID_POSE] += 1
            return DropReason.INVALID_POSE
        return self.add(stamp_ns, T[:3, 3], Rotation.from_matrix(T[:3, :3]).as_quat())

    def pending(self, image_stamp_ns: int) -> bool:
        """True when a lookup now would miss only because the pose after it may still arrive.

        That is, the lookup time is after the newest pose but within the tolerance of it;
        a live node can hold such a frame briefly instead of dropping it.
        """
        newest = self.newest_stamp_ns
        t = _check_stamp(image_stamp_ns) + self.temporal_offset_ns
        return newest is not None and 0 < t - newest <= self.tolerance_ns

    def lookup(self, image_stamp_ns: int) -> PoseLookup:
        """Pose for an image stamped ``image_stamp_ns``; a miss is counted as ``no_pose``.

        :func:`interpolate_poses` for one query, on scalars: the buffer's stamps are
        ordered by construction, and a frame's lookup is on the per-frame path, where
        the vectorised function's ~30 small array operations dominate a single lookup.
        """
        t = _check_stamp(image_stamp_ns) + self.temporal_offset_ns
        stamps = self._stamps[self._start : self._end]
        hi = int(np.searchsorted(stamps, t, side="left"))
        lo = hi if hi < len(stamps) and stamps[hi] == t else hi - 1
        if (
            lo < 0
            or hi >= len(stamps)
            or not (t - stamps[lo] <= self.tolerance_ns and stamps[hi] - t <= self.tolerance_ns)
        ):
            self.counts[DropReason.NO_POSE] += 1
            return PoseLookup(False, None, DropReason.NO_POSE)
        i, j = self._start + lo, self._start + hi
        f = (
            0.0
            if lo == hi
            else min(max((t - int(stamps[lo])) / int(stamps[hi] - stamps[lo]), 0.0), 1.0)
        )
        T = np.eye(4)
        T[:3, :3] = _quat_matrix(_slerp_one(self._q[i].tolist(), self._q[j].tolist(), f))
        T[:3, 3] = self._t[i] + f * (self._t[j] - self._t[i])
        return PoseLookup(True, T)
