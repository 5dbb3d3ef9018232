"""Spatial probe calibration (image -> flange, 6 DoF, and the pixel spacing) from frames of
a flat plate: the single-wall method of Prager et al. 1998 ("Rapid calibration for 3-D
freehand ultrasound", Ultrasound Med. Biol. 24(6)).

Every point ``(u, v)`` of the plate's line in frame ``i`` maps to the base frame by
``T_base_ee_i @ T_ee_image @ (sx (u - u0), sy (v - v0), 0, 1)`` and must lie on the plate,
a plane ``n . x = d`` of unknown pose. Eleven unknowns (six of ``T_ee_image``, ``sx``,
``sy``, three of the plane) are fitted by robust non-linear least squares (scipy,
soft-L1 loss) from an initial calibration. Each frame's line is sampled at
``points_per_frame`` points along the fitted line, which carries all it knows (a line
has two degrees of freedom).

What a sweep determines depends on its motions. Prager's analysis: tilts about both
probe axes and turns about the beam separate the parameters; pure translations of a
vertical probe leave most of them free (the line stays level in the image). The
parameters' standard errors from the Jacobian at the solution say what the sweep pinned:
``converged`` is False, with a warning per parameter, when any exceeds its tolerance,
when the fit's residual is too large or when the optimiser did not converge.

Frames: base ``lbr_link_0``, flange ``lbr_link_ee``, image ``us_image`` (x lateral along
columns, y depth along rows, origin at ``origin_px``); mm, degrees in reports.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import least_squares
from scipy.spatial.transform import Rotation

from usx_model.base.transforms import invert_transform, make_transform
from usx_model.tracking.calibration import ImageCalibration, ProbeCalibration

#: parameter names in the order of the state vector
PARAMETERS = (
    "rot_x",
    "rot_y",
    "rot_z",
    "trans_x",
    "trans_y",
    "trans_z",
    "spacing_x",
    "spacing_y",
    "plane_tilt_a",
    "plane_tilt_b",
    "plane_distance",
)
#: lever arm that turns a rotation (rad) or a relative scale into mm at the image's scale
LEVER_MM = 50.0


@dataclass(frozen=True)
class SpatialParams:
    """Settings of the spatial calibration.

    Attributes:
        points_per_frame: samples along each frame's plate line.
        loss_scale_mm: residual size where the soft-L1 loss turns linear.
        min_noise_mm: the smallest point noise assumed for the standard errors (a plate
            line is located to about a tenth of a 0.15 mm pixel at best).
        max_rms_mm: a larger final RMS residual means the model does not fit the data.
        max_std_mm: largest accepted standard error of the translation, mm.
        max_std_deg: largest accepted standard error of the rotation, deg.
        max_std_pct: largest accepted standard error of each pixel spacing, %.
    """

    points_per_frame: int = 16
    loss_scale_mm: float = 0.2
    min_noise_mm: float = 0.02
    max_rms_mm: float = 0.5
    max_std_mm: float = 0.1
    max_std_deg: float = 0.1
    max_std_pct: float = 0.1


@dataclass(frozen=True)
class SpatialResult:
    """The estimate and how well the sweep determined it.

    Attributes:
        calibration: the probe calibration to write (``T_ee_probe`` with the initial
            ``T_probe_image``, fitted spacing; the initial origin and temporal offset).
        T_ee_image: (4, 4) image frame in the flange frame, mm (``T_flange_image``).
        spacing_mm: (sx, sy) mm per pixel.
        plane: (4,) the plate (nx, ny, nz, d) in the base frame, n unit, mm.
        residual_mm: dict rms / median / p95 / max of the point-to-plane distances.
        std: standard error of each parameter group: ``trans_mm`` (3,), ``rot_deg`` (3,),
            ``spacing_pct`` (2,).
        condition: condition number of the Jacobian with every parameter in mm at the
            image's scale (``LEVER_MM``).
        frames, points: how much went in.
        converged: the optimiser converged, the residual is small and every parameter
            is determined within its tolerance.
        warnings: what failed, one line each.
    """

    calibration: ProbeCalibration
    T_ee_image: np.ndarray
    spacing_mm: tuple[float, float]
    plane: np.ndarray
    residual_mm: dict
    std: dict
    condition: float
    frames: int
    points: int
    converged: bool
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        """JSON-ready (the keys ``usx calibrate spatial --json`` writes)."""
        return {
            "T_flange_image": self.T_ee_image.tolist(),
            "pixel_spacing_mm": list(self.spacing_mm),
            "plane_base": self.plane.tolist(),
            "residual_mm": self.residual_mm,
            "std": {k: np.asarray(v).tolist() for k, v in self.std.items()},
            "condition": self.condition,
            "frames": self.frames,
            "points": self.points,
            "converged": self.converged,
            "warnings": list(self.warnings),
        }


def _tangent_basis(n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.array([1.0, 0.0, 0.0]) if abs(n[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    e1 = np.cross(n, a)
    e1 /= np.linalg.norm(e1)
    return e1, np.cross(n, e1)


def _line_samples(lines: list[np.ndarray], k: int) -> tuple[np.ndarray, np.ndarray]:
    """(M, 2) pixel samples and (M,) frame index: ``k`` points evenly along each line's
    inlier span (each line given as its (K, 2) inlier points)."""
    uv, idx = [], []
    for i, pts in enumerate(lines):
        pts = np.asarray(pts, dtype=np.float64)
        a, b = np.polyfit(pts[:, 0], pts[:, 1], 1)
        u = np.linspace(pts[:, 0].min(), pts[:, 0].max(), k)
        uv.append(np.stack([u, a * u + b], axis=1))
        idx.append(np.full(k, i))
    return np.vstack(uv), np.concatenate(idx)


def calibrate_spatial(
    T_base_ee: np.ndarray,
    lines_uv_px: list[np.ndarray],
    initial: ProbeCalibration,
    params: SpatialParams | None = None,
) -> SpatialResult:
    """Fit the calibration to plate lines seen from known flange poses.

    Args:
        T_base_ee: (F, 4, 4) flange pose of each frame, base frame, mm (from still
            frames, so that the clock offset does not matter).
        lines_uv_px: F arrays (K_i >= 2, 2) of the plate line's pixel points (u, v).
        initial: the starting calibration (its origin and ``T_probe_image`` are kept).
        params: settings.

    Raises:
        ValueError: mismatched inputs or fewer than 11 frames.
    """
    p = params or SpatialParams()
    T_base_ee = np.asarray(T_base_ee, dtype=np.float64)
    if T_base_ee.ndim != 3 or T_base_ee.shape[1:] != (4, 4) or len(T_base_ee) != len(lines_uv_px):
        raise ValueError(
            f"expected (F, 4, 4) poses and F lines, got {T_base_ee.shape} and "
            f"{len(lines_uv_px)} lines"
        )
    if len(T_base_ee) < len(PARAMETERS):
        raise ValueError(
            f"expected at least {len(PARAMETERS)} frames with a plate line, got {len(T_base_ee)}"
        )
    uv, frame = _line_samples(lines_uv_px, p.points_per_frame)
    u0, v0 = initial.image.origin_px
    du, dv = uv[:, 0] - u0, uv[:, 1] - v0
    R_be, t_be = T_base_ee[frame, :3, :3], T_base_ee[frame, :3, 3]

    T0 = initial.T_ee_image
    s0 = np.asarray(initial.image.spacing_mm)

    def points_base(x: np.ndarray) -> np.ndarray:
        R = Rotation.from_rotvec(x[:3]).as_matrix() @ T0[:3, :3]
        t = T0[:3, 3] + x[3:6]
        sx, sy = s0 * np.exp(x[6:8])
        local = R[:, 0] * (sx * du)[:, None] + R[:, 1] * (sy * dv)[:, None] + t
        return np.einsum("nij,nj->ni", R_be, local) + t_be

    # the plate from the initial calibration's points: their best plane
    pts0 = points_base(np.zeros(8))
    c0 = pts0.mean(axis=0)
    n0 = np.linalg.svd(pts0 - c0, full_matrices=False)[2][2]
    e1, e2 = _tangent_basis(n0)

    def plane(x: np.ndarray) -> tuple[np.ndarray, float]:
        n = Rotation.from_rotvec(x[8] * e1 + x[9] * e2).apply(n0)
        return n, float(n0 @ c0) + x[10]

    def residual(x: np.ndarray) -> np.ndarray:
        n, d = plane(x)
        return points_base(x) @ n - d

    # every parameter in mm at the image's scale, for the solver and the conditioning
    scale = np.array(
        [1 / LEVER_MM] * 3 + [1.0] * 3 + [1 / LEVER_MM] * 2 + [1 / LEVER_MM] * 2 + [1.0]
    )
    sol = least_squares(
        residual,
        np.zeros(11),
        x_scale=scale,
        loss="soft_l1",
        f_scale=p.loss_scale_mm,
        max_nfev=200,
    )
    x = sol.x
    r = residual(x)
    J = sol.jac
    # Standard errors: sigma^2 (J^T J)^-1. sigma from the residuals, but at least the
    # line's localisation noise (a clean simulation would otherwise call anything
    # determined), inflated because the samples of one line carry two independent
    # numbers, not points_per_frame. A direction J does not see gets an unbounded error.
    dof = max(1, len(r) - len(x))
    sigma2 = max(float(r @ r) / dof, p.min_noise_mm**2) * (p.points_per_frame / 2.0)
    Js = J * scale[None, :]
    lam, V = np.linalg.eigh(Js.T @ Js)
    condition = float(np.sqrt(lam[-1] / max(lam[0], 1e-300)))
    lam = np.maximum(lam, 1e-18 * lam[-1])
    cov = (V / lam) @ V.T * sigma2 * np.outer(scale, scale)
    std_x = np.sqrt(np.clip(np.diag(cov), 0, None))
    std = {
        "rot_deg": np.degrees(std_x[:3]),
        "trans_mm": std_x[3:6],
        "spacing_pct": 100.0 * std_x[6:8],
    }

    R = Rotation.from_rotvec(x[:3]).as_matrix() @ T0[:3, :3]
    T_ee_image = make_transform(R, T0[:3, 3] + x[3:6])
    spacing = tuple(float(s) for s in s0 * np.exp(x[6:8]))
    n, d = plane(x)
    calibration = ProbeCalibration(
        ImageCalibration(spacing, initial.image.origin_px),
        T_ee_image @ invert_transform(initial.T_probe_image),
        initial.T_probe_image,
        initial.temporal_offset_ms,
    )
    a = np.abs(r)
    residual_mm = {
        "rms": float(np.sqrt(np.mean(r**2))),
        "median": float(np.median(a)),
        "p95": float(np.percentile(a, 95)),
        "max": float(a.max()),
    }
    warnings = []
    if not sol.success:
        warnings.append(f"the optimiser stopped without converging: {sol.message}")
    if residual_mm["rms"] > p.max_rms_mm:
        warnings.append(
            f"RMS residual {residual_mm['rms']:.2f} mm > {p.max_rms_mm} mm: the lines do not "
            "fit one plane (wrong target, a moving plate, frames of another motion)"
        )
    limits = (
        ("rot_deg", p.max_std_deg, "deg"),
        ("trans_mm", p.max_std_mm, "mm"),
        ("spacing_pct", p.max_std_pct, "%"),
    )
    for key, limit, unit in limits:
        for axis, value in zip("xyz", std[key], strict=False):
            if not value <= limit:
                warnings.append(
                    f"{key.split('_')[0]} {axis} is not determined by this sweep: standard "
                    f"error {value:.3g} {unit} > {limit} {unit} (add tilts about both probe "
                    "axes and turns about the beam)"
                )
    return SpatialResult(
        calibration,
        T_ee_image,
        spacing,
        np.r_[n, d],
        residual_mm,
        std,
        condition,
        len(T_base_ee),
        len(r),
        not warnings,
        warnings,
    )
