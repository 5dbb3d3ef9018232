"""Spine folders on disk: per-level PLY meshes with part labels, spine.json, labels.nii.gz.

Layout of ``DIR/<spine_id>/``:

- ``L1.ply`` .. ``L5.ply``: binary little-endian PLY, vertices in mm in the spine's LPS
  frame (float32 x, y, z and a uchar ``part`` code per vertex), triangles as
  ``list uchar int vertex_indices`` wound counter-clockwise seen from outside.
- ``spine.json``: spine id, params, frames, and per-level centroids (mm, LPS).
- ``labels.nii.gz``: CT-like label volume (uint8; VerSe values 20..24 for L1..L5, 0
  background). NIfTI world coordinates are RAS, so the affine stored is
  ``diag(-1, -1, 1, 1) @ A_lps`` where ``A_lps`` maps voxel indices to LPS mm; the voxel
  axes run along L, P, S (nibabel's ``aff2axcodes`` gives ``('L', 'P', 'S')``).

Open3D cannot store custom vertex properties, so the PLY codec is written here with
numpy structured arrays.
"""

from __future__ import annotations

import json
import os

import nibabel as nib
import numpy as np
import open3d as o3d

from usx_model.base.parts import LEVEL_NAMES, VERSE_LABELS
from usx_model.sim.phantom.types import Spine, VertebraMesh

_PLY_TYPES = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1",
    "short": "i2", "int16": "i2", "ushort": "u2", "uint16": "u2",
    "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8",
}  # fmt: skip
_LABEL_OF_LEVEL = {level: label for label, level in VERSE_LABELS.items()}


def write_ply(path: str, vertices_mm: np.ndarray, faces: np.ndarray, part: np.ndarray) -> None:
    """Write a triangle mesh with a per-vertex uchar ``part`` as binary little-endian PLY.

    Args:
        path: output file.
        vertices_mm: (V, 3) positions (stored as float32).
        faces: (F, 3) vertex indices.
        part: (V,) part codes 0..255.
    """
    v = np.asarray(vertices_mm)
    f = np.asarray(faces)
    p = np.asarray(part)
    if v.ndim != 2 or v.shape[1] != 3:
        raise ValueError(f"expected (V, 3) vertices, got {v.shape}")
    if f.ndim != 2 or f.shape[1] != 3:
        raise ValueError(f"expected (F, 3) triangle indices, got {f.shape}")
    if p.shape != (len(v),):
        raise ValueError(f"expected ({len(v)},) part codes, got {p.shape}")
    if len(f) and (f.min() < 0 or f.max() >= len(v)):
        raise ValueError(f"face indices must lie in [0, {len(v)}), got [{f.min()}, {f.max()}]")
    vert = np.empty(len(v), dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("part", "u1")])
    vert["x"], vert["y"], vert["z"] = v[:, 0], v[:, 1], v[:, 2]
    vert["part"] = p
    face = np.empty(len(f), dtype=[("n", "u1"), ("idx", "<i4", (3,))])
    face["n"] = 3
    face["idx"] = f
    header = (
        "ply\nformat binary_little_endian 1.0\ncomment usx phantom, mm, SPACE=LPS\n"
        f"element vertex {len(v)}\nproperty float x\nproperty float y\nproperty float z\n"
        f"property uchar part\nelement face {len(f)}\n"
        "property list uchar int vertex_indices\nend_header\n"
    )
    with open(path, "wb") as fh:
        fh.write(header.encode("ascii"))
        fh.write(vert.tobytes())
        fh.write(face.tobytes())


def read_ply(path: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read a binary little-endian triangle PLY (any scalar vertex properties).

    Returns:
        (vertices (V, 3) float64, faces (F, 3) int64, part (V,) uint8 — zeros when the
        file has no ``part`` property).

    Raises:
        ValueError: not a binary little-endian PLY of triangles.
    """
    with open(path, "rb") as fh:
        if fh.readline().strip() != b"ply":
            raise ValueError(f"{path} is not a PLY file")
        elements: list[list] = []  # [name, count, [(prop, dtype)], list types or None]
        while True:
            line = fh.readline()
            if not line:
                raise ValueError(f"{path}: PLY header has no end_header")
            tok = line.decode("ascii", errors="replace").split()
            if not tok or tok[0] in ("comment", "obj_info"):
                continue
            if tok[0] == "format" and tok[1] != "binary_little_endian":
                raise ValueError(f"{path}: expected binary_little_endian PLY, got {tok[1]}")
            if tok[0] == "element":
                elements.append([tok[1], int(tok[2]), [], None])
            elif tok[0] == "property" and tok[1] == "list":
                elements[-1][3] = (_PLY_TYPES[tok[2]], _PLY_TYPES[tok[3]])
            elif tok[0] == "property":
                elements[-1][2].append((tok[2], "<" + _PLY_TYPES[tok[1]]))
            elif tok[0] == "end_header":
                break
        data = fh.read()
    out: dict[str, np.ndarray] = {}
    offset = 0
    for name, count, props, list_types in elements:
        if list_types is None:
            arr = np.frombuffer(data, dtype=props, count=count, offset=offset)
            offset += arr.nbytes
            out[name] = arr
        else:
            n_type, i_type = list_types
            dt = np.dtype([("n", n_type), ("idx", "<" + i_type, (3,))])
            arr = np.frombuffer(data, dtype=dt, count=count, offset=offset)
            if count and np.any(arr["n"] != 3):
                raise ValueError(f"{path}: expected triangles only")
            offset += arr.nbytes
            out[name] = arr["idx"]
    vert = out["vertex"]
    vertices = np.stack([vert["x"], vert["y"], vert["z"]], axis=1).astype(np.float64)
    part = (
        vert["part"].astype(np.uint8)
        if "part" in vert.dtype.names
        else np.zeros(len(vert), np.uint8)
    )
    return vertices, out.get("face", np.zeros((0, 3))).astype(np.int64), part


def voxelise_spine(spine: Spine, spacing_mm: float = 1.0, margin_mm: float = 5.0):
    """Label volume of a spine: VerSe values 20..24 inside each vertebra, 0 elsewhere.

    Args:
        spine: meshes in one LPS frame.
        spacing_mm: isotropic voxel size.
        margin_mm: empty border around the meshes.

    Returns:
        (labels (I, J, K) uint8, A_lps (4, 4) voxel index -> LPS mm).
    """
    if not spacing_mm > 0:
        raise ValueError(f"expected spacing_mm > 0, got {spacing_mm}")
    all_v = np.concatenate([m.vertices_mm for m in spine.vertebrae.values()])
    lo = all_v.min(axis=0) - margin_mm
    shape = np.ceil((all_v.max(axis=0) + margin_mm - lo) / spacing_mm).astype(int) + 1
    labels = np.zeros(shape, np.uint8)
    for level, m in sorted(spine.vertebrae.items()):
        i0 = np.floor((m.vertices_mm.min(axis=0) - lo) / spacing_mm).astype(int)
        i1 = np.ceil((m.vertices_mm.max(axis=0) - lo) / spacing_mm).astype(int) + 1
        axes = [lo[k] + spacing_mm * np.arange(i0[k], i1[k]) for k in range(3)]
        grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
        scene = o3d.t.geometry.RaycastingScene()
        tm = o3d.t.geometry.TriangleMesh(
            o3d.core.Tensor(m.vertices_mm.astype(np.float32)),
            o3d.core.Tensor(m.faces.astype(np.int32)),
        )
        scene.add_triangles(tm)
        occ = scene.compute_occupancy(o3d.core.Tensor(grid.astype(np.float32))).numpy()
        occ = occ.reshape(tuple(i1 - i0)).astype(bool)
        sub = labels[i0[0] : i1[0], i0[1] : i1[1], i0[2] : i1[2]]
        sub[occ] = _LABEL_OF_LEVEL[level]
    a_lps = np.diag([spacing_mm, spacing_mm, spacing_mm, 1.0])
    a_lps[:3, 3] = lo
    return labels, a_lps


def write_spine(spine: Spine, out_dir: str, label_spacing_mm: float = 1.0) -> str:
    """Write ``out_dir/<spine_id>/`` (PLYs, spine.json, labels.nii.gz); return that folder."""
    folder = os.path.join(out_dir, spine.spine_id)
    os.makedirs(folder, exist_ok=True)
    levels = {}
    for level, m in sorted(spine.vertebrae.items()):
        write_ply(
            os.path.join(folder, f"{LEVEL_NAMES[level - 1]}.ply"), m.vertices_mm, m.faces, m.part
        )
        levels[LEVEL_NAMES[level - 1]] = {
            "centroid_mm": np.asarray(m.centroid_mm, float).tolist(),
            "body_centroid_mm": np.asarray(m.body_centroid_mm, float).tolist(),
        }
    meta = {
        "spine_id": spine.spine_id,
        "frame": "LPS, mm",
        "levels": levels,
        "params": spine.params,
        "frames": spine.frames,
    }
    with open(os.path.join(folder, "spine.json"), "w", encoding="utf-8") as fh:
        json.dump(meta, fh, indent=1)
    labels, a_lps = voxelise_spine(spine, label_spacing_mm)
    affine_ras = np.diag([-1.0, -1.0, 1.0, 1.0]) @ a_lps
    img = nib.Nifti1Image(labels, affine_ras)
    img.header.set_xyzt_units("mm")
    nib.save(img, os.path.join(folder, "labels.nii.gz"))
    return folder


def read_spine(folder: str) -> Spine:
    """Read a folder written by ``write_spine`` back into a ``Spine``."""
    meta_path = os.path.join(folder, "spine.json")
    if not os.path.isfile(meta_path):
        raise FileNotFoundError(f"no spine.json in {folder}")
    with open(meta_path, encoding="utf-8") as fh:
        meta = json.load(fh)
    vertebrae = {}
    for name, info in meta["levels"].items():
        level = LEVEL_NAMES.index(name) + 1
        v, f, p = read_ply(os.path.join(folder, f"{name}.ply"))
        vertebrae[level] = VertebraMesh(
            level=level,
            vertices_mm=v,
            faces=f,
            part=p,
            centroid_mm=np.asarray(info["centroid_mm"]),
            body_centroid_mm=np.asarray(info["body_centroid_mm"]),
        )
    return Spine(meta["spine_id"], vertebrae, params=meta["params"], frames=meta["frames"])
