"""Load a VerSe2020 lumbar spine (label volume + centroid JSON) as a ``Spine``.

VerSe (Löffler et al., Radiology: AI 2020; Sekuboyina et al., Med Image Anal 2021)
ships ``*_seg-vert_msk.nii.gz`` label volumes (labels 20..24 = L1..L5) and centroid
JSON files whose first entry is the voxel axis code (e.g. ``{"direction": ["P","I","R"]}``)
and whose other entries are ``{label, X, Y, Z}`` in voxel coordinates. VerSe centroids
mark the vertebral *body*, so they fill ``body_centroid_mm``; ``centroid_mm`` is the
centroid of the whole label. Part labels are unknown (all zeros).

Frames: NIfTI affines map voxels to RAS world mm; LPS = diag(-1, -1, 1) · RAS.
"""

from __future__ import annotations

import json
import os

import nibabel as nib
import numpy as np
from scipy import ndimage
from skimage import measure

from usx_model.base.parts import VERSE_LABELS
from usx_model.sim.phantom.mesh_ops import largest_component, orient_outward
from usx_model.sim.phantom.types import Spine, VertebraMesh

_RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0])
_AXIS_PAIRS = {"L": "LR", "R": "LR", "A": "AP", "P": "AP", "S": "SI", "I": "SI"}


def voxel_to_lps(affine: np.ndarray) -> np.ndarray:
    """4x4 voxel indices -> LPS mm from a NIfTI affine (voxels -> RAS mm)."""
    t = np.eye(4)
    t[:3, :3] = _RAS_TO_LPS
    return t @ np.asarray(affine, dtype=np.float64)


def load_verse_spine(mask_path: str, centroid_json_path: str, spine_id: str | None = None):
    """Read a VerSe label volume and centroid file into a ``Spine`` (LPS world mm).

    Args:
        mask_path: ``*_seg-vert_msk.nii.gz`` with labels 20..24 for L1..L5.
        centroid_json_path: VerSe centroid JSON (axis code first, voxel coordinates).
        spine_id: identifier; defaults to the file name up to ``_seg``.

    Returns:
        ``Spine`` with one ``VertebraMesh`` per lumbar label present (part codes 0).

    Raises:
        FileNotFoundError: a path does not exist.
        ValueError: no lumbar labels, or a malformed/invalid axis code or centroid list.
    """
    for path in (mask_path, centroid_json_path):
        if not os.path.isfile(path):
            raise FileNotFoundError(f"VerSe file not found: {path}")
    img = nib.load(mask_path)
    labels = np.asarray(img.dataobj).astype(np.int32)
    if labels.ndim != 3:
        raise ValueError(f"expected a 3D label volume, got shape {labels.shape} in {mask_path}")
    vol_code = "".join(nib.aff2axcodes(img.affine))
    centroids_vox = _read_centroids(centroid_json_path, vol_code, labels.shape)
    present = [lab for lab in sorted(VERSE_LABELS) if np.any(labels == lab)]
    if not present:
        raise ValueError(
            f"no lumbar labels 20..24 in {mask_path} (found {np.unique(labels).tolist()[:12]})"
        )
    vox_to_lps = voxel_to_lps(img.affine)
    vertebrae = {}
    for lab in present:
        vm = mesh_mask(labels == lab, vox_to_lps)
        level = VERSE_LABELS[lab]
        vm.level = level
        if lab in centroids_vox:
            vm.body_centroid_mm = _apply(vox_to_lps, centroids_vox[lab][None])[0]
        vertebrae[level] = vm
    if spine_id is None:
        spine_id = os.path.basename(mask_path).split("_seg")[0]
    return Spine(spine_id=spine_id, vertebrae=vertebrae, params={}, frames={})


def _apply(t: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return pts @ t[:3, :3].T + t[:3, 3]


def mesh_mask(mask: np.ndarray, vox_to_lps: np.ndarray) -> VertebraMesh:
    """Marching cubes of a lightly smoothed binary mask (removes voxel stair-steps): the
    largest piece, outward normals, in the frame of the 4x4 ``vox_to_lps`` (mm); level 0."""
    idx = np.argwhere(mask)
    lo = np.maximum(idx.min(axis=0) - 2, 0)
    hi = idx.max(axis=0) + 3
    sub = np.pad(mask[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]].astype(np.float32), 2)
    smooth = ndimage.gaussian_filter(sub, sigma=0.7)
    verts, faces, _, _ = measure.marching_cubes(smooth, level=0.5, allow_degenerate=False)
    verts = verts + lo - 2
    verts_mm = _apply(vox_to_lps, verts)
    verts_mm, faces = largest_component(verts_mm, faces.astype(np.int64))
    faces = orient_outward(verts_mm, faces)
    centroid = _apply(vox_to_lps, idx.mean(axis=0)[None])[0]
    return VertebraMesh(
        level=0,
        vertices_mm=verts_mm,
        faces=faces,
        part=np.zeros(len(verts_mm), dtype=np.uint8),
        centroid_mm=centroid,
        body_centroid_mm=centroid.copy(),
    )


def _read_centroids(path: str, vol_code: str, shape: tuple[int, ...]) -> dict[int, np.ndarray]:
    """Centroids in the volume's voxel indices, label -> (3,), from a VerSe JSON."""
    with open(path, encoding="utf-8") as fh:
        try:
            data = json.load(fh)
        except json.JSONDecodeError as exc:
            raise ValueError(f"centroid file {path} is not valid JSON: {exc}") from None
    if not isinstance(data, list) or not data or not isinstance(data[0], dict):
        raise ValueError(f"expected a JSON list starting with an axis code in {path}")
    code = data[0].get("direction")
    if (
        not isinstance(code, list)
        or len(code) != 3
        or not all(isinstance(c, str) and c in _AXIS_PAIRS for c in code)
        or len({_AXIS_PAIRS[c] for c in code}) != 3
    ):
        raise ValueError(
            f"invalid axis code {code!r} in {path}: expected one of L/R, A/P, S/I each, "
            'e.g. ["P", "I", "R"]'
        )
    # Map each JSON axis onto the volume axis of the same anatomical pair.
    perm, flip = [], []
    for c in code:
        k = next(i for i, v in enumerate(vol_code) if _AXIS_PAIRS[v] == _AXIS_PAIRS[c])
        perm.append(k)
        flip.append(vol_code[k] != c)
    out = {}
    for entry in data[1:]:
        try:
            lab = int(entry["label"])
            xyz = [float(entry[k]) for k in ("X", "Y", "Z")]
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"expected centroid entries {{label, X, Y, Z}} in {path}") from None
        vox = np.zeros(3)
        for j, (k, f) in enumerate(zip(perm, flip, strict=True)):
            vox[k] = (shape[k] - 1 - xyz[j]) if f else xyz[j]
        out[lab] = vox
    return out
