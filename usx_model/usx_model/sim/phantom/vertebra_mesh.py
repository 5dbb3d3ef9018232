"""Watertight, labelled triangle mesh of one procedural vertebra.

The vertebra is an implicit surface: the smooth union of anatomical primitives
(``anatomy.build_primitives``) sampled on a regular grid, meshed with marching cubes
(Lorensen & Cline 1987, Lewiner et al. 2003 topology as in scikit-image), reduced to its
largest connected component and labelled per vertex by the primitive nearest to it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from skimage import measure

from usx_model.base.parts import Part
from usx_model.sim.phantom.anatomy import Primitive, build_primitives
from usx_model.sim.phantom.mesh_ops import largest_component, orient_outward
from usx_model.sim.phantom.sdf import smooth_union
from usx_model.sim.phantom.types import VertebraMesh

#: Field value far from every primitive (positive = outside), larger than any blend.
_FAR_MM = 12.0
#: Amplitude (mm) and wavelengths (mm, along x, y, z) of the faint surface texture.
_TEXTURE_MM = 0.08
_TEXTURE_WAVE_MM = (7.3, 9.1, 10.7)


@dataclass(frozen=True)
class MeshOptions:
    """Meshing settings: grid spacing (mm) trades detail against speed and size."""

    spacing_mm: float = 0.9


def vertebra_mesh(params: dict[str, float], level: int, options: MeshOptions | None = None):
    """Mesh one vertebra in its own frame (body centre at the origin, LPS, mm).

    Args:
        params: morphometry of the level (``morphometry.sample_spine_morphometry``).
        level: 1..5 for L1..L5.
        options: meshing settings.

    Returns:
        ``VertebraMesh`` with outward-facing triangles, per-vertex ``part`` codes,
        the solid's centroid and the body's centroid (both from the voxelised solid).
    """
    if level not in (1, 2, 3, 4, 5):
        raise ValueError(f"expected a lumbar level 1..5, got {level!r}")
    opts = options or MeshOptions()
    if not opts.spacing_mm > 0:
        raise ValueError(f"expected spacing_mm > 0, got {opts.spacing_mm}")
    prims = build_primitives(params)
    field, body_inside, origin = _sample_field(prims, opts.spacing_mm)
    verts_idx, faces, _, _ = measure.marching_cubes(field, level=0.0, allow_degenerate=False)
    verts = origin + verts_idx * opts.spacing_mm
    verts, faces = largest_component(verts, faces.astype(np.int64))
    faces = orient_outward(verts, faces)
    part = label_parts(verts, prims)
    inside = field < 0
    grid_pts = lambda mask: origin + np.argwhere(mask) * opts.spacing_mm  # noqa: E731
    return VertebraMesh(
        level=level,
        vertices_mm=verts,
        faces=faces,
        part=part,
        centroid_mm=grid_pts(inside).mean(axis=0),
        body_centroid_mm=grid_pts(body_inside & inside).mean(axis=0),
    )


def label_parts(points_mm: np.ndarray, prims: list[Primitive]) -> np.ndarray:
    """Part code of the primitive with the smallest distance at each point, (N,) uint8."""
    dist = np.stack([pr.shape.distance(points_mm) for pr in prims], axis=1)
    codes = np.array([int(pr.part) for pr in prims], dtype=np.uint8)
    return codes[np.argmin(dist, axis=1)]


def _sample_field(prims: list[Primitive], spacing: float):
    """Smooth-union field on a grid covering all primitives; also the body's inside mask.

    Each primitive is evaluated only inside its bounding box grown by 1.5 blend radii
    plus two cells, outside which it cannot change the union near the surface
    (smooth_union is the plain minimum where the two fields differ by >= k, and the
    union is within a cell of zero there).
    """
    boxes = [pr.shape.bounds() for pr in prims]
    margin = 1.5 * max(pr.blend_mm for pr in prims) + 3.0 * spacing
    lo = np.min([b[0] for b in boxes], axis=0) - margin
    hi = np.max([b[1] for b in boxes], axis=0) + margin
    shape = np.ceil((hi - lo) / spacing).astype(int) + 1
    field = np.full(shape, _FAR_MM)
    body_inside = np.zeros(shape, dtype=bool)
    for pr, (blo, bhi) in zip(prims, boxes, strict=True):
        m = 1.5 * pr.blend_mm + 2.0 * spacing
        i0 = np.clip(np.floor((blo - m - lo) / spacing).astype(int), 0, shape - 1)
        i1 = np.clip(np.ceil((bhi + m - lo) / spacing).astype(int) + 1, 1, shape)
        axes = [lo[k] + spacing * np.arange(i0[k], i1[k]) for k in range(3)]
        gx, gy, gz = np.meshgrid(*axes, indexing="ij")
        pts = np.stack([gx.ravel(), gy.ravel(), gz.ravel()], axis=1)
        d = np.minimum(pr.shape.distance(pts).reshape(gx.shape), _FAR_MM)
        sl = tuple(slice(i0[k], i1[k]) for k in range(3))
        field[sl] = smooth_union(field[sl], d, pr.blend_mm)
        if pr.part is Part.BODY:
            body_inside[sl] = d < 0
    # Exactly planar patches (flat box faces) give exactly coplanar triangles, which
    # open3d's self-intersection test can flag although they do not touch; a faint
    # surface texture (amplitude _TEXTURE_MM, wavelengths 7-11 mm) removes the planes.
    axes = [lo[k] + spacing * np.arange(shape[k]) for k in range(3)]
    waves = [
        np.sin(2 * np.pi * a / lam + ph)
        for a, lam, ph in zip(axes, _TEXTURE_WAVE_MM, (0.3, 1.1, 2.0), strict=True)
    ]
    field += (
        _TEXTURE_MM * waves[0][:, None, None] * waves[1][None, :, None] * waves[2][None, None, :]
    )
    # Marching cubes needs the surface closed inside the grid: force the border outside.
    field[[0, -1], :, :] = _FAR_MM
    field[:, [0, -1], :] = _FAR_MM
    field[:, :, [0, -1]] = _FAR_MM
    # Grid values at ~0 make marching-cubes vertices coincide with grid nodes, giving
    # sliver triangles that touch their neighbours; keep every value >= 5 % of a cell
    # away from the iso-level (moves the surface by at most that much).
    eps = 0.05 * spacing
    near = np.abs(field) < eps
    field[near] = np.where(field[near] < 0, -eps, eps)
    return field, body_inside, lo
