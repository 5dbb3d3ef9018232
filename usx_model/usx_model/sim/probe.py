"""Ultrasound probe model, image geometry and robotic sweep poses.

Probe frame (``us_probe``), mm: origin at the centre of the probe face, +z along the
beam (depth), +x lateral (image columns), +y elevation (= z x x). The image frame is
the probe frame seen in 2D: column ``c`` lies at lateral ``x = (c - (cols - 1) / 2) *
pixel_mm`` and row ``r`` at depth ``z = (r + 0.5) * pixel_mm`` (row 0 touches the face).

A linear probe fires parallel scanlines over ``width_mm``. A curvilinear probe fires
them from a virtual apex ``radius_mm`` behind the face, spread over ``fan_angle_deg``;
its pixels are scan-converted to the nearest scanline.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

from usx_model.sim._checks import check_positive, check_spine
from usx_model.sim.phantom.types import Spine
from usx_model.sim.us_partial import probe_centre_mm


class ProbeKind(enum.StrEnum):
    """Transducer geometry."""

    LINEAR = "linear"
    CURVILINEAR = "curvilinear"


@dataclass(frozen=True)
class ProbeModel:
    """A 2D probe and its B-mode image geometry.

    Attributes:
        kind: linear or curvilinear.
        shape: (rows, cols) of the image.
        pixel_mm: square pixel size; depth shown = rows * pixel_mm.
        width_mm: aperture of a linear probe (lateral extent of its scanlines).
        radius_mm: radius of a curvilinear face.
        fan_angle_deg: opening of a curvilinear fan.
        n_scanlines: scanlines per frame (None = one per column).
    """

    kind: ProbeKind = ProbeKind.LINEAR
    shape: tuple[int, int] = (512, 512)
    pixel_mm: float = 0.15
    width_mm: float = 60.0
    radius_mm: float = 50.0
    fan_angle_deg: float = 60.0
    n_scanlines: int | None = None

    @property
    def depth_mm(self) -> float:
        return self.shape[0] * self.pixel_mm

    def validate(self) -> None:
        """Raise ValueError on out-of-range parameters."""
        if len(self.shape) != 2 or min(self.shape) < 2:
            raise ValueError(f"shape must be (rows, cols) >= 2, got {self.shape}")
        for name in ("pixel_mm", "width_mm", "radius_mm"):
            check_positive(getattr(self, name), name)
        if not 0 < self.fan_angle_deg < 180:
            raise ValueError(f"fan_angle_deg must lie in (0, 180), got {self.fan_angle_deg}")
        if self.n_scanlines is not None and self.n_scanlines < 2:
            raise ValueError(f"n_scanlines must be >= 2, got {self.n_scanlines}")
        ProbeKind(self.kind)

    def scanlines(self) -> tuple[np.ndarray, np.ndarray]:
        """Origins (S, 3) and unit directions (S, 3) of the scanlines, probe frame, mm."""
        n = self.n_scanlines or self.shape[1]
        if self.kind == ProbeKind.LINEAR:
            x = np.linspace(-self.width_mm / 2, self.width_mm / 2, n)
            o = np.stack([x, np.zeros(n), np.zeros(n)], axis=1)
            return o, np.tile([0.0, 0.0, 1.0], (n, 1))
        theta = np.deg2rad(np.linspace(-self.fan_angle_deg / 2, self.fan_angle_deg / 2, n))
        d = np.stack([np.sin(theta), np.zeros(n), np.cos(theta)], axis=1)
        apex = np.array([0.0, 0.0, -self.radius_mm])
        return apex + self.radius_mm * d, d

    def pixel_map(self) -> tuple[np.ndarray, np.ndarray]:
        """Scan conversion: per pixel, its scanline index (-1 outside) and range along it.

        Returns:
            (line (rows, cols) int32, range_mm (rows, cols) float32): the range is the
            distance from the scanline origin on the face to the pixel centre.
        """
        rows, cols = self.shape
        n = self.n_scanlines or cols
        x = (np.arange(cols) - (cols - 1) / 2) * self.pixel_mm
        z = (np.arange(rows) + 0.5) * self.pixel_mm
        X, Z = np.meshgrid(x, z)
        if self.kind == ProbeKind.LINEAR:
            frac = (X + self.width_mm / 2) / self.width_mm * (n - 1)
            rng = Z
            half_px = 0.5 * self.width_mm / (n - 1)
            inside = np.abs(X) <= self.width_mm / 2 + half_px
        else:
            rho = np.hypot(X, Z + self.radius_mm)
            theta = np.arctan2(X, Z + self.radius_mm)
            half = np.deg2rad(self.fan_angle_deg) / 2
            frac = (theta + half) / (2 * half) * (n - 1)
            rng = rho - self.radius_mm
            inside = (np.abs(theta) <= half + half / (n - 1)) & (rng >= 0)
        line = np.where(inside, np.clip(np.rint(frac), 0, n - 1), -1).astype(np.int32)
        return line, rng.astype(np.float32)


#: Rotation of the probe frame in the spine frame for a transverse view from the back:
#: probe x = spine +x (left), beam z = spine -y (anterior), elevation y = spine +z.
R_SPINE_PROBE_TRANSVERSE = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])


def sweep_poses(
    spine: Spine,
    n_frames: int,
    standoff_mm: float = 20.0,
    margin_mm: float = 10.0,
) -> np.ndarray:
    """A cranio-caudal transverse sweep over the spinous processes.

    The probe looks along -y (anteriorly) with its lateral axis along +x; its face centre
    follows the spinous-process line (x and the face height interpolated between levels)
    from ``margin_mm`` above the top level's spinous process to ``margin_mm`` below the
    bottom one, ``standoff_mm`` posterior to each vertebra's most posterior point.

    Args:
        spine: the spine.
        n_frames: number of poses (>= 1).
        standoff_mm: soft tissue between probe face and the spinous tips.
        margin_mm: overshoot beyond the first and last spinous process, along z.

    Returns:
        (n_frames, 4, 4) float64 ``T_spine_probe``, ordered superior to inferior.
    """
    check_spine(spine)
    if n_frames < 1:
        raise ValueError(f"n_frames must be >= 1, got {n_frames}")
    check_positive(standoff_mm, "standoff_mm")
    xz = np.array([probe_centre_mm(spine.vertebrae[lv]) for lv in spine.levels])
    y_top = np.array([np.max(spine.vertebrae[lv].vertices_mm[:, 1]) for lv in spine.levels])
    order = np.argsort(xz[:, 1])
    zs, xs, ys = xz[order, 1], xz[order, 0], y_top[order] + standoff_mm
    z = np.linspace(zs[-1] + margin_mm, zs[0] - margin_mm, n_frames)
    T = np.tile(np.eye(4), (n_frames, 1, 1))
    T[:, :3, :3] = R_SPINE_PROBE_TRANSVERSE
    T[:, 0, 3] = np.interp(z, zs, xs)
    T[:, 1, 3] = np.interp(z, zs, ys)
    T[:, 2, 3] = z
    return T
