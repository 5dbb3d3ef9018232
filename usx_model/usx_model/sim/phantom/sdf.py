"""Approximate signed-distance primitives for the procedural vertebra (mm, negative inside).

Each primitive is a small frozen dataclass with ``distance(points)`` for (M, 3) points
and ``bounds()`` giving a conservative axis-aligned box, so the mesher can evaluate it
only where it matters. The distances are exact on the surface (zero level) and close to
Euclidean near it, which is all that marching cubes and the smooth union need.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def smooth_union(a: np.ndarray, b: np.ndarray, k_mm: float) -> np.ndarray:
    """Polynomial smooth minimum of two distance fields with blend radius ``k_mm``.

    Equal to ``min(a, b)`` wherever ``|a - b| >= k_mm``; fillets the crease otherwise.
    """
    if k_mm <= 0:
        return np.minimum(a, b)
    h = np.clip(0.5 + 0.5 * (b - a) / k_mm, 0.0, 1.0)
    return b * (1.0 - h) + a * h - k_mm * h * (1.0 - h)


def _box_distance(q: np.ndarray) -> np.ndarray:
    """Distance to an origin-centred box given ``q = |p| - half_size`` per axis, (M, k)."""
    outside = np.linalg.norm(np.maximum(q, 0.0), axis=1)
    inside = np.minimum(q.max(axis=1), 0.0)
    return outside + inside


@dataclass(frozen=True)
class Body:
    """Vertebral body: superelliptic cylinder with waist, wedge and concave end plates.

    Centred at the origin of the vertebra frame (x left, y posterior, z superior).
    ``wedge_mm`` is anterior minus posterior height; ``concavity_mm`` the central depth
    of each end plate; ``waist`` the relative narrowing at mid-height; the posterior
    wall is indented by ``kidney_mm`` at the midline (the canal side is flat/concave).
    """

    width_mm: float
    depth_mm: float
    height_mm: float
    wedge_mm: float
    concavity_mm: float
    waist: float
    exponent: float = 2.6
    kidney_mm: float = 2.0
    rim_mm: float = 1.2

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        half = np.array(
            [self.width_mm / 2, self.depth_mm / 2, (self.height_mm + abs(self.wedge_mm)) / 2]
        )
        return -half, half

    def distance(self, p: np.ndarray) -> np.ndarray:
        a, b, h = self.width_mm / 2, self.depth_mm / 2, self.height_mm
        x, y, z = p[:, 0], p[:, 1], p[:, 2]
        # Waist: the wall curves inwards between the end-plate rims.
        zn = np.clip(2.0 * z / h, -1.0, 1.0)
        s = 1.0 - self.waist * (1.0 - zn**2)
        xs = np.abs(x) / (a * s)
        # Kidney shape: the posterior wall is pushed anteriorly near the midline.
        y_eff = y + self.kidney_mm * np.clip(1.0 - xs**2, 0.0, 1.0) * (y > 0)
        ys = np.abs(y_eff) / (b * s)
        r = (xs**self.exponent + ys**self.exponent) ** (1.0 / self.exponent)
        d_xy = (r - 1.0) * b * s
        # Wedge: height grows anteriorly (-y) by wedge_mm over the depth.
        half_h = 0.5 * (h - self.wedge_mm * np.clip(y / b, -1.0, 1.0) / 2.0)
        # End plates: concave centre, flat rim.
        half_h = half_h - self.concavity_mm * np.clip(1.0 - r**2, 0.0, 1.0)
        d_z = np.abs(z) - half_h
        q = np.stack([d_xy + self.rim_mm, d_z + self.rim_mm], axis=1)
        return _box_distance(q) - self.rim_mm


@dataclass(frozen=True)
class TaperedCapsule:
    """Segment ``a -> b`` swept by an ellipse with radii tapering from start to end.

    ``radii_start_mm``/``radii_end_mm`` are (horizontal, vertical) radii: horizontal
    is perpendicular to the segment within the plane spanned by it and the x-y plane,
    vertical completes the frame (close to +z for near-horizontal segments).
    """

    a: tuple[float, float, float]
    b: tuple[float, float, float]
    radii_start_mm: tuple[float, float]
    radii_end_mm: tuple[float, float]

    def _frame(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        a, b = np.asarray(self.a), np.asarray(self.b)
        axis = b - a
        length = float(np.linalg.norm(axis))
        u = axis / length
        e1 = np.cross([0.0, 0.0, 1.0], u)
        if np.linalg.norm(e1) < 1e-6:  # vertical segment: any horizontal direction works
            e1 = np.array([1.0, 0.0, 0.0])
        e1 = e1 / np.linalg.norm(e1)
        e2 = np.cross(u, e1)
        return u, e1, e2, length

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        r = max(*self.radii_start_mm, *self.radii_end_mm)
        pts = np.array([self.a, self.b])
        return pts.min(axis=0) - r, pts.max(axis=0) + r

    def distance(self, p: np.ndarray) -> np.ndarray:
        u, e1, e2, length = self._frame()
        d = p - np.asarray(self.a)
        s = d @ u
        t = np.clip(s / length, 0.0, 1.0)
        r0, r1 = np.asarray(self.radii_start_mm), np.asarray(self.radii_end_mm)
        rh = r0[0] + (r1[0] - r0[0]) * t
        rv = r0[1] + (r1[1] - r0[1]) * t
        r_min = np.minimum(rh, rv)
        k = np.sqrt(((s - t * length) / r_min) ** 2 + (d @ e1 / rh) ** 2 + (d @ e2 / rv) ** 2)
        return (k - 1.0) * r_min


@dataclass(frozen=True)
class RoundedBox:
    """Oriented box with rounded edges.

    ``axes`` is a 3x3 rotation whose columns are the box's local axes in the vertebra
    frame; ``half_size_mm`` the half extents along them; ``radius_mm`` the edge rounding.
    """

    centre: tuple[float, float, float]
    axes: tuple[tuple[float, float, float], ...]
    half_size_mm: tuple[float, float, float]
    radius_mm: float

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        ext = np.abs(np.asarray(self.axes)) @ np.asarray(self.half_size_mm)
        c = np.asarray(self.centre)
        return c - ext, c + ext

    def distance(self, p: np.ndarray) -> np.ndarray:
        d = p - np.asarray(self.centre)
        axes = np.asarray(self.axes)
        r = min(self.radius_mm, 0.99 * min(self.half_size_mm))
        # Per-axis arithmetic instead of matrix products and norms: this is the mesher's
        # hot loop, and column-wise operations avoid (M, 3) temporaries.
        outside = np.zeros(len(p))
        inside = np.full(len(p), -np.inf)
        for k in range(3):
            q = np.abs(d @ axes[:, k]) - (self.half_size_mm[k] - r)
            outside += np.maximum(q, 0.0) ** 2
            np.maximum(inside, q, out=inside)
        return np.sqrt(outside) + np.minimum(inside, 0.0) - r


def axes_from(u: np.ndarray, up: np.ndarray) -> tuple[tuple[float, float, float], ...]:
    """Right-handed frame (columns u, v, w) with ``u`` exact and ``w`` closest to ``up``."""
    u = np.asarray(u, dtype=float)
    u = u / np.linalg.norm(u)
    v = np.cross(np.asarray(up, dtype=float), u)
    v = v / np.linalg.norm(v)
    w = np.cross(u, v)
    m = np.stack([u, v, w], axis=1)
    return tuple(tuple(float(x) for x in row) for row in m)
