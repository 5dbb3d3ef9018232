"""X-ray silhouette consistency of a completed vertebra (our post-process of the network).

A lateral X-ray shows the vertebral body's silhouette exactly: every body surface point
projects, along the beam, inside it. The network's prediction is blurred by about a
millimetre everywhere, so body points near the anterior wall and the endplate rims stick
out of the silhouette. :func:`snap_to_silhouette` moves each such point, within the
plane of the X-ray, onto the nearest silhouette pixel; its coordinate along the beam,
which the X-ray does not see, is kept.

Only points a few millimetres outside are moved (farther ones belong to other
structures), and none beside the silhouette's posterior edge: the pedicles and the
articular processes leave the body there and project outside it by nature.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from usx_model.base.points import check_points, nearest_neighbours
from usx_model.ingest.xray_points import obb_axes

#: Largest in-plane distance (mm) outside the silhouette that a point is moved from.
MAX_SNAP_MM = 3.0
#: Band (mm) in front of the silhouette's posterior edge where nothing is moved.
POSTERIOR_MARGIN_MM = 6.0
#: Raster pixel (mm) of the silhouette.
GRID_MM = 0.5
#: Largest spread (mm, std) of the X-ray points along their plane normal.
PLANE_TOL_MM = 0.5


@dataclass(frozen=True)
class SilhouettePlane:
    """The X-ray body points of one vertebra and the plane they lie on.

    Attributes:
        points_mm: (M, 3) the X-ray points, mm.
        origin_mm: (3,) their centroid, mm.
        normal: (3,) unit plane normal, the beam direction (its sign is arbitrary).
        spread_mm: std (mm) of the points along ``normal``: 0 for a plane.
    """

    points_mm: np.ndarray
    origin_mm: np.ndarray
    normal: np.ndarray
    spread_mm: float

    @property
    def is_planar(self) -> bool:
        """Whether the points lie on one plane, within :data:`PLANE_TOL_MM`."""
        return self.spread_mm <= PLANE_TOL_MM

    def axes(self, posterior_dir: np.ndarray) -> np.ndarray:
        """Rows (beam, posterior, third) (3, 3): a right-handed frame of the plane.

        Args:
            posterior_dir: (3,) the patient's posterior direction; its in-plane part
                becomes the second axis.

        Raises:
            ValueError: a posterior direction along the plane normal.
        """
        post = np.asarray(posterior_dir, dtype=np.float64).reshape(3)
        post = post - (post @ self.normal) * self.normal
        if np.linalg.norm(post) < 1e-6:
            raise ValueError("posterior_dir: lies along the X-ray beam; expected an in-plane part")
        post /= np.linalg.norm(post)
        return np.stack([self.normal, post, np.cross(self.normal, post)])


def silhouette_plane(xray_points_mm: np.ndarray) -> SilhouettePlane:
    """Fit the plane of (M, 3) X-ray points (mm): the normal is their least-variance axis.

    Raises:
        ValueError: bad shape, fewer than 4 points, NaN/Inf.
    """
    x = check_points(xray_points_mm, "xray_points_mm", 4)
    axes, origin = obb_axes(x)
    spread = float(np.std((x - origin) @ axes[2], ddof=1))
    return SilhouettePlane(x, origin, axes[2], spread)


def snap_to_silhouette(
    points_mm: np.ndarray,
    plane: SilhouettePlane,
    posterior_dir: np.ndarray,
    max_snap_mm: float = MAX_SNAP_MM,
    posterior_margin_mm: float = POSTERIOR_MARGIN_MM,
) -> np.ndarray:
    """Move points just outside the X-ray body silhouette onto it, within the X-ray plane.

    Args:
        points_mm: (N, 3) completed vertebra, mm, any frame.
        plane: :func:`silhouette_plane` of that vertebra's X-ray body points (the filled
            silhouette placed on a plane, as ``simulate.xray`` and ``ingest.xray_points``
            make them), same frame.
        posterior_dir: (3,) posterior direction in that frame.
        max_snap_mm: points farther than this outside the silhouette stay.
        posterior_margin_mm: points whose posterior coordinate is within this of the
            silhouette's posterior edge (or behind it) stay.

    Returns:
        (N, 3) float64 points; moved ones keep their coordinate along the beam.

    Raises:
        ValueError: bad ``points_mm``; X-ray points off a plane (spread above
            :data:`PLANE_TOL_MM`); a posterior direction along the beam.
    """
    pts = check_points(points_mm, "points_mm", 1)
    if not plane.is_planar:
        raise ValueError(
            f"xray_points_mm: expected points on a plane, got a spread of {plane.spread_mm:.2f} "
            f"mm along its normal (tolerance {PLANE_TOL_MM} mm)"
        )
    origin, axes = plane.origin_mm, plane.axes(posterior_dir)
    xr2 = (plane.points_mm - origin) @ axes[1:].T
    p3 = (pts - origin) @ axes.T
    # Close the sampled silhouette over its point spacing, then fill it. (Open3D's exact
    # tree, the plane's points at height 0: the same distances as a 2-D tree, faster.)
    flat = np.c_[xr2, np.zeros(len(xr2))]
    spacing = float(np.median(nearest_neighbours(flat, flat, 2)[0][:, 1]))
    close_px = max(1, int(np.ceil(1.5 * spacing / GRID_MM)))
    pad = close_px + int(np.ceil(max_snap_mm / GRID_MM)) + 2
    lo = xr2.min(axis=0) - pad * GRID_MM
    shape = tuple(int(s) for s in np.ceil((xr2.max(axis=0) - lo) / GRID_MM) + pad + 1)
    mask = np.zeros(shape, dtype=bool)
    ij = np.rint((xr2 - lo) / GRID_MM).astype(np.int64)
    mask[ij[:, 0], ij[:, 1]] = True
    disc = ndimage.generate_binary_structure(2, 1)
    mask = ndimage.binary_closing(mask, structure=disc, iterations=close_px)
    mask = ndimage.binary_fill_holes(mask)
    dist_px, nearest = ndimage.distance_transform_edt(~mask, return_indices=True)

    q = np.rint((p3[:, 1:] - lo) / GRID_MM).astype(np.int64)
    inside = np.all((q >= 0) & (q < np.array(shape)), axis=1)
    out = p3.copy()
    idx = np.nonzero(inside)[0]
    a, b = q[idx, 0], q[idx, 1]
    d_mm = dist_px[a, b] * GRID_MM
    post_edge = xr2[:, 0].max() - posterior_margin_mm
    move = (d_mm > 0) & (d_mm <= max_snap_mm) & (p3[idx, 1] < post_edge)
    idx, a, b = idx[move], a[move], b[move]
    out[idx, 1] = lo[0] + nearest[0, a, b] * GRID_MM
    out[idx, 2] = lo[1] + nearest[1, a, b] * GRID_MM
    return out @ axes + origin
