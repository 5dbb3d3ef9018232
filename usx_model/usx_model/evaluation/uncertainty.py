"""Per-point uncertainty: does it rank the error, and do its intervals cover the truth?

Every vertebra of the given sets is completed with the shipped full model and
``n_samples`` posterior samples. Per predicted point: the posterior spread ``s`` (mm), the
distance ``d`` to the nearest observed point (US or X-ray), the published uncertainty ``sigma``
(``completion.error_scale``: shipped coefficients, those of ``--error-scale``, or those
``--fit`` fits on the sets given), and the error ``e`` (distance to the nearest of the true
surface's samples, mm). Reported: Spearman's rank correlation of ``s``, ``d`` and
``sigma`` with ``e`` (all points pooled, and the median over vertebrae), and the coverage
of the intervals ``e <= z_p * sigma`` at nominal rates ``p`` (``z_p`` the half-normal
quantile), beside those of the raw spread read as sigma and of the spread times one scale
``c`` fitted on the first set (68 % covering 68 %). With ``--plot`` a PNG: coverage against
nominal rate per set, and the mean error per sigma decile.

``--pipeline-seeds`` adds the live path: phantom spines of those seeds through the whole
simulated chain (``evaluation.offline``: sweep, compounding, X-ray placement, level split)
and ``SpineCompleter``, whose US surface step moves points onto each level's own split
points; its set reports the sigma the completion published (shipped coefficients), and
``d`` is measured to the level's own points and X-ray points (the completion's crop is not
kept), so it cannot be fitted on. ``--pipeline-meshes DIR`` does the same on a real spine
(one person's L1-L5 meshes in relation, ``evaluation.real.spine_from_meshes``).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree
from scipy.stats import spearmanr

from usx_model.completion.error_scale import (
    SHIPPED,
    ErrorScale,
    fit_error_scale,
    half_normal_quantile,
    load_error_scale,
    observed_distance,
)
from usx_model.evaluation.pipeline import EvalSet
from usx_model.evaluation.real import spine_from_meshes
from usx_model.evaluation.sets import (
    add_set_arguments,
    load_sets,
    shipped_full_model,
    shipped_model,
)
from usx_model.network.inference import complete
from usx_model.network.us_consistency import US_SNAP_MM, snap_to_us_surface
from usx_model.network.weights import sha256_file
from usx_model.sim.phantom.spine import generate_spine
from usx_model.sim.phantom.types import Spine

#: Nominal interval rates reported.
NOMINAL = (0.5, 0.68, 0.9, 0.95)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_set_arguments(p)
    p.add_argument("--samples", type=int, default=4, help="posterior samples (default 4)")
    p.add_argument("--plot", metavar="PNG", help="write the calibration plot here")
    p.add_argument(
        "--us-snap-mm",
        type=float,
        default=US_SNAP_MM,
        help="the completion's US surface consistency before measuring (0 = off; default: "
        "the completion node's, %(default)s mm)",
    )
    p.add_argument(
        "--error-scale", metavar="JSON", default=str(SHIPPED), help="sigma's coefficients"
    )
    p.add_argument(
        "--fit",
        metavar="JSON",
        help="fit sigma's coefficients on the sets given (each set weighted equally), "
        "write them here with their provenance, and report with them",
    )
    p.add_argument(
        "--pipeline-seeds",
        type=_seeds,
        default=(),
        metavar="S[,S...]",
        help="also the live path: these phantom seeds through the simulated chain and the "
        "spine completion (usx pipeline); reports the sigma it published",
    )
    p.add_argument(
        "--pipeline-meshes",
        metavar="DIR",
        help="also the live path on a real spine: one person's L1-L5 meshes in relation "
        "(usx pipeline --meshes), reported as the set 'pipeline_meshes'",
    )


def _seeds(text: str) -> tuple[int, ...]:
    try:
        seeds = tuple(int(s) for s in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seeds like 1,2,3, got {text!r}") from None
    return seeds


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


def _points(evalset: EvalSet, model, n_samples: int, us_snap_mm: float = 0.0) -> dict:
    """Per vertebra: spread ``u``, distance to the observations ``d``, error ``e`` per point
    (of the prediction after the US surface consistency when ``us_snap_mm`` > 0)."""
    u, e, d_obs = [], [], []
    for k in range(len(evalset)):
        out = complete(
            [evalset.us[k]], [evalset.xray[k]], [evalset.names[k]], model, n_samples=n_samples
        )
        pred = snap_to_us_surface(out.points_mm[0], evalset.us[k], us_snap_mm)
        u.append(np.maximum(out.uncertainty_mm[0], 1e-6))
        e.append(cKDTree(evalset.gt[k]).query(pred)[0])
        d_obs.append(observed_distance(pred, evalset.us[k], evalset.xray[k]))
    return {"u": u, "e": e, "d": d_obs}


def _pipeline_points(spines: Sequence[Spine], n_samples: int, us_snap_mm: float) -> dict:
    """Per vertebra of each spine completed on the live path: spread ``u``, the
    published ``sigma``, distance ``d`` to the level's own US and X-ray points, error
    ``e`` to the true surface's samples."""
    from usx_model.evaluation.offline import run_offline

    models = [shipped_model(v)[0] for v in ("full", "us_only")]
    pts: dict = {"u": [], "sigma": [], "d": [], "e": []}
    for spine in spines:
        res = run_offline(spine, *models, n_samples=n_samples, us_snap_mm=us_snap_mm)
        done = res.completion
        for lc in done.levels:
            if not len(lc.points_mm):
                continue
            own = done.points_mm[done.point_level == lc.level]
            pts["u"].append(np.maximum(lc.spread_mm, 1e-6))
            pts["sigma"].append(lc.uncertainty_mm)
            pts["d"].append(observed_distance(lc.points_mm, own, done.xray_points_mm.get(lc.level)))
            pts["e"].append(cKDTree(res.gt_base_mm[lc.level]).query(lc.points_mm)[0])
    return pts


def _plot(path: str, sets: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4.2))
    rates = np.linspace(0.05, 0.95, 19)
    a.plot([0, 1], [0, 1], "k--", lw=1, label="ideal")
    for name, pts in sets.items():
        sigma, e = np.concatenate(pts["sigma"]), np.concatenate(pts["e"])
        raw = coverage(np.concatenate(pts["u"]), e, 1.0, rates)
        cov = coverage(sigma, e, 1.0, rates)
        (line,) = a.plot(rates, [cov[p] for p in rates], "o-", ms=3, label=f"{name}: sigma")
        a.plot(rates, [raw[p] for p in rates], ":", color=line.get_color(), label=f"{name}: spread")
        edges = np.quantile(sigma, np.linspace(0, 1, 11))
        idx = np.clip(np.searchsorted(edges, sigma, side="right") - 1, 0, 9)
        b.plot(
            [sigma[idx == i].mean() for i in range(10)],
            [e[idx == i].mean() for i in range(10)],
            "o-",
            ms=3,
            label=name,
        )
    top = max(b.get_xlim()[1], b.get_ylim()[1])
    b.plot([0, top], [0, top * np.sqrt(2 / np.pi)], "k--", lw=1, label="calibrated")
    a.set(xlabel="nominal rate", ylabel="fraction of points covered", title="interval coverage")
    b.set(xlabel="published sigma (mm), decile mean", ylabel="mean error (mm)")
    a.legend(fontsize=8)
    b.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _fit(sets: dict, args: argparse.Namespace, weights: Path) -> ErrorScale:
    cat = {k: np.concatenate([np.concatenate(p[k]) for p in sets.values()]) for k in "ude"}
    # each set has the same say, however many points it holds
    sizes = [sum(len(x) for x in p["e"]) for p in sets.values()]
    per_point = np.concatenate([np.full(n, 1.0 / n) for n in sizes])
    scale = fit_error_scale(cat["u"], cat["d"], cat["e"], per_point)
    provenance = {
        "fitted_on": {name: len(p["u"]) for name, p in sets.items()},
        "set_weights": "equal per set",
        "points": len(cat["e"]),
        "weights_sha256": sha256_file(weights),
        "samples": args.samples,
        "us_snap_mm": args.us_snap_mm,
        "command": " ".join(
            ["usx measure uncertainty"]
            + ([f"--data {args.data} --split {args.split}"] if args.data else [])
            + ([f"--real {args.real}"] if args.real else [])
            + (["--loose"] if args.loose else [])
            + [f"--samples {args.samples} --us-snap-mm {args.us_snap_mm:g} --fit {args.fit}"]
        ),
    }
    scale = ErrorScale(scale.coef, provenance)
    scale.save(args.fit)
    return scale


def run(args: argparse.Namespace) -> dict:
    if args.samples < 1:
        raise SystemExit(f"--samples: expected >= 1, got {args.samples}")
    if not args.us_snap_mm >= 0:
        raise SystemExit(f"--us-snap-mm: expected >= 0, got {args.us_snap_mm}")
    live = args.pipeline_seeds or args.pipeline_meshes
    if live and (args.fit or Path(args.error_scale) != SHIPPED):
        raise SystemExit(
            "--pipeline-seeds/--pipeline-meshes: the live path publishes the shipped error "
            "scale and keeps no crop to fit on; use --fit and --error-scale with --data/--real only"
        )
    evalsets = load_sets(args, "usx measure uncertainty") if args.data or args.real else {}
    if not evalsets and not live:
        raise SystemExit(
            "usx measure uncertainty: give --data H5, --real DIR, --pipeline-seeds or"
            " --pipeline-meshes"
        )
    meshes = spine_from_meshes(args.pipeline_meshes) if args.pipeline_meshes else None
    model, weights = shipped_full_model()
    sets = {
        name: _points(es, model, args.samples, args.us_snap_mm) for name, es in evalsets.items()
    }
    if args.pipeline_seeds:
        spines = [generate_spine(seed) for seed in args.pipeline_seeds]
        sets["pipeline"] = _pipeline_points(spines, args.samples, args.us_snap_mm)
    if meshes is not None:
        sets["pipeline_meshes"] = _pipeline_points([meshes], args.samples, args.us_snap_mm)
    if args.fit:
        sigma_of = _fit(sets, args, weights)
    else:
        try:
            sigma_of = load_error_scale(args.error_scale)
        except ValueError as exc:
            raise SystemExit(f"--error-scale: {exc}") from None
    for pts in sets.values():
        if "sigma" not in pts:  # the pipeline's is what the completion published
            pts["sigma"] = [sigma_of(u, d) for u, d in zip(pts["u"], pts["d"], strict=True)]
    first = next(iter(sets.values()))
    scale = fit_scale(np.concatenate(first["u"]), np.concatenate(first["e"]))
    out: dict = {
        "weights": str(weights),
        "samples": args.samples,
        "us_snap_mm": args.us_snap_mm,
        "error_scale": {"coef": list(sigma_of.coef), "file": args.fit or args.error_scale},
        "spread_scale_fitted_on": next(iter(sets)),
        "spread_scale": scale,
    }
    for name, pts in sets.items():
        u, e = np.concatenate(pts["u"]), np.concatenate(pts["e"])
        sigma = np.concatenate(pts["sigma"])
        out[name] = {
            "vertebrae": len(pts["u"]),
            "points": len(u),
            "mean_error_mm": float(e.mean()),
            "mean_spread_mm": float(u.mean()),
            "mean_sigma_mm": float(sigma.mean()),
            "spearman_spread": rank_stats(pts["u"], pts["e"]),
            "spearman_distance_to_observed": rank_stats(pts["d"], pts["e"]),
            "spearman_sigma": rank_stats(pts["sigma"], pts["e"]),
            "coverage_spread": {str(p): v for p, v in coverage(u, e, 1.0).items()},
            "coverage_spread_scaled": {str(p): v for p, v in coverage(u, e, scale).items()},
            "coverage_sigma": {str(p): v for p, v in coverage(sigma, e, 1.0).items()},
        }
    if args.plot:
        _plot(args.plot, sets)
        out["plot"] = args.plot
    return out
