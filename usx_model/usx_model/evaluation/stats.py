"""Aggregate per-vertebra metrics into the evaluation JSON and test methods against each other.

Names in the JSON (the contract other tools read) versus ``metrics.vertebra`` keys:

- metrics: ``cd_l1_mm`` (CD-L1, mm), ``cd_x1e4`` (the paper's CD: cd_t on normalised
  shapes × 1e4, ``cd_l2_x1e4``), ``emd`` (EMD, mm, ``emd_mm``), ``f1_1mm`` (F1 at 1 mm, ``f1``);
- subsets: ``whole``, ``arch``, ``body`` (anatomical part labels when the data has them,
  otherwise the paper's half-space cut: see ``split`` in the JSON) plus always the
  half-space subsets ``arch_hs``, ``body_hs``.

Statistics: mean, standard deviation (population, ``ddof=0``, as ``np.std``) and median
over the vertebrae where the value is finite (an empty subset gives NaN and is left out;
``n`` says how many remained). Between the reference method (``full``) and each other
method: the Wilcoxon signed-rank test (two-sided, ``scipy.stats.wilcoxon``) on the paired
per-vertebra values, and the Shapiro-Wilk test of the paired differences, whose small
p-values (non-normal differences) are why a rank test is used rather than a paired t-test.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from scipy import stats

#: JSON metric name -> ``metrics.vertebra`` key suffix.
METRICS: dict[str, str] = {
    "cd_l1_mm": "cd_l1_mm",
    "cd_x1e4": "cd_l2_x1e4",
    "emd": "emd_mm",
    "f1_1mm": "f1",
}

#: JSON subset -> ``metrics.vertebra`` key prefix, with anatomical part labels.
ANATOMICAL_SUBSETS: dict[str, str] = {
    "whole": "",
    "arch": "arch_",
    "body": "body_",
    "arch_hs": "arch_hs_",
    "body_hs": "body_hs_",
}

#: Without part labels, arch/body are the half-space subsets (the paper's split).
HALFSPACE_SUBSETS: dict[str, str] = {
    "whole": "",
    "arch": "arch_hs_",
    "body": "body_hs_",
    "arch_hs": "arch_hs_",
    "body_hs": "body_hs_",
}

#: The subsets of the paper's Table 1, in column order.
TABLE_SUBSETS: tuple[str, ...] = ("whole", "arch", "body")

#: Method order of the tables (the paper's method first, then baseline and ablations).
METHOD_ORDER: tuple[str, ...] = ("full", "us_only", "ef_only", "lf_only")

#: Fewest pairs for the Shapiro-Wilk test (scipy's minimum).
_MIN_SHAPIRO = 3


def metric_arrays(
    rows: Sequence[Mapping[str, float]], subsets: Mapping[str, str]
) -> dict[str, dict[str, np.ndarray]]:
    """Per-vertebra values as arrays: ``{subset: {metric: (K,) float64}}``.

    Args:
        rows: K dicts from ``metrics.vertebra.vertebra_metrics``.
        subsets: JSON subset name -> metric key prefix (:data:`ANATOMICAL_SUBSETS` or
            :data:`HALFSPACE_SUBSETS`).

    Raises:
        ValueError: a row lacks a key the subsets need (e.g. anatomical without labels).
    """
    out: dict[str, dict[str, np.ndarray]] = {}
    for subset, prefix in subsets.items():
        out[subset] = {}
        for name, suffix in METRICS.items():
            key = prefix + suffix
            missing = [i for i, r in enumerate(rows) if key not in r]
            if missing:
                raise ValueError(f"metric {key!r} missing for vertebrae {missing[:5]}")
            out[subset][name] = np.array([float(r[key]) for r in rows], dtype=np.float64)
    return out


def aggregate(values: np.ndarray) -> dict[str, float | int | None]:
    """``{"mean", "std", "median", "n"}`` of the finite entries of a (K,) array.

    ``std`` is the population standard deviation (``np.std``, ddof=0); with no finite
    entry the three statistics are None (JSON null).
    """
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return {"mean": None, "std": None, "median": None, "n": 0}
    return {
        "mean": float(v.mean()),
        "std": float(v.std()),
        "median": float(np.median(v)),
        "n": int(v.size),
    }


def paired_tests(reference: np.ndarray, other: np.ndarray) -> dict[str, float | int | None]:
    """Wilcoxon signed-rank p-value and Shapiro-Wilk p-value of the paired differences.

    Args:
        reference, other: (K,) values of the same vertebrae under two methods; pairs with
            a NaN on either side are dropped.

    Returns:
        ``{"wilcoxon": p, "shapiro": p, "n": pairs, "median_difference": median(other -
        reference)}``; a p-value is None when it is undefined (no pairs, every difference
        zero, or fewer than 3 pairs for Shapiro-Wilk).

    Raises:
        ValueError: the arrays differ in length.
    """
    a = np.asarray(reference, dtype=np.float64).reshape(-1)
    b = np.asarray(other, dtype=np.float64).reshape(-1)
    if a.shape != b.shape:
        raise ValueError(f"paired values: expected equal lengths, got {a.shape} and {b.shape}")
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    diff = b - a
    out: dict[str, float | int | None] = {
        "wilcoxon": None,
        "shapiro": None,
        "n": int(diff.size),
        "median_difference": float(np.median(diff)) if diff.size else None,
    }
    if diff.size and np.any(diff != 0):
        out["wilcoxon"] = _finite_or_none(stats.wilcoxon(a, b).pvalue)
    if diff.size >= _MIN_SHAPIRO and np.ptp(diff) > 0:
        out["shapiro"] = _finite_or_none(stats.shapiro(diff).pvalue)
    return out


def _finite_or_none(x: float) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def ordered_methods(names: Sequence[str]) -> list[str]:
    """Method names in table order (:data:`METHOD_ORDER` first, then the rest sorted)."""
    known = [m for m in METHOD_ORDER if m in names]
    return known + sorted(set(names) - set(known))


def summarise(
    values: Mapping[str, Mapping[str, Mapping[str, np.ndarray]]],
    levels: np.ndarray,
    reference: str = "full",
) -> dict:
    """The evaluation JSON's statistics.

    Args:
        values: ``{method: {subset: {metric: (K,) values}}}``, the same K vertebrae (same
            order) for every method.
        levels: (K,) level 1..5 of each vertebra.
        reference: the method the others are tested against.

    Returns:
        ``{"methods": {m: {subset: {metric: aggregate}}}, "per_level": {m: {"L1": ...}},
        "wilcoxon": {"<ref>_vs_<m>": {subset: {metric: p}}}, "shapiro": {same shape},
        "paired": {same shape, full paired_tests dicts}, "n_vertebrae": K}``; the tests are
        empty when ``reference`` is not among the methods.
    """
    levels = np.asarray(levels).astype(int).reshape(-1)
    methods = ordered_methods(list(values))
    out: dict = {"methods": {}, "per_level": {}, "wilcoxon": {}, "shapiro": {}, "paired": {}}
    for m in methods:
        out["methods"][m] = {
            s: {k: aggregate(v) for k, v in per.items()} for s, per in values[m].items()
        }
        out["per_level"][m] = {
            f"L{lv}": {
                s: {k: aggregate(v[levels == lv]) for k, v in per.items()}
                for s, per in values[m].items()
            }
            for lv in sorted(set(levels.tolist()))
        }
    if reference in values:
        for m in methods:
            if m == reference:
                continue
            key = f"{reference}_vs_{m}"
            paired = {
                s: {k: paired_tests(v, values[m][s][k]) for k, v in per.items()}
                for s, per in values[reference].items()
            }
            out["paired"][key] = paired
            out["wilcoxon"][key] = {
                s: {k: t["wilcoxon"] for k, t in per.items()} for s, per in paired.items()
            }
            out["shapiro"][key] = {
                s: {k: t["shapiro"] for k, t in per.items()} for s, per in paired.items()
            }
    out["n_vertebrae"] = int(levels.size)
    return out


def json_safe(obj: object) -> object:
    """Replace NaN/Inf floats with None and numpy scalars with Python ones (strict JSON)."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
