"""Small triangle-mesh clean-ups shared by the phantom and the VerSe loader."""

from __future__ import annotations

import numpy as np
from scipy import sparse


def largest_component(verts: np.ndarray, faces: np.ndarray):
    """Keep the triangles of the largest edge-connected piece; reindex its vertices."""
    n = len(verts)
    rows = np.concatenate([faces[:, 0], faces[:, 1], faces[:, 2]])
    cols = np.concatenate([faces[:, 1], faces[:, 2], faces[:, 0]])
    adj = sparse.coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    n_comp, comp = sparse.csgraph.connected_components(adj, directed=False)
    if n_comp > 1:
        counts = np.bincount(comp[faces[:, 0]], minlength=n_comp)
        keep_faces = comp[faces[:, 0]] == np.argmax(counts)
        faces = faces[keep_faces]
    used = np.unique(faces)
    remap = np.full(n, -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    return verts[used], remap[faces]


def orient_outward(verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Flip the winding if the enclosed signed volume is negative (normals inward)."""
    v0, v1, v2 = verts[faces[:, 0]], verts[faces[:, 1]], verts[faces[:, 2]]
    signed_volume = np.einsum("ij,ij->i", v0, np.cross(v1, v2)).sum() / 6.0
    return faces if signed_volume > 0 else faces[:, ::-1].copy()
