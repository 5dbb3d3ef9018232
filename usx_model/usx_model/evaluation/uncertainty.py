"""Per-point uncertainty: does it rank the error, and do its intervals cover the truth?

Every vertebra of the given sets is completed with the shipped full model and
``n_samples`` posterior samples. Per predicted point: the published uncertainty ``u`` (the
posterior spread, mm), the error ``e`` (distance to the nearest of the true surface's
samples, mm) and, as a reference predictor, the distance to the nearest observed US point.
Reported: Spearman's rank correlation of each predictor with ``e`` (all points pooled, and
the median over vertebrae), and the coverage of the intervals ``e <= z_p * c * u`` at
nominal rates ``p``, where ``z_p`` is the half-normal quantile (a 3D error whose components
are normal) and ``c`` is one scale fitted on the first set so that the 68 % interval covers
68 % of its points. With ``--plot`` a PNG: coverage against nominal rate per set, and the
mean error per uncertainty decile.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import numpy as np
from scipy.spatial import cKDTree
from scipy.stats import norm, spearmanr

from usx_model.evaluation.pipeline import EvalSet
from usx_model.evaluation.sets import add_set_arguments, load_sets, shipped_full_model
from usx_model.network.inference import complete

#: Nominal interval rates reported.
NOMINAL = (0.5, 0.68, 0.9, 0.95)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_set_arguments(p)
    p.add_argument("--samples", type=int, default=4, help="posterior samples (default 4)")
    p.add_argument("--plot", metavar="PNG", help="write the calibration plot here")


def half_normal_quantile(p: float) -> float:
    """z with P(|N(0, 1)| <= z) = p."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"p: expected 0 < p < 1, got {p}")
    return float(norm.ppf(0.5 + 0.5 * p))


def fit_scale(u: np.ndarray, e: np.ndarray, p: float = 0.68) -> float:
    """Scale c with ``mean(e <= z_p * c * u) == p`` (the p-quantile of e / u over z_p)."""
    u, e = np.asarray(u, dtype=np.float64), np.asarray(e, dtype=np.float64)
    if u.shape != e.shape or u.ndim != 1 or not len(u) or (u <= 0).any():
        raise ValueError(f"u, e: expected equal (N,) arrays, u > 0; got {u.shape}, {e.shape}")
    return float(np.quantile(e / u, p) / half_normal_quantile(p))


def coverage(u: np.ndarray, e: np.ndarray, scale: float, rates: Sequence[float] = NOMINAL):
    """``{p: mean(e <= z_p * scale * u)}`` for each nominal rate p."""
    u, e = np.asarray(u, dtype=np.float64), np.asarray(e, dtype=np.float64)
    return {p: float(np.mean(e <= half_normal_quantile(p) * scale * u)) for p in rates}


def rank_stats(predictor: Sequence[np.ndarray], error: Sequence[np.ndarray]) -> dict:
    """Spearman of predictor with error: all points pooled, and median/min/max per vertebra."""
    per = [float(spearmanr(a, b)[0]) for a, b in zip(predictor, error, strict=True)]
    pooled = float(spearmanr(np.concatenate(predictor), np.concatenate(error))[0])
    return {
        "pooled": pooled,
        "per_vertebra_median": float(np.median(per)),
        "per_vertebra_min": float(np.min(per)),
        "per_vertebra_max": float(np.max(per)),
    }


def _points(evalset: EvalSet, model, n_samples: int) -> dict:
    u, e, d_us = [], [], []
    for k in range(len(evalset)):
        out = complete(
            [evalset.us[k]], [evalset.xray[k]], [evalset.names[k]], model, n_samples=n_samples
        )
        pred = out.points_mm[0]
        u.append(np.maximum(out.uncertainty_mm[0], 1e-6))
        e.append(cKDTree(evalset.gt[k]).query(pred)[0])
        d_us.append(cKDTree(evalset.us[k]).query(pred)[0])
    return {"u": u, "e": e, "d_us": d_us}


def _plot(path: str, sets: dict, scale: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4.2))
    rates = np.linspace(0.05, 0.95, 19)
    a.plot([0, 1], [0, 1], "k--", lw=1, label="ideal")
    for name, pts in sets.items():
        u, e = np.concatenate(pts["u"]), np.concatenate(pts["e"])
        cov = coverage(u, e, scale, rates)
        a.plot(rates, [cov[p] for p in rates], "o-", ms=3, label=name)
        edges = np.quantile(u, np.linspace(0, 1, 11))
        idx = np.clip(np.searchsorted(edges, u, side="right") - 1, 0, 9)
        b.plot(
            [u[idx == i].mean() for i in range(10)],
            [e[idx == i].mean() for i in range(10)],
            "o-",
            ms=3,
            label=name,
        )
    a.set(xlabel="nominal rate", ylabel="fraction of points covered", title=f"scale c={scale:.2f}")
    b.set(xlabel="posterior spread u (mm), decile mean", ylabel="mean error (mm)")
    a.legend()
    b.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run(args: argparse.Namespace) -> dict:
    if args.samples < 1:
        raise SystemExit(f"--samples: expected >= 1, got {args.samples}")
    evalsets = load_sets(args, "usx measure uncertainty")
    model, weights = shipped_full_model()
    sets = {name: _points(es, model, args.samples) for name, es in evalsets.items()}
    first = next(iter(sets.values()))
    scale = fit_scale(np.concatenate(first["u"]), np.concatenate(first["e"]))
    out: dict = {
        "weights": str(weights),
        "samples": args.samples,
        "scale_fitted_on": next(iter(sets)),
        "scale": scale,
    }
    for name, pts in sets.items():
        u, e = np.concatenate(pts["u"]), np.concatenate(pts["e"])
        out[name] = {
            "vertebrae": len(pts["u"]),
            "points": len(u),
            "mean_error_mm": float(e.mean()),
            "mean_spread_mm": float(u.mean()),
            "spearman_spread": rank_stats(pts["u"], pts["e"]),
            "spearman_distance_to_us": rank_stats(pts["d_us"], pts["e"]),
            "coverage_raw": {str(p): v for p, v in coverage(u, e, 1.0).items()},
            "coverage_scaled": {str(p): v for p, v in coverage(u, e, scale).items()},
        }
    if args.plot:
        _plot(args.plot, sets, scale)
        out["plot"] = args.plot
    return out
