"""Simulated evaluation cases: a phantom spine, its US bone points in a robot base frame.

The registration, X-ray placement and level-split measurements all need the same thing:
a spine with known anatomy and the bone points a robotic US sweep would segment, placed
in a "base" frame by a known rigid transform. The US points come from the physics-aware
ray caster of :mod:`usx_model.sim.us_partial` (first bone hit, facing the probe,
union over lateral / antero-posterior probe shifts), cast over the whole spine at once,
so each point keeps the level whose mesh produced it (the ground truth of the split).

Spines come from ``usx_model.sim.phantom.spine.generate_spine(seed)`` (posture with
lordosis, mild scoliosis and axial rotation).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from usx_model.base.transforms import apply_transform, make_transform
from usx_model.sim.phantom.spine import generate_spine
from usx_model.sim.phantom.types import Spine
from usx_model.sim.scene import SpineScene
from usx_model.sim.us_partial import UsPartialConfig, cast_acquisitions


def phantom_spine(seed: int) -> Spine:
    """The project's procedural phantom spine of ``seed``."""
    return generate_spine(seed)


@dataclass
class SweepCase:
    """One simulated US sweep over a spine.

    Attributes:
        spine: the spine, LPS mm ("spine" frame).
        T_base_spine: (4, 4) pose of the spine in the robot base frame.
        points_base_mm: (N, 3) noisy US bone points, base frame.
        points_spine_mm: (N, 3) the same points, noise-free, spine frame.
        level: (N,) level (1..5) whose mesh produced each point.
        part: (N,) part code of the hit triangle.
    """

    spine: Spine
    T_base_spine: np.ndarray
    points_base_mm: np.ndarray
    points_spine_mm: np.ndarray
    level: np.ndarray
    part: np.ndarray


def random_pose(rng: np.random.Generator, max_translation_mm: float = 500.0) -> np.ndarray:
    """A uniformly random rotation with a translation of up to ``max_translation_mm``."""
    R = Rotation.random(random_state=rng).as_matrix()
    return make_transform(R, rng.uniform(-max_translation_mm, max_translation_mm, 3))


def make_sweep_case(
    seed: int,
    spine: Spine | None = None,
    cfg: UsPartialConfig | None = None,
    outlier_fraction: float = 0.02,
) -> SweepCase:
    """Simulate the US bone points of a whole sweep and place them in a random base frame.

    Args:
        seed: seed of the spine (when not given), the noise and the base pose.
        spine: the spine; ``phantom_spine(seed)`` if None.
        cfg: US simulator parameters (noise: axial sd along the beam, lateral sd).
        outlier_fraction: share of extra points scattered uniformly within 10 mm of the
            cloud's bounding box (segmentation false positives).

    Returns:
        SweepCase (outliers carry level 0 and part 0).
    """
    spine = spine if spine is not None else phantom_spine(seed)
    cfg = cfg or UsPartialConfig()
    rng = np.random.default_rng([seed, 17])
    pts, dirs, level, part = cast_acquisitions(SpineScene(spine), cfg)
    noisy = pts + rng.normal(0.0, cfg.noise_lateral_mm, pts.shape)
    noisy += dirs * rng.normal(0.0, cfg.noise_axial_mm, (len(pts), 1))
    n_out = round(outlier_fraction * len(pts))
    lo, hi = pts.min(axis=0) - 10.0, pts.max(axis=0) + 10.0
    outliers = rng.uniform(lo, hi, (n_out, 3))
    T = random_pose(rng)
    return SweepCase(
        spine=spine,
        T_base_spine=T,
        points_base_mm=apply_transform(T, np.vstack([noisy, outliers])),
        points_spine_mm=np.vstack([pts, outliers]),
        level=np.concatenate([level, np.zeros(n_out, level.dtype)]),
        part=np.concatenate([part, np.zeros(n_out, part.dtype)]),
    )
