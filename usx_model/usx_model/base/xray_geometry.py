"""Geometry of a lateral X-ray (C-arm) shot: source, flat detector, projection and inverse.

Cone-beam by default: every pixel is seen along the line from the point source to the
pixel centre. ``parallel=True`` gives a parallel beam along the detector normal (the
source is then only used for its direction).

Detector pixel (row, col) centre, spine frame, mm::

    p = detector_centre_mm + (col - (cols - 1) / 2) * pixel_mm * u_axis
                           + (row - (rows - 1) / 2) * pixel_mm * v_axis

For the default lateral shot (``usx_model.sim.xray.lateral_geometry``) the source lies on
the patient's right (-x), the detector on the left (+x), ``u_axis = -y`` (columns run
anteriorly) and ``v_axis = -z`` (rows run inferiorly, superior at the top), so
``u x v = +x`` points from source to detector.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from usx_model.base.points import check_points


@dataclass(frozen=True)
class XrayGeometry:
    """A point source and a flat detector, spine frame, mm.

    Attributes:
        source_mm: (3,) focal spot.
        detector_centre_mm: (3,) centre of the detector.
        u_axis: (3,) unit vector of increasing column.
        v_axis: (3,) unit vector of increasing row.
        pixel_mm: detector pixel pitch.
        shape: (rows, cols).
        parallel: parallel beam along ``u x v`` instead of a cone from the source.
    """

    source_mm: tuple[float, float, float]
    detector_centre_mm: tuple[float, float, float]
    u_axis: tuple[float, float, float]
    v_axis: tuple[float, float, float]
    pixel_mm: float
    shape: tuple[int, int]
    parallel: bool = False

    @property
    def normal(self) -> np.ndarray:
        """(3,) unit detector normal ``u x v`` (source -> detector)."""
        n = np.cross(self.u_axis, self.v_axis)
        return n / np.linalg.norm(n)

    @property
    def sid_mm(self) -> float:
        """Source-to-detector distance (along the normal)."""
        return float(np.dot(np.subtract(self.detector_centre_mm, self.source_mm), self.normal))

    @property
    def origin_mm(self) -> np.ndarray:
        """(3,) centre of pixel (row 0, col 0), the image origin, spine frame."""
        return self.pixel_centres(np.zeros(1), np.zeros(1))[0]

    def magnification(self, x_mm: float) -> float:
        """Detector size / object size for an object on the plane at lateral ``x_mm``."""
        if self.parallel:
            return 1.0
        s = np.asarray(self.source_mm, dtype=np.float64)
        return self.sid_mm / float(np.dot(np.array([x_mm, s[1], s[2]]) - s, self.normal))

    def pixel_centres(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """(N, 3) positions of pixel centres given (N,) rows and cols (may be fractional)."""
        r0, c0 = (self.shape[0] - 1) / 2, (self.shape[1] - 1) / 2
        rows = np.asarray(rows, dtype=np.float64)[:, None]
        cols = np.asarray(cols, dtype=np.float64)[:, None]
        return (
            np.asarray(self.detector_centre_mm)
            + (cols - c0) * self.pixel_mm * np.asarray(self.u_axis)
            + (rows - r0) * self.pixel_mm * np.asarray(self.v_axis)
        )

    def rays(self, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Origins (N, 3) and unit directions (N, 3) of the rays reaching those pixels."""
        pix = self.pixel_centres(rows, cols)
        if self.parallel:
            back = np.dot(pix - np.asarray(self.source_mm), self.normal)[:, None]
            return pix - back * self.normal, np.broadcast_to(self.normal, pix.shape).copy()
        d = pix - np.asarray(self.source_mm)
        d /= np.linalg.norm(d, axis=1, keepdims=True)
        return np.broadcast_to(np.asarray(self.source_mm, float), pix.shape).copy(), d

    def project(self, points_mm: np.ndarray) -> np.ndarray:
        """(N, 2) fractional (row, col) where (N, 3) points project on the detector."""
        p = check_points(points_mm, "points_mm")
        s = np.asarray(self.source_mm, dtype=np.float64)
        n, c = self.normal, np.asarray(self.detector_centre_mm, dtype=np.float64)
        if self.parallel:
            on_det = p + (np.dot(c - p, n))[:, None] * n
        else:
            t = np.dot(c - s, n) / np.dot(p - s, n)
            on_det = s + t[:, None] * (p - s)
        rel = on_det - c
        col = rel @ np.asarray(self.u_axis) / self.pixel_mm + (self.shape[1] - 1) / 2
        row = rel @ np.asarray(self.v_axis) / self.pixel_mm + (self.shape[0] - 1) / 2
        return np.stack([row, col], axis=1)


def label_pixels_to_points(
    label: np.ndarray, geometry: XrayGeometry, level: int, x_mm: float
) -> np.ndarray:
    """3D points of one level's label pixels, placed on the sagittal plane ``x = x_mm``.

    This is the X-ray ingestion inverse: each labelled pixel's ray (source -> pixel
    centre) is cut with the plane at the lateral placement ``x_mm`` (e.g. the lateral
    midpoint of the vertebra from US or registration).

    Args:
        label: (rows, cols) integer label image (0 background, 1..5 = L1..L5).
        geometry: the shot's geometry; ``label.shape`` must equal ``geometry.shape``.
        level: which label to convert.
        x_mm: lateral placement, mm, spine frame.

    Returns:
        (N, 3) float64 points, mm, spine frame (N = number of pixels with that label).
    """
    label = np.asarray(label)
    if label.shape != tuple(geometry.shape):
        raise ValueError(f"expected a label image of shape {geometry.shape}, got {label.shape}")
    if not np.isfinite(x_mm):
        raise ValueError(f"x_mm must be finite, got {x_mm}")
    rows, cols = np.nonzero(label == level)
    origins, dirs = geometry.rays(rows, cols)
    if abs(geometry.normal[0]) < 1e-9:
        raise ValueError("rays are parallel to the sagittal plane; not a lateral geometry")
    t = (x_mm - origins[:, 0]) / dirs[:, 0]
    return origins + t[:, None] * dirs


def transform_geometry(geometry: XrayGeometry, T_new_old: np.ndarray) -> XrayGeometry:
    """The same shot expressed in another frame: points by T, axes by its rotation.

    Args:
        geometry: geometry in frame ``old``.
        T_new_old: (4, 4) rigid transform of ``old`` in ``new`` (mm).
    """
    T = np.asarray(T_new_old, dtype=np.float64)
    if T.shape != (4, 4) or not np.isfinite(T).all():
        raise ValueError(f"expected a finite (4, 4) transform, got shape {T.shape}")
    R, t = T[:3, :3], T[:3, 3]

    def tup(v: np.ndarray) -> tuple[float, float, float]:
        return tuple(float(x) for x in v)

    return XrayGeometry(
        source_mm=tup(R @ np.asarray(geometry.source_mm) + t),
        detector_centre_mm=tup(R @ np.asarray(geometry.detector_centre_mm) + t),
        u_axis=tup(R @ np.asarray(geometry.u_axis)),
        v_axis=tup(R @ np.asarray(geometry.v_axis)),
        pixel_mm=geometry.pixel_mm,
        shape=tuple(geometry.shape),
        parallel=geometry.parallel,
    )
