"""CBCT ingestion: a NIfTI file or a DICOM series -> volume in LPS mm -> bone surface points.

Frames: :class:`CbctVolume` carries ``T_lps_voxel``, the (4, 4) map from voxel indices
(i, j, k) to LPS mm. NIfTI affines map to RAS, so LPS = diag(-1, -1, 1) . RAS; DICOM
patient coordinates are LPS already. Nothing from the file headers besides geometry
and intensities is kept (no patient identifiers reach the returned objects).

The bone surface is the marching-cubes iso-surface at an HU threshold (or label > 0 for
a label volume). With ``posterior_only`` only the part an ultrasound probe on the back can
see is kept: first hits of parallel rays cast from posterior (a few tilts, like a probe
rocking), on surfaces that face them; this removes the canal walls and vertebral bodies
that US never sees, so CBCT <-> US ICP does not slide onto them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import nibabel as nib
import numpy as np
import open3d as o3d
import pydicom
from scipy import ndimage
from skimage import measure

from usx_model.base.transforms import apply_transform

_RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


@dataclass
class CbctVolume:
    """A CBCT (or label) volume.

    Attributes:
        data: (I, J, K) float32 intensities (HU after rescale) or labels.
        T_lps_voxel: (4, 4) voxel index (i, j, k, 1) -> LPS mm.
        is_label: True for a label volume (bone = label > 0).
    """

    data: np.ndarray
    T_lps_voxel: np.ndarray
    is_label: bool = False

    @property
    def spacing_mm(self) -> np.ndarray:
        """(3,) voxel size along i, j, k."""
        return np.linalg.norm(self.T_lps_voxel[:3, :3], axis=0)


@dataclass
class BoneSurface:
    """Bone surface samples: (N, 3) ``points_mm`` and outward unit ``normals``, LPS mm."""

    points_mm: np.ndarray
    normals: np.ndarray


def read_cbct_nifti(path: str, is_label: bool = False) -> CbctVolume:
    """Read a 3D NIfTI volume; its RAS affine becomes an LPS ``T_lps_voxel``.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a 3D volume, or a singular affine.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"CBCT NIfTI not found: {path}")
    img = nib.load(path)
    data = np.asarray(img.get_fdata(dtype=np.float32))
    if data.ndim != 3:
        raise ValueError(f"expected a 3D volume, got shape {data.shape} in {path}")
    T = _RAS_TO_LPS @ np.asarray(img.affine, dtype=np.float64)
    if abs(np.linalg.det(T[:3, :3])) < 1e-9:
        raise ValueError(f"singular voxel-to-world affine in {path}")
    return CbctVolume(data, T, is_label)


_SERIES_TAGS = ("ImageOrientationPatient", "ImagePositionPatient", "PixelSpacing")


def read_cbct_dicom_series(files: list[str] | str, is_label: bool = False) -> CbctVolume:
    """Read a DICOM series (a list of files or a directory of them) into one volume.

    Slices are sorted by ImagePositionPatient along the slice normal
    (row cosine x column cosine); the slice spacing is the step between sorted
    positions, which must be uniform. Voxel (i, j, k) is (column, row, slice).

    Raises:
        FileNotFoundError: missing directory/file.
        ValueError: no slices, a missing geometry tag, mixed orientations or sizes,
            duplicate or non-uniform slice positions.
    """
    if isinstance(files, str):
        if not os.path.isdir(files):
            raise FileNotFoundError(f"DICOM series directory not found: {files}")
        files = sorted(os.path.join(files, f) for f in os.listdir(files))
    if not files:
        raise ValueError("expected at least one DICOM slice, got none")
    slices = []
    for f in files:
        ds = pydicom.dcmread(f)
        missing = [t for t in _SERIES_TAGS if t not in ds]
        if missing:
            raise ValueError(f"DICOM slice {os.path.basename(f)} lacks {missing}")
        slices.append(ds)
    iop = np.asarray(slices[0].ImageOrientationPatient, dtype=np.float64)
    if any(
        not np.allclose(np.asarray(s.ImageOrientationPatient, float), iop, atol=1e-4)
        for s in slices
    ):
        raise ValueError("slices of the series have different ImageOrientationPatient")
    row_dir, col_dir = iop[:3], iop[3:]
    normal = np.cross(row_dir, col_dir)
    pos = np.array([np.asarray(s.ImagePositionPatient, dtype=np.float64) for s in slices])
    order = np.argsort(pos @ normal)
    slices, pos = [slices[i] for i in order], pos[order]
    if len(slices) > 1:
        steps = np.diff(pos @ normal)
        if np.min(steps) < 1e-6:
            raise ValueError("duplicate slice positions in the series")
        if np.ptp(steps) > 1e-3 * np.mean(steps) + 1e-4:
            raise ValueError(
                f"non-uniform slice spacing: steps {steps.min():.4f}..{steps.max():.4f} mm"
            )
        dk = float(np.mean(steps))
    else:
        dk = float(slices[0].get("SliceThickness", 1.0))
    planes = []
    for s in slices:
        px = s.pixel_array.astype(np.float32)
        slope = float(s.get("RescaleSlope", 1.0))
        icpt = float(s.get("RescaleIntercept", 0.0))
        planes.append(px * slope + icpt)
    if len({p.shape for p in planes}) != 1:
        raise ValueError("slices of the series have different sizes")
    data = np.stack(planes, axis=-1).transpose(1, 0, 2)  # (rows, cols, k) -> (cols, rows, k)
    dr, dc = (float(v) for v in slices[0].PixelSpacing)  # row spacing, column spacing
    T = np.eye(4)
    T[:3, 0] = row_dir * dc  # i = column index moves along the row cosine
    T[:3, 1] = col_dir * dr
    T[:3, 2] = normal * dk
    T[:3, 3] = pos[0]
    return CbctVolume(np.ascontiguousarray(data), T, is_label)


def _iso_mesh(volume: CbctVolume, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Marching cubes at ``threshold`` (label volumes: lightly smoothed mask at 0.5), LPS mm."""
    if volume.is_label:
        field = ndimage.gaussian_filter((volume.data > 0).astype(np.float32), 0.7)
        level = 0.5
    else:
        field, level = volume.data, float(threshold)
    if not (field.min() < level < field.max()):
        raise ValueError(
            f"no bone surface: the volume ({field.min():.1f}..{field.max():.1f}) "
            f"does not cross the level {level:.1f}"
        )
    verts, faces, normals, _ = measure.marching_cubes(field, level=level, allow_degenerate=False)
    # skimage normals point down the gradient: out of the bone (bone is the high side)
    A = volume.T_lps_voxel[:3, :3]
    n = normals @ np.linalg.inv(A)  # normals transform with the inverse transpose
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    v = apply_transform(volume.T_lps_voxel, verts)
    tri = np.cross(v[faces[:, 1]] - v[faces[:, 0]], v[faces[:, 2]] - v[faces[:, 0]])
    if np.sum(tri * n[faces].sum(axis=1)) < 0:  # winding against the normals: flip it
        faces = faces[:, ::-1]
    return v, np.ascontiguousarray(faces)


def bone_surface(
    volume: CbctVolume,
    threshold_hu: float = 250.0,
    posterior_only: bool = True,
    towards_probe_lps: tuple[float, float, float] = (0.0, 1.0, 0.0),
    tilts_deg: tuple[float, ...] = (-25.0, 0.0, 25.0),
    ray_spacing_mm: float = 1.0,
) -> BoneSurface:
    """Bone surface points with outward normals, LPS mm.

    Args:
        volume: the CBCT (HU) or label volume.
        threshold_hu: bone iso-level for HU volumes (ignored for label volumes).
        posterior_only: keep only what a probe at ``towards_probe_lps`` sees: first
            hits of parallel rays, surfaces facing the ray; otherwise all mesh vertices.
        towards_probe_lps: unit direction from the anatomy to the probe (prone patient,
            probe on the back: +y, posterior).
        tilts_deg: ray tilts about the volume's cranio-caudal (z) axis, like a rocking probe.
        ray_spacing_mm: spacing of the parallel rays.

    Returns:
        BoneSurface.

    Raises:
        ValueError: the volume holds no surface at that level, or a bad direction.
    """
    verts, faces = _iso_mesh(volume, threshold_hu)
    mesh = o3d.geometry.TriangleMesh(
        o3d.utility.Vector3dVector(verts), o3d.utility.Vector3iVector(faces.astype(np.int32))
    )
    if not posterior_only:
        mesh.compute_vertex_normals()
        return BoneSurface(verts, np.asarray(mesh.vertex_normals).copy())
    up = np.asarray(towards_probe_lps, dtype=np.float64)
    if up.shape != (3,) or not np.all(np.isfinite(up)) or np.linalg.norm(up) == 0:
        raise ValueError(
            f"expected towards_probe_lps as a non-zero (3,) vector, got {towards_probe_lps}"
        )
    up /= np.linalg.norm(up)
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(
        o3d.core.Tensor(verts.astype(np.float32)), o3d.core.Tensor(faces.astype(np.uint32))
    )
    cc = np.array([0.0, 0.0, 1.0]) - up[2] * up  # cranio-caudal axis orthogonal to up
    cc = cc / np.linalg.norm(cc) if np.linalg.norm(cc) > 1e-6 else np.array([1.0, 0.0, 0.0])
    centre, radius = (
        verts.mean(axis=0),
        float(np.max(np.linalg.norm(verts - verts.mean(0), axis=1))),
    )
    pts, nrm = [], []
    for tilt in np.radians(tilts_deg):
        side = np.cross(cc, up)
        d_up = np.cos(tilt) * up + np.sin(tilt) * side  # towards the tilted probe
        d_side = np.cross(cc, d_up)
        g = np.arange(-radius, radius + ray_spacing_mm, ray_spacing_mm)
        a, b = np.meshgrid(g, g, indexing="ij")
        origins = (
            centre + (radius + 10.0) * d_up + a.reshape(-1, 1) * d_side + b.reshape(-1, 1) * cc
        )
        rays = np.hstack([origins, np.broadcast_to(-d_up, origins.shape)]).astype(np.float32)
        ans = scene.cast_rays(o3d.core.Tensor(rays))
        t = ans["t_hit"].numpy()
        n = ans["primitive_normals"].numpy().astype(np.float64)
        hit = np.isfinite(t) & (n @ d_up > 0)
        pts.append(origins[hit] - t[hit, None] * d_up)
        nrm.append(n[hit])
    p, n = np.vstack(pts), np.vstack(nrm)
    _, first = np.unique(
        np.floor(p / (0.5 * ray_spacing_mm)).astype(np.int64), axis=0, return_index=True
    )
    first = np.sort(first)
    return BoneSurface(p[first], n[first] / np.linalg.norm(n[first], axis=1, keepdims=True))
