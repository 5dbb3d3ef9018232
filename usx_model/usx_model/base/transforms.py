"""Small helpers for 4x4 homogeneous transforms ``T_parent_child`` (translations in mm).

Quaternions are (x, y, z, w), the order of ROS messages and scipy.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation


def validate_transform(T: np.ndarray, name: str = "T", atol: float = 1e-6) -> np.ndarray:
    """Check that ``T`` is one (4, 4) finite rigid transform; return it as float64.

    Raises:
        ValueError: wrong shape, non-finite entries, bottom row not (0, 0, 0, 1), or a
            rotation block that is not orthonormal with determinant +1 (within ``atol``).
    """
    T = np.asarray(T, dtype=np.float64)
    if T.shape != (4, 4):
        raise ValueError(f"expected {name} as a (4, 4) homogeneous transform, got {T.shape}")
    if not np.all(np.isfinite(T)):
        raise ValueError(f"{name} has non-finite entries")
    if not np.allclose(T[3], [0.0, 0.0, 0.0, 1.0], atol=atol):
        raise ValueError(f"{name} bottom row must be (0, 0, 0, 1), got {T[3].tolist()}")
    R = T[:3, :3]
    if not np.allclose(R @ R.T, np.eye(3), atol=atol) or np.linalg.det(R) < 0:
        raise ValueError(f"{name} rotation block is not a proper rotation (orthonormal, det +1)")
    return T


def make_transform(rotation: np.ndarray, translation_mm: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotations and (..., 3) translations -> (..., 4, 4) transforms."""
    rotation = np.asarray(rotation, dtype=np.float64)
    translation_mm = np.asarray(translation_mm, dtype=np.float64)
    shape = np.broadcast_shapes(rotation.shape[:-2], translation_mm.shape[:-1])
    T = np.zeros((*shape, 4, 4))
    T[..., :3, :3] = rotation
    T[..., :3, 3] = translation_mm
    T[..., 3, 3] = 1.0
    return T


def transform_from_xyz_rpy(xyz_mm, rpy_deg) -> np.ndarray:
    """URDF-style origin -> (4, 4) transform.

    Args:
        xyz_mm: (3,) translation, mm.
        rpy_deg: (3,) roll, pitch, yaw in degrees about the *fixed* parent axes x, y, z
            (URDF convention: R = Rz(yaw) @ Ry(pitch) @ Rx(roll)).
    """
    xyz_mm = np.asarray(xyz_mm, dtype=np.float64)
    rpy_deg = np.asarray(rpy_deg, dtype=np.float64)
    if xyz_mm.shape != (3,) or rpy_deg.shape != (3,):
        raise ValueError(
            f"expected xyz_mm and rpy_deg of shape (3,), got {xyz_mm.shape} and {rpy_deg.shape}"
        )
    # scipy's lower-case "xyz" is extrinsic (fixed axes), exactly URDF's rpy
    R = Rotation.from_euler("xyz", rpy_deg, degrees=True).as_matrix()
    return make_transform(R, xyz_mm)


def transform_from_pose(translation_mm: np.ndarray, quat_xyzw: np.ndarray) -> np.ndarray:
    """(..., 3) translations and (..., 4) unit quaternions (x, y, z, w) -> (..., 4, 4)."""
    quat_xyzw = np.asarray(quat_xyzw, dtype=np.float64)
    R = Rotation.from_quat(quat_xyzw.reshape(-1, 4)).as_matrix()
    return make_transform(R.reshape(*quat_xyzw.shape[:-1], 3, 3), translation_mm)


def pose_from_transform(T: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(..., 4, 4) transforms -> ((..., 3) translations, (..., 4) quaternions x, y, z, w)."""
    T = np.asarray(T, dtype=np.float64)
    quat = Rotation.from_matrix(T[..., :3, :3].reshape(-1, 3, 3)).as_quat()
    return T[..., :3, 3].copy(), quat.reshape(*T.shape[:-2], 4)


def invert_transform(T: np.ndarray) -> np.ndarray:
    """Inverse of (..., 4, 4) rigid transforms, using R^T rather than a general inverse."""
    T = np.asarray(T, dtype=np.float64)
    Rt = np.swapaxes(T[..., :3, :3], -1, -2)
    return make_transform(Rt, -(Rt @ T[..., :3, 3:4])[..., 0])


def apply_transform(T: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map (N, 3) points by one (4, 4) transform (rotation + translation)."""
    points = np.asarray(points)
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f"expected (N, 3) points, got {points.shape}")
    return points @ T[:3, :3].T + T[:3, 3]


def perturbation(
    rng: np.random.Generator, centre_mm: np.ndarray, rot_deg: float, trans_mm: float
) -> np.ndarray:
    """(4, 4) rotation of exactly ``rot_deg`` about a random axis through ``centre_mm``,
    then a translation of exactly ``trans_mm`` in a random direction (both uniform on the
    sphere)."""
    axis, direc = rng.normal(size=3), rng.normal(size=3)
    R = Rotation.from_rotvec(np.radians(rot_deg) * axis / np.linalg.norm(axis)).as_matrix()
    centre_mm = np.asarray(centre_mm, dtype=np.float64)
    t = centre_mm - R @ centre_mm + trans_mm * direc / np.linalg.norm(direc)
    return make_transform(R, t)
