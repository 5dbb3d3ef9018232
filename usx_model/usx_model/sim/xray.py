"""Lateral X-ray simulation: the paper's 2.5D body points and a DRR with level labels.

(a) :func:`xray_points_25d` (US-X Complete, Sec. 2.3): a lateral radiograph shows each
vertebral body as a silhouette in the sagittal (y-z) plane and loses the left-right
coordinate. The body (part code 1) is projected along x, its silhouette filled, and the
points of the silhouette are placed on the sagittal plane through the body centroid
(x = body_centroid_mm[0]).

(b) :func:`render_lateral_xray`: a digitally reconstructed radiograph of the whole spine
for an explicit :class:`~usx_model.base.xray_geometry.XrayGeometry` (cone beam by
default): per pixel, the bone path length along the ray is summed from the ray's entry
and exit crossings of each vertebra's closed surface, and the transmitted fraction is
``exp(-mu_bone_per_mm * thickness_mm)`` (Beer-Lambert, soft tissue taken as a uniform
background that only scales the image). A per-level label image of the body silhouettes
(0 background, 1..5 for L1..L5) comes with it; ``label_pixels_to_points`` inverts it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from usx_model.base.parts import Part
from usx_model.base.xray_geometry import XrayGeometry
from usx_model.sim._checks import check_positive, check_spine
from usx_model.sim.phantom.types import Spine, VertebraMesh
from usx_model.sim.scene import SpineScene, sample_surface, surface_area_mm2

#: Surface samples per (grid cell)^2 used to splat a silhouette; dense enough that the
#: projected surface leaves no gaps before the closing.
_SAMPLES_PER_CELL = 6.0


def lateral_geometry(
    spine: Spine,
    sid_mm: float = 1100.0,
    sod_mm: float = 750.0,
    pixel_mm: float = 0.5,
    margin_mm: float = 15.0,
    parallel: bool = False,
) -> XrayGeometry:
    """A lateral shot centred on the mean body centroid, detector sized to fit the spine.

    Args:
        spine: the spine to image.
        sid_mm: source-to-detector distance (C-arms: about 1000-1200 mm).
        sod_mm: source-to-object (isocentre) distance, < sid_mm.
        pixel_mm: detector pixel pitch.
        margin_mm: border around the projected spine.
        parallel: parallel beam instead of a cone.
    """
    check_spine(spine)
    for name, val in (("sid_mm", sid_mm), ("sod_mm", sod_mm), ("pixel_mm", pixel_mm)):
        check_positive(val, name)
    if sod_mm >= sid_mm:
        raise ValueError(f"expected sod_mm < sid_mm, got sod_mm={sod_mm}, sid_mm={sid_mm}")
    iso = np.mean([v.body_centroid_mm for v in spine.vertebrae.values()], axis=0)
    source = iso - np.array([sod_mm, 0.0, 0.0])
    det = iso + np.array([sid_mm - sod_mm, 0.0, 0.0])
    probe = XrayGeometry(
        tuple(source), tuple(det), (0.0, -1.0, 0.0), (0.0, 0.0, -1.0), pixel_mm, (1, 1), parallel
    )
    verts = np.vstack([v.vertices_mm for v in spine.vertebrae.values()])
    rc = probe.project(verts)  # extent on a 1x1 detector centred at the middle
    half = np.max(np.abs(rc), axis=0) + margin_mm / pixel_mm
    shape = (int(2 * np.ceil(half[0]) + 1), int(2 * np.ceil(half[1]) + 1))
    return XrayGeometry(
        tuple(source), tuple(det), probe.u_axis, probe.v_axis, pixel_mm, shape, parallel
    )


def _silhouette(points_2d: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Filled (rows, cols) bool mask from fractional (N, 2) (row, col) splat positions."""
    rc = np.rint(points_2d).astype(np.int64)
    ok = (rc[:, 0] >= 0) & (rc[:, 0] < shape[0]) & (rc[:, 1] >= 0) & (rc[:, 1] < shape[1])
    mask = np.zeros(shape, dtype=bool)
    mask[rc[ok, 0], rc[ok, 1]] = True
    # closing bridges sub-pixel gaps between splats; the fill closes the hole that the
    # pedicle junction (not body-labelled) leaves in the projected body surface
    mask = ndimage.binary_closing(mask, structure=np.ones((3, 3)), border_value=0)
    return ndimage.binary_fill_holes(mask)


def _body_samples(vert: VertebraMesh, cell_mm: float) -> np.ndarray:
    """Body-surface samples dense enough for cells of ``cell_mm`` (deterministic)."""
    area = surface_area_mm2(vert, Part.BODY)
    if area <= 0:
        raise ValueError(f"L{vert.level}: no body-labelled (part 1) triangles to project")
    n = int(np.ceil(area / cell_mm**2 * _SAMPLES_PER_CELL))
    pts, _ = sample_surface(vert, n, seed=vert.level, part=Part.BODY)
    return pts


def body_points_25d(
    vert: VertebraMesh, grid_mm: float = 1.0, jitter_seed: int | None = None
) -> np.ndarray:
    """The 2.5D X-ray points of one vertebral body.

    Args:
        vert: the vertebra (part codes must mark the body, code 1).
        grid_mm: spacing of the (y, z) sampling grid.
        jitter_seed: if given, each point moves uniformly inside its grid cell (seeded),
            so repeated draws do not share one lattice; None keeps cell centres.

    Returns:
        (N, 3) float64 points, mm, spine frame, all with x = body_centroid_mm[0].
    """
    check_positive(grid_mm, "grid_mm")
    pts = _body_samples(vert, grid_mm)
    lo = pts[:, 1:].min(axis=0) - 2 * grid_mm
    shape = tuple(int(s) for s in np.ceil((pts[:, 1:].max(axis=0) + 2 * grid_mm - lo) / grid_mm))
    mask = _silhouette((pts[:, 1:] - lo) / grid_mm, shape)
    iy, iz = np.nonzero(mask)
    yz = lo + np.stack([iy, iz], axis=1) * grid_mm
    if jitter_seed is not None:
        rng = np.random.default_rng(jitter_seed)
        yz = yz + rng.uniform(-0.5, 0.5, yz.shape) * grid_mm
    x = np.full((len(yz), 1), float(vert.body_centroid_mm[0]))
    return np.hstack([x, yz])


def xray_points_25d(
    spine: Spine, grid_mm: float = 1.0, jitter_seed: int | None = None
) -> dict[int, np.ndarray]:
    """:func:`body_points_25d` for every level: level -> (N, 3) points, mm."""
    check_spine(spine)
    return {
        lv: body_points_25d(
            spine.vertebrae[lv], grid_mm, None if jitter_seed is None else jitter_seed + lv
        )
        for lv in spine.levels
    }


@dataclass
class XrayImage:
    """A simulated lateral radiograph.

    Attributes:
        image: (rows, cols) uint16 display image, bone bright:
            ``round(65535 * (1 - exp(-mu * thickness)))``.
        thickness_mm: (rows, cols) float32 bone path length per pixel.
        label: (rows, cols) uint8 body silhouettes, 0 background, level 1..5.
        geometry: the shot's geometry.
        mu_bone_per_mm: linear attenuation coefficient used.
    """

    image: np.ndarray
    thickness_mm: np.ndarray
    label: np.ndarray
    geometry: XrayGeometry
    mu_bone_per_mm: float


def _path_lengths(scene: SpineScene, geometry: XrayGeometry) -> np.ndarray:
    """(rows, cols) bone path length: sum of (exit - entry) per vertebra along each ray."""
    rows, cols = np.indices(geometry.shape).reshape(2, -1)
    origins, dirs = geometry.rays(rows, cols)
    ray_id, t, level, _ = scene.intersections(origins, dirs)
    # group crossings by (ray, vertebra): a closed surface alternates entry, exit, ...
    order = np.lexsort((t, level, ray_id))
    ray_id, t, level = ray_id[order], t[order], level[order]
    key = ray_id * 64 + level
    start = np.r_[True, key[1:] != key[:-1]]
    group = np.cumsum(start) - 1
    rank = np.arange(len(t)) - np.flatnonzero(start)[group]
    count = np.bincount(group)[group]
    # a grazing ray may report an odd count; its unmatched last crossing is dropped
    usable = rank < count - (count % 2)
    signed = np.where(rank % 2 == 1, t, -t) * usable
    thick = np.bincount(ray_id, weights=signed, minlength=rows.size)
    return thick.reshape(geometry.shape)


def body_midplane_point_mm(spine: Spine) -> np.ndarray:
    """(3,) a point of the vertebral bodies' mid-sagittal plane, spine frame, mm.

    The mean body centroid: what a CBCT registration gives the X-ray ingestion as the
    plane the lateral projection's body points lie on.
    """
    check_spine(spine)
    return np.mean([v.body_centroid_mm for v in spine.vertebrae.values()], axis=0)


def render_lateral_xray(
    spine: Spine,
    geometry: XrayGeometry,
    mu_bone_per_mm: float = 0.04,
    scene: SpineScene | None = None,
    labels: bool = True,
) -> XrayImage:
    """Render a DRR and the per-level body label image.

    Args:
        spine: the spine (bodies need part code 1 for the labels).
        geometry: the shot (see :func:`usx_model.sim.xray.lateral_geometry`).
        mu_bone_per_mm: bone attenuation (about 0.03-0.05 /mm at 60-70 keV).
        scene: a prebuilt scene of ``spine`` to reuse (optional).
        labels: draw the body label image; False leaves it all zeros (for meshes
            without part codes, e.g. real CT meshes).

    Returns:
        XrayImage.

    Raises:
        ValueError: on a malformed spine, mu <= 0, or (with ``labels``) a vertebra
            without body-labelled triangles.
    """
    check_spine(spine)
    check_positive(mu_bone_per_mm, "mu_bone_per_mm")
    scene = scene or SpineScene(spine)
    thick = _path_lengths(scene, geometry)
    image = np.rint(65535.0 * (1.0 - np.exp(-mu_bone_per_mm * thick))).astype(np.uint16)
    label = np.zeros(geometry.shape, dtype=np.uint8)
    # splat spacing: the detector pixel seen at the object (cone-beam magnification >= 1)
    for lv in spine.levels if labels else ():
        body = _body_samples(spine.vertebrae[lv], 0.5 * geometry.pixel_mm)
        mask = _silhouette(geometry.project(body), geometry.shape)
        label[mask & (label == 0)] = lv
    return XrayImage(image, thick.astype(np.float32), label, geometry, mu_bone_per_mm)
