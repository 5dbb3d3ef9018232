"""Fit the residual shape fields of ``sim.phantom.residual`` to real vertebrae.

For each real vertebra of the calibration set: the nearest of ``n`` phantom vertebrae of
its level (``realism.best_of_n``), rigidly aligned onto it, then moved onto it by a smooth
non-rigid displacement (:func:`fit_displacement`); the displacement, expressed in the
phantom vertebra's normalised frame, is the field. Only the fields leave this module, never
a real surface; which real vertebrae were used is recorded with the library.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from usx_model.evaluation.realism import (
    RealVertebra,
    align_rigid,
    best_of_n,
    chamfer_l1,
    generated_vertebrae,
    load_real_vertebrae,
    sample_surface,
)
from usx_model.sim.phantom.residual import ResidualLibrary, vertebra_frame

#: Smoothing widths of the coarse-to-fine fit, mm: proportions first, then relief.
SIGMAS_MM = (8.0, 5.0, 3.0)
#: Updates per width.
ITERATIONS = 4
#: Vertices that carry the smoothed displacement (kernel centres).
CONTROLS = 500
#: Samples kept per field.
FIELD_SAMPLES = 3000
#: Surface samples of a real vertebra the fit pulls towards.
TARGET_SAMPLES = 20000


def fit_displacement(
    src_mm: np.ndarray,
    dst_mm: np.ndarray,
    sigmas_mm: tuple[float, ...] = SIGMAS_MM,
    iterations: int = ITERATIONS,
    controls: int = CONTROLS,
    seed: int = 0,
) -> np.ndarray:
    """(V, 3) smooth displacement (mm) moving ``src_mm`` (V, 3) onto ``dst_mm`` (M, 3).

    Each update pulls every source point towards its nearest target point and every
    target point's nearest source point towards it (so thin parts are not left behind),
    averages these pulls with Gaussian weights of width ``sigma`` around ``controls``
    random source points, and spreads the averages back with the same weights. Both
    clouds in the same frame, already rigidly aligned.
    """
    x0 = np.asarray(src_mm, dtype=np.float64)
    y = np.asarray(dst_mm, dtype=np.float64)
    if x0.ndim != 2 or x0.shape[1] != 3 or y.ndim != 2 or y.shape[1] != 3:
        raise ValueError(f"expected (V, 3) and (M, 3) points, got {x0.shape} and {y.shape}")
    if min(len(x0), len(y)) < 4:
        raise ValueError(f"expected at least 4 points each, got {len(x0)} and {len(y)}")
    rng = np.random.default_rng(seed)
    ctrl = rng.choice(len(x0), size=min(controls, len(x0)), replace=False)
    tree_y = cKDTree(y)
    u = np.zeros_like(x0)
    for sigma in sigmas_mm:
        for _ in range(iterations):
            x = x0 + u
            pull = y[tree_y.query(x)[1]] - x
            i = cKDTree(x).query(y)[1]
            np.add.at(pull, i, y - x[i])
            pull /= (1.0 + np.bincount(i, minlength=len(x)))[:, None]
            d2 = np.sum((x[:, None, :] - x[ctrl][None, :, :]) ** 2, axis=2)
            w = np.exp(-0.5 * d2 / sigma**2)
            at_ctrl = (w.T @ pull) / np.maximum(w.sum(axis=0), 1e-12)[:, None]
            u += (w @ at_ctrl) / np.maximum(w.sum(axis=1), 1e-12)[:, None]
    return u


def fit_field(real: RealVertebra, n: int, first_seed: int = 0, seed: int = 0) -> dict:
    """The residual field of one real vertebra against its nearest of ``n`` phantoms.

    Returns:
        dict with ``points``, ``displacements`` (normalised frame, ``FIELD_SAMPLES`` rows),
        ``phantom_seed``, and the Chamfer-L1 (mm, 4096-point samples) of the rigidly
        aligned phantom and of the displaced one against the real surface.
    """
    pool = generated_vertebrae(real.level, n, first_seed)
    _, best = best_of_n(real, pool)
    vm = pool[best]
    target = sample_surface(real.vertices_mm, real.faces, TARGET_SAMPLES, seed=1)
    t = align_rigid(sample_surface(vm.vertices_mm, vm.faces, 4096, seed=3), target[:4096])
    rot, shift = t[:3, :3], t[:3, 3]
    moved = vm.vertices_mm @ rot.T + shift
    u = fit_displacement(moved, target, seed=seed)
    probe = sample_surface(moved, vm.faces, 4096, seed=4)
    after = sample_surface(moved + u, vm.faces, 4096, seed=4)
    c, axes, r = vertebra_frame(vm)
    rng = np.random.default_rng(seed)
    keep = rng.choice(len(u), size=min(FIELD_SAMPLES, len(u)), replace=False)
    return {
        "points": (vm.vertices_mm[keep] - c) @ axes.T / r,
        "displacements": (u[keep] @ rot) @ axes.T / r,
        "phantom_seed": first_seed + best,
        "rigid_chamfer_mm": chamfer_l1(probe, target[:4096]),
        "fitted_chamfer_mm": chamfer_l1(after, target[:4096]),
        "rms_displacement_mm": float(np.sqrt(np.mean(np.sum(u**2, axis=1)))),
    }


def build_library(
    reals: list[RealVertebra], n: int = 100, first_seed: int = 0
) -> tuple[ResidualLibrary, dict]:
    """One field per real vertebra; the library and a JSON-safe report of the fits."""
    if not reals:
        raise ValueError("expected at least one real vertebra to fit")
    fields, rows = [], []
    for real in reals:
        f = fit_field(real, n, first_seed)
        fields.append(f)
        rows.append(
            {
                "name": real.name,
                "level": real.level,
                **{
                    k: (round(v, 3) if isinstance(v, float) else v)
                    for k, v in f.items()
                    if k not in ("points", "displacements")
                },
            }
        )
    sizes = [len(f["points"]) for f in fields]
    lib = ResidualLibrary(
        names=np.array([r.name for r in reals]),
        levels=np.array([r.level for r in reals]),
        offsets=np.concatenate([[0], np.cumsum(sizes)]),
        points=np.concatenate([f["points"] for f in fields]),
        displacements=np.concatenate([f["displacements"] for f in fields]),
    )
    return lib, {"n": n, "first_seed": first_seed, "fields": rows}


def without(reals: list[RealVertebra], names: set[str]) -> list[RealVertebra]:
    """``reals`` less the named ones (kept out of the fit, e.g. for model selection).

    Raises:
        ValueError: on a name that is not among ``reals``, or when none would be left.
    """
    unknown = sorted(set(names) - {r.name for r in reals})
    if unknown:
        raise ValueError(f"expected names among {[r.name for r in reals]}, got {unknown}")
    kept = [r for r in reals if r.name not in names]
    if not kept:
        raise ValueError("expected at least one real vertebra left to fit")
    return kept


def calibration_vertebrae(root: str | None = None) -> list[RealVertebra]:
    """The calibration set: the real validation vertebrae (``realism.load_real_vertebrae``:
    the ten VerSe L1s and the VerSe sample subject's L1-L5)."""
    return load_real_vertebrae(root) if root else load_real_vertebrae()
