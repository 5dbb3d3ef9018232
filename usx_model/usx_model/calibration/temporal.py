"""Temporal calibration: the offset between the images' stamps and the joint states' clock,
from an up-and-down motion over a flat plate (the method PLUS uses: align the plate's
depth in the images with the probe's position from tracking).

While the probe heaves along the plate's normal, the plate's depth in the image ``s(t)``
and the probe's position along the motion ``p(t)`` are one signal seen twice:
``s(t_i) = a + b p(t_i + offset)``. For each candidate offset the best ``a, b`` follow by
linear least squares; the offset minimising the residual is scanned on a 1 ms grid and
refined to a fraction of a millisecond. ``offset_ms`` is what to add to an image stamp to
get the tracking time of its acquisition: the compounding's ``temporal_offset``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize_scalar


@dataclass(frozen=True)
class TemporalParams:
    """Settings of the temporal calibration.

    Attributes:
        max_offset_ms: offsets searched in [-max, +max].
        min_correlation: a weaker fit means the two signals are not the same motion.
        min_motion_mm: the probe must move at least this much (peak to peak).
    """

    max_offset_ms: float = 300.0
    min_correlation: float = 0.99
    min_motion_mm: float = 5.0


@dataclass(frozen=True)
class TemporalResult:
    """The offset and how well the two signals agree.

    Attributes:
        offset_ms: add to image stamps to get tracking time (nan when not estimated).
        correlation: |Pearson r| of the aligned signals.
        rms_mm: RMS residual of the aligned fit, mm.
        frames: image samples used.
        converged: a clear optimum inside the searched range with a strong fit.
        warnings: what failed, one line each.
    """

    offset_ms: float
    correlation: float
    rms_mm: float
    frames: int
    converged: bool
    warnings: list[str]

    def as_dict(self) -> dict:
        return {
            "offset_ms": self.offset_ms,
            "correlation": self.correlation,
            "rms_mm": self.rms_mm,
            "frames": self.frames,
            "converged": self.converged,
            "warnings": list(self.warnings),
        }


def motion_signal(positions_mm: np.ndarray) -> np.ndarray:
    """(J,) positions (J, 3) projected on their principal direction, mm."""
    x = np.asarray(positions_mm, dtype=np.float64)
    c = x - x.mean(axis=0)
    axis = np.linalg.svd(c, full_matrices=False)[2][0]
    return c @ axis


def calibrate_temporal(
    image_stamps_ns: np.ndarray,
    image_depth_mm: np.ndarray,
    pose_stamps_ns: np.ndarray,
    pose_signal_mm: np.ndarray,
    params: TemporalParams | None = None,
) -> TemporalResult:
    """Offset between images and poses; see the module docstring.

    Args:
        image_stamps_ns: (F,) stamps of the frames with a plate line.
        image_depth_mm: (F,) the plate's depth in each (any fixed point of the line).
        pose_stamps_ns: (J,) increasing stamps of the tracking samples.
        pose_signal_mm: (J,) the probe's position along its motion (``motion_signal``).
        params: settings.

    Raises:
        ValueError: mismatched shapes, too few samples, unsorted pose stamps.
    """
    p = params or TemporalParams()
    ts = np.asarray(image_stamps_ns, dtype=np.int64)
    s = np.asarray(image_depth_mm, dtype=np.float64)
    tp = np.asarray(pose_stamps_ns, dtype=np.int64)
    q = np.asarray(pose_signal_mm, dtype=np.float64)
    if ts.shape != s.shape or tp.shape != q.shape or ts.ndim != 1 or tp.ndim != 1:
        raise ValueError(
            f"expected (F,) image stamps and depths, (J,) pose stamps and signal; got "
            f"{ts.shape}, {s.shape}, {tp.shape}, {q.shape}"
        )
    if len(ts) < 10 or len(tp) < 10:
        raise ValueError(f"expected at least 10 frames and 10 poses, got {len(ts)} and {len(tp)}")
    if np.any(np.diff(tp) <= 0):
        raise ValueError("pose stamps must increase")
    origin = int(tp[0])
    t_img = (ts - origin) * 1e-9
    t_pose = (tp - origin) * 1e-9
    max_s = p.max_offset_ms * 1e-3

    def sse(offset_s: float) -> float:
        t = t_img + offset_s
        inside = (t >= t_pose[0]) & (t <= t_pose[-1])
        if inside.sum() < 10:
            return np.inf
        x = np.interp(t[inside], t_pose, q)
        A = np.stack([np.ones_like(x), x], axis=1)
        coef, *_ = np.linalg.lstsq(A, s[inside], rcond=None)
        r = s[inside] - A @ coef
        # per sample, so that offsets that push frames out of range gain nothing
        return float(r @ r) / inside.sum()

    grid = np.arange(-max_s, max_s + 1e-9, 1e-3)
    costs = np.array([sse(o) for o in grid])
    k = int(np.argmin(costs))
    lo, hi = grid[max(0, k - 1)], grid[min(len(grid) - 1, k + 1)]
    best = minimize_scalar(sse, bounds=(lo, hi), method="bounded", options={"xatol": 1e-6})
    offset = float(best.x)
    t = t_img + offset
    inside = (t >= t_pose[0]) & (t <= t_pose[-1])
    x = np.interp(t[inside], t_pose, q)
    corr = float(abs(np.corrcoef(x, s[inside])[0, 1])) if inside.sum() > 2 else 0.0
    warnings = []
    if np.ptp(q) < p.min_motion_mm:
        warnings.append(
            f"the probe moved {np.ptp(q):.1f} mm peak to peak (< {p.min_motion_mm} mm): "
            "no motion to align"
        )
    if k in (0, len(grid) - 1):
        warnings.append(
            f"the best offset lies at the edge of the searched +-{p.max_offset_ms} ms "
            "(raise max_offset_ms)"
        )
    if not corr >= p.min_correlation:
        warnings.append(
            f"image and tracking signals correlate at {corr:.3f} < {p.min_correlation} "
            "(not the same motion: wrong topic, the plate lost, a motion without heave)"
        )
    return TemporalResult(
        offset * 1e3,
        corr,
        float(np.sqrt(best.fun)),
        int(inside.sum()),
        not warnings,
        warnings,
    )
