"""Re-register a lateral X-ray to the US bone points, for a patient who moved after the shot.

The X-ray's geometry in the robot base frame comes from the C-arm's registration at the
time of the shot. If the patient moved since, the vertebral bodies it places sit off the
arches the sweep saw. The sweep's bone points are the posterior surfaces of the posterior
elements (spinous processes, laminae), and in a lateral projection those surfaces form the
posterior outline of the bone: anterior of it the image is bright (bone), posterior of it
dark (soft tissue). The correction is the in-plane motion (two translations in the
detector plane, a rotation about the beam) that puts the projected bone points on that
outline: it maximises the mean intensity gradient toward anterior, sampled at the
projected points, on the image smoothed coarse to fine.

Motion along the beam does not change the projection; the placement's own symmetry plane
of the US points takes care of it. The optimum sits a fraction of a millimetre off for an
X-ray that did not move (the laminae project inside the outline, not on it), so a
correction smaller than ``min_shift_mm`` and ``min_rotation_deg`` is not applied. Units mm,
degrees in reports, base frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.optimize import minimize
from scipy.spatial.transform import Rotation

from usx_model.base.points import check_points, thin_points
from usx_model.base.transforms import make_transform
from usx_model.base.xray_geometry import XrayGeometry

#: smoothing of the image per stage, mm at the detector (coarse to fine)
SMOOTHING_MM = (3.0, 1.5, 0.75)
#: the bone points are thinned to this voxel per stage, mm (a coarse stage needs fewer)
VOXEL_MM = (3.0, 2.0, 1.0)
#: Powell's tolerance per stage (mm and degrees): a coarse stage only has to bring the
#: next one into its basin; the last one's 0.01 lies well under a detector pixel
XTOL = (0.1, 0.05, 0.01)


@dataclass(frozen=True)
class XrayRegistration:
    """The correction and what it changed.

    Attributes:
        T_correction: (4, 4) rigid, base frame: the corrected geometry is
            ``transform_geometry(geometry, T_correction)``.
        shift_mm: (2,) translation along the detector's u and v axes.
        rotation_deg: rotation about the beam through the bone points' centroid.
        score_before, score_after: mean anterior gradient at the projected points
            (image units per mm, finest smoothing).
        applied: whether ``T_correction`` is the found motion (else the identity).
    """

    T_correction: np.ndarray
    shift_mm: np.ndarray
    rotation_deg: float
    score_before: float
    score_after: float
    applied: bool

    def as_dict(self) -> dict:
        return {
            "shift_mm": self.shift_mm.tolist(),
            "rotation_deg": self.rotation_deg,
            "score_before": self.score_before,
            "score_after": self.score_after,
            "applied": self.applied,
        }


@dataclass(frozen=True)
class AnteriorGradients:
    """What the registration samples: the X-ray's intensity gradient toward anterior, one
    image per coarse-to-fine stage (``SMOOTHING_MM``), intensity scaled to [0, 1], per
    pixel. It depends on the image, the geometry's axes and the posterior direction only,
    so one X-ray needs it once, however many sweeps it is registered to.

    Attributes:
        images: one (rows, cols) float64 image per stage.
        axes: (3, 3) rows u, v, normal of the geometry it was made for (checked on use).
    """

    images: tuple[np.ndarray, ...]
    axes: np.ndarray


def _axes(geometry: XrayGeometry) -> np.ndarray:
    return np.array([geometry.u_axis, geometry.v_axis, geometry.normal], dtype=np.float64)


def anterior_gradients(
    image: np.ndarray, geometry: XrayGeometry, posterior: np.ndarray
) -> AnteriorGradients:
    """The stages' gradient images of ``image`` (see :class:`AnteriorGradients`).

    Args:
        image: (rows, cols) X-ray intensity, bone bright (any numeric dtype).
        geometry: the shot's geometry in the base frame, mm.
        posterior: (3,) direction from the spine to the probe side, base frame.

    Raises:
        ValueError: an image of another shape than the geometry's, a posterior direction
            along the beam.
    """
    img = np.asarray(image, dtype=np.float64)
    if img.shape != tuple(geometry.shape):
        raise ValueError(f"expected an image of shape {tuple(geometry.shape)}, got {img.shape}")
    n = geometry.normal
    u, v = np.asarray(geometry.u_axis), np.asarray(geometry.v_axis)
    post = np.asarray(posterior, dtype=np.float64)
    post_in_plane = post - (post @ n) * n
    if np.linalg.norm(post_in_plane) < 0.5 * np.linalg.norm(post):
        raise ValueError("the posterior direction lies along the X-ray beam: not a lateral shot")
    # image direction (d row, d col) of anterior: rows follow v, columns u
    anterior = -np.array([post_in_plane @ v, post_in_plane @ u])
    anterior /= np.linalg.norm(anterior)
    scale = img.max() - img.min()
    img = (img - img.min()) / (scale if scale > 0 else 1.0)
    images = []
    for sigma_mm in SMOOTHING_MM:
        s = sigma_mm / geometry.pixel_mm
        # the gradient toward anterior, as one image: bilinear interpolation is linear, so
        # sampling it equals combining the two sampled derivatives, at half the cost
        grad = anterior[0] * ndimage.gaussian_filter(img, s, order=(1, 0))
        grad += anterior[1] * ndimage.gaussian_filter(img, s, order=(0, 1))
        images.append(grad)
    return AnteriorGradients(tuple(images), _axes(geometry))


class MovedProjection:
    """Where points project once moved by the registration's in-plane correction.

    ``project(x)`` equals ``transform_geometry(geometry, T).project(points).T`` for the
    correction ``T`` of ``x`` = (shift along u mm, shift along v mm, rotation about the
    beam through ``centre`` degrees); see ``register_xray_to_us``. Projecting through the
    moved geometry is projecting the points moved back by ``T``; an in-plane motion keeps
    each point's depth along the beam, so the perspective division is made once here and
    each call is a 2-D rigid motion of the points' (u, v) coordinates.
    """

    def __init__(self, geometry: XrayGeometry, points_mm: np.ndarray, centre: np.ndarray) -> None:
        p = check_points(points_mm, "points_mm")
        axes = _axes(geometry)  # rows u, v, n (u x v = n)
        source = np.asarray(geometry.source_mm, dtype=np.float64)
        det = np.asarray(geometry.detector_centre_mm, dtype=np.float64)
        self._uv = (p - centre) @ axes[:2].T  # (N, 2) about the rotation's centre
        self._centre_uv = (centre - source) @ axes[:2].T
        depth = (p - source) @ axes[2]  # unchanged by the correction
        # the detector's distance over each point's depth (1: parallel beam)
        self._scale = 1.0 if geometry.parallel else ((det - source) @ axes[2] / depth)[:, None]
        rows, cols = geometry.shape
        det_uv = (det - source) @ axes[:2].T
        self._offset = np.array([(cols - 1) / 2, (rows - 1) / 2]) - det_uv / geometry.pixel_mm
        self._pixel_mm = geometry.pixel_mm

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """(2, N) fractional (row, col) of the points for the correction ``x``."""
        c, s = np.cos(np.radians(x[2])), np.sin(np.radians(x[2]))
        # the points moved back: rotation by -x[2] about the beam, shift undone
        back = np.array([[c, -s], [s, c]])  # row vectors: v @ back = R(-angle) v
        uv = (self._uv - x[:2]) @ back + self._centre_uv
        col_row = uv * self._scale / self._pixel_mm + self._offset
        return col_row[:, ::-1].T


def register_xray_to_us(
    image: np.ndarray,
    geometry: XrayGeometry,
    bone_points_mm: np.ndarray,
    posterior: np.ndarray,
    max_shift_mm: float = 15.0,
    max_rotation_deg: float = 8.0,
    min_shift_mm: float = 1.5,
    min_rotation_deg: float = 1.0,
    gradients: AnteriorGradients | None = None,
) -> XrayRegistration:
    """The in-plane correction of ``geometry``; see the module docstring.

    Args:
        image: (rows, cols) X-ray intensity, bone bright (any numeric dtype).
        geometry: the shot's geometry in the base frame, mm.
        bone_points_mm: (N, 3) US bone points, base frame.
        posterior: (3,) direction from the spine to the probe side, base frame.
        max_shift_mm, max_rotation_deg: the search range of each translation and of the
            rotation (a motion beyond it is not undone).
        min_shift_mm, min_rotation_deg: a correction below both is not applied (the
            identity is returned; ``applied`` False).
        gradients: :func:`anterior_gradients` of this image, geometry and posterior, made
            once per X-ray (None: made here).

    Raises:
        ValueError: an image of another shape than the geometry's, too few points, a
            posterior direction along the beam, gradients made for another geometry.
    """
    if gradients is None:
        gradients = anterior_gradients(image, geometry, posterior)
    elif not np.allclose(gradients.axes, _axes(geometry), atol=1e-9):
        raise ValueError("gradients: made for another X-ray geometry")
    bone = check_points(bone_points_mm, "bone_points_mm")
    pts = thin_points(bone, VOXEL_MM[-1])
    if len(pts) < 50:
        raise ValueError(f"expected at least 50 bone points to register the X-ray, got {len(pts)}")
    n = geometry.normal
    u, v = np.asarray(geometry.u_axis), np.asarray(geometry.v_axis)
    centre = pts.mean(axis=0)

    def correction(x: np.ndarray) -> np.ndarray:
        R = Rotation.from_rotvec(np.radians(x[2]) * n).as_matrix()
        return make_transform(R, centre - R @ centre + x[0] * u + x[1] * v)

    def score(x: np.ndarray, grad_anterior: np.ndarray, project: MovedProjection) -> float:
        g = ndimage.map_coordinates(grad_anterior, project(x), order=1)
        return -float(g.mean()) / geometry.pixel_mm

    # The posterior outlines of neighbouring vertebrae look alike: a search wider than
    # half a level (~18 mm) could lock on the next one.
    bounds = [(-max_shift_mm, max_shift_mm)] * 2 + [(-max_rotation_deg, max_rotation_deg)]
    x = np.zeros(3)
    before = after = 0.0
    stages = zip(gradients.images, VOXEL_MM, XTOL, strict=True)
    for k, (grad, voxel_mm, xtol) in enumerate(stages):
        stage_pts = pts if voxel_mm == VOXEL_MM[-1] else thin_points(bone, voxel_mm)
        project = MovedProjection(geometry, stage_pts, centre)
        if k == len(SMOOTHING_MM) - 1:
            before = -score(np.zeros(3), grad, project)
        x = minimize(
            score,
            x,
            args=(grad, project),
            method="Powell",
            bounds=bounds,
            options={"xtol": xtol},
        ).x
        if k == len(SMOOTHING_MM) - 1:
            after = -score(x, grad, project)
    shift = float(np.hypot(x[0], x[1]))
    small = shift < min_shift_mm and abs(x[2]) < min_rotation_deg
    applied = not (small or after <= before)
    T = correction(x) if applied else np.eye(4)
    return XrayRegistration(T, x[:2].copy(), float(x[2]), before, after, applied)
