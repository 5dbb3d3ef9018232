"""How close the procedural phantom comes to real vertebrae (best-of-N Chamfer).

For each real vertebra, generated vertebrae of the same level are rigidly aligned to
it (no scaling) and the smallest symmetric Chamfer-L1 distance is kept:
``0.5 * (mean_pred NN(pred -> real) + mean_real NN(real -> pred))`` in mm, on
area-weighted surface samples. A phantom whose best-of-N is small can produce shapes
like real anatomy; the real shapes are used for this check only, never for fitting.

Alignment: centroid + principal-axes initialisation with the four proper axis-flip
candidates, plus the identity (both meshes are already in anatomical LPS axes), each
refined by point-to-point ICP (open3d); the best candidate wins.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass

import numpy as np
import open3d as o3d
from scipy.spatial import cKDTree

from usx_model.evaluation.real import MESH_SUFFIXES, REAL_ROOT, level_from_name, read_mesh
from usx_model.sim.phantom.residual import ResidualLibrary
from usx_model.sim.phantom.spine import generate_spine
from usx_model.sim.phantom.types import VertebraMesh


@dataclass(frozen=True)
class RealVertebra:
    """A real vertebra surface: name, level (1..5) and (V, 3) vertices, (F, 3) faces."""

    name: str
    level: int
    vertices_mm: np.ndarray
    faces: np.ndarray


def sample_surface(vertices: np.ndarray, faces: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """Area-weighted uniform samples on a triangle mesh, (n, 3) float64, same frame."""
    v0, v1, v2 = vertices[faces[:, 0]], vertices[faces[:, 1]], vertices[faces[:, 2]]
    area = 0.5 * np.linalg.norm(np.cross(v1 - v0, v2 - v0), axis=1)
    if not area.sum() > 0:
        raise ValueError("expected a mesh with positive surface area")
    rng = np.random.default_rng(seed)
    tri = rng.choice(len(faces), size=n, p=area / area.sum())
    r1, r2 = rng.random(n), rng.random(n)
    s = np.sqrt(r1)
    # Uniform barycentric sampling (Osada et al. 2002).
    return (
        (1 - s)[:, None] * v0[tri] + (s * (1 - r2))[:, None] * v1[tri] + (s * r2)[:, None] * v2[tri]
    )


def chamfer_l1(a: np.ndarray, b: np.ndarray) -> float:
    """Symmetric Chamfer-L1 (mm): half the sum of both mean nearest-neighbour distances."""
    d_ab, _ = cKDTree(b).query(a)
    d_ba, _ = cKDTree(a).query(b)
    return 0.5 * (float(d_ab.mean()) + float(d_ba.mean()))


def _candidates(src: np.ndarray, dst: np.ndarray) -> list[np.ndarray]:
    """Initial rigid transforms (4x4) mapping src onto dst: identity axes + PCA flips."""
    cs, cd = src.mean(axis=0), dst.mean(axis=0)
    _, us = np.linalg.eigh(np.cov((src - cs).T))
    _, ud = np.linalg.eigh(np.cov((dst - cd).T))
    rots = [np.eye(3)]
    for flips in ((1, 1, 1), (1, -1, -1), (-1, 1, -1), (-1, -1, 1)):
        r = ud @ np.diag(flips) @ us.T
        if np.linalg.det(r) < 0:  # eigh may return a reflection; keep proper rotations
            r = ud @ np.diag(flips) @ np.diag((1, 1, -1)) @ us.T
        rots.append(r)
    out = []
    for r in rots:
        t = np.eye(4)
        t[:3, :3] = r
        t[:3, 3] = cd - r @ cs
        out.append(t)
    return out


def align_rigid(
    src: np.ndarray, dst: np.ndarray, max_dist_mm: float = 8.0, quick: bool = False
) -> np.ndarray:
    """Best rigid 4x4 transform taking (N, 3) ``src`` onto (M, 3) ``dst`` (ICP, no scale).

    ``quick`` tries only the centroid-shifted identity (both clouds in anatomical axes).
    """
    ps = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(src))
    pd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(dst))
    crit = o3d.pipelines.registration.ICPConvergenceCriteria(max_iteration=40)
    est = o3d.pipelines.registration.TransformationEstimationPointToPoint()
    best, best_cd = np.eye(4), np.inf
    inits = _candidates(src, dst)
    for init in inits[:1] if quick else inits:
        reg = o3d.pipelines.registration.registration_icp(ps, pd, max_dist_mm, init, est, crit)
        t = np.asarray(reg.transformation)
        cd = chamfer_l1(src @ t[:3, :3].T + t[:3, 3], dst)
        if cd < best_cd:
            best, best_cd = t, cd
    return best


def aligned_chamfer(pred: np.ndarray, real: np.ndarray, quick: bool = False) -> float:
    """Chamfer-L1 (mm) after rigidly aligning ``pred`` (N, 3) onto ``real`` (M, 3)."""
    t = align_rigid(pred, real, quick=quick)
    return chamfer_l1(pred @ t[:3, :3].T + t[:3, 3], real)


def load_mesh_folder(folder: str) -> list[RealVertebra]:
    """Every vertebra mesh (PLY/STL/OBJ/OFF) of ``folder``, loose, its level from its file name."""
    out = []
    paths = [p for x in MESH_SUFFIXES for p in glob.glob(os.path.join(folder, f"*{x}"))]
    for path in sorted(paths):
        v, f = read_mesh(path)
        name = os.path.splitext(os.path.basename(path))[0]
        out.append(RealVertebra(name, level_from_name(path), v, f))
    if not out:
        raise ValueError(
            f"{folder}: expected vertebra meshes ({', '.join(MESH_SUFFIXES)}), found none"
        )
    return out


def load_real_vertebrae(root: str = REAL_ROOT) -> list[RealVertebra]:
    """The real L1 PLYs (largest component each) and L1-L5 of sub-verse004."""
    from usx_model.sim.phantom.verse import load_verse_spine

    out = []
    for path in sorted(glob.glob(os.path.join(root, "verse19_L1", "*.ply"))):
        mesh = o3d.io.read_triangle_mesh(path)
        tri_cluster, n_tri, _ = mesh.cluster_connected_triangles()
        mesh.remove_triangles_by_mask(np.asarray(tri_cluster) != int(np.argmax(n_tri)))
        mesh.remove_unreferenced_vertices()
        name = os.path.basename(path).split("_")[0]
        out.append(RealVertebra(name, 1, np.asarray(mesh.vertices), np.asarray(mesh.triangles)))
    vdir = os.path.join(root, "verse_sub-verse004")
    spine = load_verse_spine(
        os.path.join(vdir, "sub-verse004_seg-vert_msk.nii.gz"),
        os.path.join(vdir, "sub-verse004_seg-subreg_ctd.json"),
    )
    for level, vm in sorted(spine.vertebrae.items()):
        out.append(RealVertebra(f"sub-verse004-L{level}", level, vm.vertices_mm, vm.faces))
    return out


def generated_vertebrae(
    level: int,
    n: int,
    first_seed: int = 0,
    spacing_mm: float = 0.9,
    deform_mm: float = 0.0,
    deform_length_mm: float = 12.0,
    residuals: ResidualLibrary | None = None,
    residual_scale: tuple[float, float] = (1.0, 1.0),
):
    """``n`` phantom vertebrae of one level, from spines of seeds ``first_seed ...``;
    each deformed by ``sim.phantom.deform`` when ``deform_mm`` > 0 and moved by a random
    residual field of ``residuals`` when given (as the dataset builder does)."""
    from usx_model.sim.phantom.deform import deform_spine
    from usx_model.sim.phantom.residual import residual_spine

    out: list[VertebraMesh] = []
    for seed in range(first_seed, first_seed + n):
        spine = generate_spine(seed, levels=(level,), spacing_mm=spacing_mm)
        spine = deform_spine(spine, seed, deform_mm, deform_length_mm)
        if residuals is not None:
            spine = residual_spine(spine, seed, residuals, residual_scale)
        out.append(spine.vertebrae[level])
    return out


def best_of_n(
    real: RealVertebra,
    generated: list[VertebraMesh],
    n_points: int = 4096,
    shortlist: int = 12,
) -> tuple[float, int]:
    """Smallest aligned Chamfer-L1 (mm) of ``real`` over ``generated``, and its index.

    Every candidate is first scored with a quick alignment on 1024 points; the
    ``shortlist`` best are scored again in full on ``n_points``. The result is the
    minimum over full scores, so it can only overstate the true best-of-N.
    """
    real_pts = sample_surface(real.vertices_mm, real.faces, n_points, seed=1)
    real_small = real_pts[:1024]
    coarse = []
    for g in generated:
        pts = sample_surface(g.vertices_mm, g.faces, 1024, seed=2)
        coarse.append(aligned_chamfer(pts, real_small, quick=True))
    order = np.argsort(coarse)[:shortlist]
    best, best_i = np.inf, -1
    for i in order:
        g = generated[i]
        cd = aligned_chamfer(sample_surface(g.vertices_mm, g.faces, n_points, seed=3), real_pts)
        if cd < best:
            best, best_i = cd, int(i)
    return best, best_i


#: Control vertebrae are drawn from seeds this far above the pool's: never in the pool.
CONTROL_SEED_OFFSET = 1_000_000


def _stats(rows: list[dict]) -> dict:
    v = np.array([r["best_chamfer_mm"] for r in rows])
    return {
        "mean_mm": round(float(v.mean()), 3),
        "std_mm": round(float(v.std()), 3),
        "median_mm": round(float(np.median(v)), 3),
    }


def realism_report(
    n: int = 200,
    first_seed: int = 0,
    root: str = REAL_ROOT,
    control: int = 0,
    deform_mm: float = 0.0,
    deform_length_mm: float = 12.0,
    folder: str | None = None,
    residuals: ResidualLibrary | None = None,
    residual_scale: tuple[float, float] = (1.0, 1.0),
) -> dict:
    """Best-of-``n`` Chamfer-L1 (mm) per real vertebra, their median, and the target.

    Args:
        n: generated vertebrae per level (the pool).
        first_seed: seed of the pool's first spine.
        root: the real vertebrae folder (:func:`load_real_vertebrae`).
        control: also score this many phantom vertebrae per level, drawn like the pool
            from seeds it never used: how well the pool covers its own distribution,
            the figure a real vertebra would get if the phantom were realistic.
        deform_mm, deform_length_mm: the pool (and controls) deformed as the dataset
            builder's ``--deform-mm`` does.
        folder: score the meshes of this folder (:func:`load_mesh_folder`) instead of
            the validation vertebrae of ``root``.
        residuals, residual_scale: the pool (and controls) moved by residual fields as
            the dataset builder's ``--residuals`` does.

    Returns:
        JSON-serialisable dict: ``per_vertebra`` (name, level, best_chamfer_mm,
        best_seed), ``median_mm``, ``mean_mm``, ``std_mm``, ``n``, ``target_median_mm``,
        ``deform_mm``, and with ``control`` a ``control`` dict of the same statistics.
    """
    reals = load_mesh_folder(folder) if folder else load_real_vertebrae(root)
    levels = sorted({r.level for r in reals})
    pool_args = (0.9, deform_mm, deform_length_mm, residuals, residual_scale)
    generated = {level: generated_vertebrae(level, n, first_seed, *pool_args) for level in levels}

    def score(vert: RealVertebra) -> dict:
        cd, i = best_of_n(vert, generated[vert.level])
        return {
            "name": vert.name,
            "level": vert.level,
            "best_chamfer_mm": round(cd, 3),
            "best_seed": first_seed + i,
        }

    rows = [score(r) for r in reals]
    out = {
        "n": n,
        "first_seed": first_seed,
        "deform_mm": deform_mm,
        "deform_length_mm": deform_length_mm,
        "residual_fields": 0 if residuals is None else len(residuals),
        "residual_scale": list(residual_scale) if residuals is not None else None,
        "per_vertebra": rows,
        **_stats(rows),
        "target_median_mm": 2.5,
    }
    if control > 0:
        start = first_seed + CONTROL_SEED_OFFSET
        ctrl = []
        for level in levels:
            for k, vm in enumerate(generated_vertebrae(level, control, start, *pool_args)):
                ctrl.append(
                    score(
                        RealVertebra(
                            f"phantom-s{start + k}-L{level}", level, vm.vertices_mm, vm.faces
                        )
                    )
                )
        out["control"] = {
            "n_per_level": control,
            "first_seed": start,
            "per_vertebra": ctrl,
            **_stats(ctrl),
        }
    return out
