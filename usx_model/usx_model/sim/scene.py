"""A whole-spine ray-casting scene with per-triangle level and part labels.

All simulators share this: one open3d ``RaycastingScene`` built from every vertebra of a
:class:`~usx_model.sim.phantom.types.Spine` (so bone of one level shadows another), plus
arrays that tell, for each triangle, which level and which anatomical part it belongs to.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import open3d as o3d

from usx_model.base.points import check_points
from usx_model.sim._checks import check_spine
from usx_model.sim.phantom.types import Spine, VertebraMesh


@dataclass
class RayHits:
    """First bone hit of each ray.

    Attributes:
        hit: (R,) bool, the ray met bone.
        t_mm: (R,) float64 distance from origin to hit along the unit direction, inf if none.
        points_mm: (R, 3) hit positions (nan where no hit), spine frame.
        normals: (R, 3) outward unit normals of the hit triangles (zeros where no hit).
        level: (R,) int16 level of the hit vertebra, 0 where no hit.
        part: (R,) uint8 part code of the hit triangle, 0 where no hit.
        cos_incidence: (R,) cosine between the reversed ray and the surface normal
            (1 = head-on, <= 0 = back face), 0 where no hit.
    """

    hit: np.ndarray
    t_mm: np.ndarray
    points_mm: np.ndarray
    normals: np.ndarray
    level: np.ndarray
    part: np.ndarray
    cos_incidence: np.ndarray


def _triangle_parts(part: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Majority vote of the three vertex part codes of each triangle (ties -> first vertex)."""
    p = np.asarray(part, dtype=np.uint8)[faces]
    return np.where(p[:, 1] == p[:, 2], p[:, 1], p[:, 0]).astype(np.uint8)


class SpineScene:
    """Ray-casting scene of all vertebrae of a spine, mm, spine (LPS) frame.

    Args:
        spine: the spine; every vertebra is added, each as its own geometry.

    Raises:
        ValueError: if the spine has no vertebrae or a malformed mesh.
    """

    def __init__(self, spine: Spine) -> None:
        check_spine(spine)
        self.spine = spine
        self._scene = o3d.t.geometry.RaycastingScene()
        levels, tri_levels, tri_parts = [], [], []
        for level in spine.levels:
            vert = spine.vertebrae[level]
            v = o3d.core.Tensor(np.asarray(vert.vertices_mm, dtype=np.float32))
            f = o3d.core.Tensor(np.asarray(vert.faces, dtype=np.uint32))
            gid = self._scene.add_triangles(v, f)
            # geometry ids are assigned 0, 1, 2, ... in insertion order
            assert gid == len(levels)
            levels.append(level)
            tri_parts.append(_triangle_parts(vert.part, np.asarray(vert.faces)))
            tri_levels.append(np.full(len(vert.faces), level, dtype=np.int16))
        self._geom_level = np.asarray(levels, dtype=np.int16)
        self._tri_parts = tri_parts
        self._part_offsets = np.cumsum([0] + [len(p) for p in tri_parts])
        self._all_parts = np.concatenate(tri_parts)

    def _lookup(self, geom: np.ndarray, prim: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Level and part of (geometry id, primitive id) pairs; invalid ids give 0."""
        valid = geom < len(self._geom_level)
        g = np.where(valid, geom, 0).astype(np.int64)
        level = np.where(valid, self._geom_level[g], 0).astype(np.int16)
        flat = np.where(valid, self._part_offsets[g] + prim, 0)
        part = np.where(valid, self._all_parts[flat], 0).astype(np.uint8)
        return level, part

    def cast(self, origins_mm: np.ndarray, directions: np.ndarray) -> RayHits:
        """First bone hit of each ray.

        Args:
            origins_mm: (R, 3) ray origins, mm, spine frame.
            directions: (R, 3) ray directions (normalised here).

        Returns:
            RayHits for the R rays.
        """
        o = check_points(origins_mm, "origins_mm")
        d = check_points(directions, "directions")
        if o.shape != d.shape:
            raise ValueError(
                f"expected origins and directions of one shape, got {o.shape}, {d.shape}"
            )
        norm = np.linalg.norm(d, axis=1, keepdims=True)
        if np.any(norm == 0):
            raise ValueError("ray directions must be non-zero")
        d = d / norm
        rays = o3d.core.Tensor(np.hstack([o, d]).astype(np.float32))
        ans = self._scene.cast_rays(rays)
        t = ans["t_hit"].numpy().astype(np.float64)
        hit = np.isfinite(t)
        geom = ans["geometry_ids"].numpy().astype(np.int64)
        prim = ans["primitive_ids"].numpy().astype(np.int64)
        level, part = self._lookup(np.where(hit, geom, len(self._geom_level)), prim)
        n = ans["primitive_normals"].numpy().astype(np.float64)
        n[~hit] = 0.0
        points = np.where(hit[:, None], o + d * np.where(hit, t, 0)[:, None], np.nan)
        cos_inc = np.where(hit, -np.sum(n * d, axis=1), 0.0)
        return RayHits(hit, t, points, n, level, part, cos_inc)

    def intersections(
        self, origins_mm: np.ndarray, directions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """All surface crossings of each ray, for line integrals through bone.

        Args:
            origins_mm: (R, 3) ray origins, mm.
            directions: (R, 3) unit ray directions.

        Returns:
            (ray_id, t_mm, level, part): (K,) arrays over all K crossings, sorted by ray
            then by distance.
        """
        o = check_points(origins_mm, "origins_mm")
        d = check_points(directions, "directions")
        rays = o3d.core.Tensor(np.hstack([o, d]).astype(np.float32))
        ans = self._scene.list_intersections(rays)
        ray_id = ans["ray_ids"].numpy().astype(np.int64)
        t = ans["t_hit"].numpy().astype(np.float64)
        level, part = self._lookup(
            ans["geometry_ids"].numpy().astype(np.int64),
            ans["primitive_ids"].numpy().astype(np.int64),
        )
        order = np.lexsort((t, ray_id))
        return ray_id[order], t[order], level[order], part[order]


def surface_area_mm2(vert: VertebraMesh, part: int | None = None) -> float:
    """Surface area of a vertebra, or of the triangles of one part code, mm^2."""
    v = np.asarray(vert.vertices_mm, dtype=np.float64)
    f = np.asarray(vert.faces, dtype=np.int64)
    if part is not None:
        f = f[_triangle_parts(vert.part, f) == part]
    a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    return float(0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1).sum())


def sample_surface(
    vert: VertebraMesh, n_points: int, seed: int = 0, part: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Area-uniform random samples on a vertebra surface, with part labels.

    Args:
        vert: the vertebra mesh.
        n_points: number of samples.
        seed: RNG seed.
        part: sample only triangles of this part code (None = all).

    Returns:
        (points_mm (n, 3) float64, part (n,) uint8 of the sampled triangle).

    Raises:
        ValueError: if n_points < 1 or the (selected) surface has no area.
    """
    if n_points < 1:
        raise ValueError(f"n_points must be >= 1, got {n_points}")
    v = np.asarray(vert.vertices_mm, dtype=np.float64)
    f = np.asarray(vert.faces, dtype=np.int64)
    if part is not None:
        f = f[_triangle_parts(vert.part, f) == part]
    a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    area = 0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1)
    if not area.sum() > 0:
        what = "mesh" if part is None else f"part {part} of the mesh"
        raise ValueError(f"L{vert.level}: {what} has zero surface area")
    rng = np.random.default_rng(seed)
    tri = rng.choice(len(f), size=n_points, p=area / area.sum())
    r1, r2 = rng.random(n_points), rng.random(n_points)
    s = np.sqrt(r1)
    w = np.stack([1 - s, s * (1 - r2), s * r2], axis=1)
    pts = w[:, :1] * a[tri] + w[:, 1:2] * b[tri] + w[:, 2:] * c[tri]
    return pts, _triangle_parts(vert.part, f)[tri]
