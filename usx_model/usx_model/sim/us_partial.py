"""Physics-aware ultrasound partial point clouds by ray casting (US-X Complete, Sec. 2.3).

The paper simulates what spine ultrasound can see: virtual transverse acquisitions above
each spinous process cast rays into the spine; only the first bone hit along a ray
returns an echo (bone reflects/absorbs nearly all energy, so it shadows what lies
behind), and only surfaces facing the probe (normal within 90 degrees of the reversed
ray) reflect back. The paper keeps "only points visible across a set of lateral and
antero-posterior probe shifts". We read this as the **union** over probe poses: a real
sweep moves the probe laterally and presses it at different depths, and every pose
contributes the bone it sees; the shifts widen the angles of view, so side walls of the
spinous process and the lamina appear, while points shadowed from *every* pose (the
vertebral body behind the arch) never do. An intersection would shrink the cloud to the
few points seen from all poses, which is not what a compounded sweep shows.

Geometry (spine LPS frame, mm): the patient lies prone, the probe sits on the back at
large +y, looking along -y; each image plane is transverse (x-y), the probe's lateral
axis is +x. For level L the probe face is centred above L's spinous process (x, z of its
centroid), ``standoff_mm`` posterior to the vertebra's most posterior point. Planes are
repeated every ``elevation_step_mm`` cranio-caudally (the sweep), for every lateral and
antero-posterior shift. The rays of one plane form a fan from a virtual apex behind a
curvilinear face (``fan_angle_deg`` = 0 gives a linear probe with parallel rays).

After the union, the cloud is cropped per level with a fixed-size box around the
vertebra centroid, so neighbouring levels pollute each crop, as in the paper, and noise
is added: Gaussian, larger along the beam (axial) than across it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from usx_model.base.crop import CROP_SIZE_MM
from usx_model.base.parts import Part
from usx_model.sim._checks import check_positive, check_spine
from usx_model.sim.phantom.types import Spine, VertebraMesh
from usx_model.sim.scene import SpineScene


@dataclass(frozen=True)
class UsPartialConfig:
    """Parameters of the partial-view simulator (mm and degrees).

    Attributes:
        probe_width_mm: aperture of the probe face (chord), lateral.
        fan_angle_deg: opening of the ray fan; 0 = linear probe, parallel rays.
        rays_per_plane: rays per transverse plane.
        standoff_mm: probe face distance posterior to the vertebra's most posterior point
            (soft tissue over the spinous process).
        lateral_shifts_mm: probe shifts along x.
        ap_shifts_mm: probe shifts along y (positive = lifted off posteriorly).
        elevation_half_range_mm: planes cover centre +- this along z.
        elevation_step_mm: spacing of the transverse planes along z.
        max_incidence_deg: keep hits whose normal is within this angle of the reversed
            ray (90 = the paper's "facing the probe").
        max_depth_mm: keep hits at most this far from the probe face: the imaging depth
            of lumbar spine ultrasound (about 9 cm); deeper echoes, e.g. from the lateral
            and anterior body walls, are lost to attenuation in real scans.
        dedupe_voxel_mm: merge hits from overlapping poses on this grid.
        crop_size_mm: (3,) full size of the per-level crop box around the vertebra
            centroid (x, y, z).
        noise_axial_mm: sd of Gaussian noise along the beam.
        noise_lateral_mm: sd of Gaussian noise in every direction.
    """

    probe_width_mm: float = 60.0
    fan_angle_deg: float = 40.0
    rays_per_plane: int = 192
    standoff_mm: float = 20.0
    lateral_shifts_mm: tuple[float, ...] = (-20.0, -10.0, 0.0, 10.0, 20.0)
    ap_shifts_mm: tuple[float, ...] = (0.0, 15.0)
    elevation_half_range_mm: float = 22.0
    elevation_step_mm: float = 1.0
    max_incidence_deg: float = 90.0
    max_depth_mm: float = 90.0
    dedupe_voxel_mm: float = 0.5
    crop_size_mm: tuple[float, float, float] = CROP_SIZE_MM
    noise_axial_mm: float = 0.5
    noise_lateral_mm: float = 0.2

    def validate(self) -> None:
        """Raise ValueError on out-of-range parameters."""
        for name in ("probe_width_mm", "standoff_mm", "elevation_step_mm", "max_depth_mm"):
            check_positive(getattr(self, name), name)
        check_positive(self.dedupe_voxel_mm, "dedupe_voxel_mm")
        if not 0 <= self.fan_angle_deg < 180:
            raise ValueError(f"fan_angle_deg must lie in [0, 180), got {self.fan_angle_deg}")
        if not 0 < self.max_incidence_deg <= 90:
            raise ValueError(f"max_incidence_deg must lie in (0, 90], got {self.max_incidence_deg}")
        if self.rays_per_plane < 2:
            raise ValueError(f"rays_per_plane must be >= 2, got {self.rays_per_plane}")
        if len(self.crop_size_mm) != 3 or min(self.crop_size_mm) <= 0:
            raise ValueError(f"crop_size_mm must be 3 positive sizes, got {self.crop_size_mm}")
        if self.noise_axial_mm < 0 or self.noise_lateral_mm < 0:
            raise ValueError("noise sds must be >= 0")
        if not self.lateral_shifts_mm or not self.ap_shifts_mm:
            raise ValueError("lateral_shifts_mm and ap_shifts_mm need at least one value")


@dataclass
class UsPartial:
    """The simulated US partial cloud of one level.

    Attributes:
        level: the level the crop is centred on (1..5).
        points_mm: (N, 3) float64 noisy points, mm, spine frame.
        hit_level: (N,) int16 level whose bone produced each point (may differ from
            ``level``: neighbours inside the crop box).
        hit_part: (N,) uint8 part code of the hit triangle (0 if the mesh is unlabelled).
    """

    level: int
    points_mm: np.ndarray
    hit_level: np.ndarray
    hit_part: np.ndarray

    def subset(self, idx: np.ndarray) -> UsPartial:
        """A new partial holding the points at ``idx``."""
        return UsPartial(self.level, self.points_mm[idx], self.hit_level[idx], self.hit_part[idx])


def probe_centre_mm(vert: VertebraMesh) -> np.ndarray:
    """(x, z) above which the probe is centred: the spinous process centroid if labelled."""
    v = np.asarray(vert.vertices_mm, dtype=np.float64)
    spinous = np.asarray(vert.part) == Part.SPINOUS
    src = v[spinous] if spinous.any() else v
    c = src.mean(axis=0)
    return np.array([c[0], c[2]])


def _plane_rays(cfg: UsPartialConfig) -> tuple[np.ndarray, np.ndarray]:
    """Origins (relative to the face centre) and directions of one transverse plane."""
    n = cfg.rays_per_plane
    half_w = 0.5 * cfg.probe_width_mm
    if cfg.fan_angle_deg == 0:
        x = np.linspace(-half_w, half_w, n)
        origins = np.stack([x, np.zeros(n), np.zeros(n)], axis=1)
        dirs = np.tile([0.0, -1.0, 0.0], (n, 1))
        return origins, dirs
    half = np.deg2rad(cfg.fan_angle_deg) / 2
    radius = half_w / np.sin(half)  # curvilinear face of this radius spans the aperture
    theta = np.linspace(-half, half, n)
    dirs = np.stack([np.sin(theta), -np.cos(theta), np.zeros(n)], axis=1)
    apex = np.array([0.0, radius, 0.0])
    origins = apex + radius * dirs
    return origins, dirs


def cast_acquisitions(
    scene: SpineScene, cfg: UsPartialConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Cast every virtual acquisition of every level; return visible hits (union).

    Returns:
        (points_mm (H, 3), beam_dirs (H, 3), hit_level (H,), hit_part (H,)) of the
        deduplicated visible hits.
    """
    o_plane, d_plane = _plane_rays(cfg)
    dz = np.arange(
        -cfg.elevation_half_range_mm, cfg.elevation_half_range_mm + 1e-9, cfg.elevation_step_mm
    )
    origins, dirs = [], []
    for level in scene.spine.levels:
        vert = scene.spine.vertebrae[level]
        cx, cz = probe_centre_mm(vert)
        y_face = float(np.max(np.asarray(vert.vertices_mm)[:, 1])) + cfg.standoff_mm
        for sx in cfg.lateral_shifts_mm:
            for sy in cfg.ap_shifts_mm:
                centres = np.stack(
                    [np.full_like(dz, cx + sx), np.full_like(dz, y_face + sy), cz + dz], axis=1
                )
                origins.append((centres[:, None, :] + o_plane[None]).reshape(-1, 3))
                dirs.append(np.broadcast_to(d_plane, (len(dz), *d_plane.shape)).reshape(-1, 3))
    o = np.concatenate(origins)
    d = np.concatenate(dirs)
    hits = scene.cast(o, d)
    keep = (
        hits.hit
        & (hits.cos_incidence > np.cos(np.deg2rad(cfg.max_incidence_deg)) + 1e-9)
        & (hits.t_mm <= cfg.max_depth_mm)
    )
    pts = hits.points_mm[keep]
    # the same bone point seen from several poses counts once
    keys = np.floor(pts / cfg.dedupe_voxel_mm).astype(np.int64)
    _, first = np.unique(keys, axis=0, return_index=True)
    first = np.sort(first)
    return pts[first], d[keep][first], hits.level[keep][first], hits.part[keep][first]


def simulate_us_partials(
    spine: Spine,
    cfg: UsPartialConfig | None = None,
    seed: int = 0,
    scene: SpineScene | None = None,
) -> dict[int, UsPartial]:
    """Simulate the US partial cloud of every level of a spine.

    Args:
        spine: the spine (all levels cast together so that bone occludes bone).
        cfg: simulator parameters; defaults if None.
        seed: seed of the noise; the same seed gives the same clouds.
        scene: a prebuilt scene of ``spine`` to reuse (optional).

    Returns:
        level -> UsPartial (points in the spine frame, mm). A level may hold 0 points.

    Raises:
        ValueError: on an empty/malformed spine or bad parameters.
    """
    cfg = cfg or UsPartialConfig()
    cfg.validate()
    check_spine(spine)
    scene = scene or SpineScene(spine)
    pts, dirs, hit_level, hit_part = cast_acquisitions(scene, cfg)
    half = 0.5 * np.asarray(cfg.crop_size_mm)
    out = {}
    for level in spine.levels:
        c = np.asarray(spine.vertebrae[level].centroid_mm, dtype=np.float64)
        inside = np.all(np.abs(pts - c) <= half, axis=1)
        p, d = pts[inside], dirs[inside]
        rng = np.random.default_rng([seed, level])
        noise = rng.normal(0.0, cfg.noise_lateral_mm, p.shape)
        noise += d * rng.normal(0.0, cfg.noise_axial_mm, (len(p), 1))
        out[level] = UsPartial(level, p + noise, hit_level[inside], hit_part[inside])
    return out


def farthest_point_indices(points: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """Farthest point sampling of ``n`` indices from (N, 3) points, N >= n, seeded start."""
    p = np.asarray(points, dtype=np.float64)
    rng = np.random.default_rng(seed)
    idx = np.empty(n, dtype=np.int64)
    idx[0] = rng.integers(len(p))
    dist = np.sum((p - p[idx[0]]) ** 2, axis=1)
    for i in range(1, n):
        idx[i] = int(np.argmax(dist))
        dist = np.minimum(dist, np.sum((p - p[idx[i]]) ** 2, axis=1))
    return idx
