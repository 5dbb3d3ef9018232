"""Human-readable outputs of an evaluation: Table-1-shaped markdown and PNG renders.

Table 1 of the paper: rows = methods, columns = whole / arch / body × (CD-L1 mm, CD×1e4,
EMD mm, F1@1 mm), each cell ``mean ± std (median)``; with ``usx evaluate --floor`` a last
row gives the sampling floor (``evaluation.floor``). A second table gives CD-L1 (mm) per
level L1–L5. Renders show the best, median and worst vertebra (by the reference method's
body CD-L1): lateral (y–z) and axial (x–y) views of GT (grey), US partial (blue), X-ray
points (green) and each method's prediction (red), methods side by side.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from usx_model.evaluation.gate import gate_markdown
from usx_model.evaluation.stats import METRICS, TABLE_SUBSETS, ordered_methods

if TYPE_CHECKING:
    from usx_model.evaluation.pipeline import EvalSet, Evaluation

_METRIC_LABELS = {"cd_l1_mm": "CD-L1 mm", "cd_x1e4": "CD×1e4", "emd": "EMD mm", "f1_1mm": "F1"}
_LEVELS = ("L1", "L2", "L3", "L4", "L5")
#: GT points drawn per panel (a subsample keeps the PNGs light and quick to write).
_GT_DRAW = 3000


def _cell(stat: Mapping | None, digits: int = 2) -> str:
    if not stat or stat.get("mean") is None:
        return "–"
    return f"{stat['mean']:.{digits}f} ± {stat['std']:.{digits}f} ({stat['median']:.{digits}f})"


def table1_markdown(results: Mapping) -> str:
    """The paper's Table 1 as markdown from the evaluation JSON."""
    head = ["method"] + [f"{s} {_METRIC_LABELS[k]}" for s in TABLE_SUBSETS for k in METRICS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m in ordered_methods(list(results["methods"])):
        per = results["methods"][m]
        cells = [_cell(per.get(s, {}).get(k)) for s in TABLE_SUBSETS for k in METRICS]
        lines.append("| " + " | ".join([m, *cells]) + " |")
    floor = results.get("floor")
    if floor:
        # the score of a perfect prediction: a surface sample of the true bone (floor.py)
        cells = [_cell(floor.get(s, {}).get(k)) for s in TABLE_SUBSETS for k in METRICS]
        name = f"floor: true surface, {floor['n_points']} points"
        if floor.get("at_mean"):
            name += f", at their mean: {', '.join(floor['at_mean'])}"
        lines.append("| " + " | ".join([name, *cells]) + " |")
    return "\n".join(lines)


def per_level_markdown(results: Mapping, metric: str = "cd_l1_mm") -> str:
    """CD-L1 (mm) per level: rows = (method, subset), columns = L1..L5."""
    lines = [
        "| method | subset | " + " | ".join(_LEVELS) + " |",
        "|---|---|" + "---|" * len(_LEVELS),
    ]
    for m in ordered_methods(list(results["per_level"])):
        per = results["per_level"][m]
        for s in TABLE_SUBSETS:
            cells = [_cell(per.get(lv, {}).get(s, {}).get(metric)) for lv in _LEVELS]
            lines.append(f"| {m} | {s} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def tests_markdown(results: Mapping) -> str:
    """Wilcoxon (and Shapiro-Wilk of the differences) p-values, one row per comparison."""
    if not results.get("wilcoxon"):
        return "No paired tests (the full model is not among the methods, or it is alone)."
    lines = ["| comparison | subset | metric | Wilcoxon p | Shapiro-Wilk p (diff.) | n |"]
    lines.append("|---|---|---|---|---|---|")
    for key, per in results["paired"].items():
        for s in TABLE_SUBSETS:
            for k in METRICS:
                t = per[s][k]
                w = "–" if t["wilcoxon"] is None else f"{t['wilcoxon']:.3g}"
                sh = "–" if t["shapiro"] is None else f"{t['shapiro']:.3g}"
                lines.append(f"| {key} | {s} | {k} | {w} | {sh} | {t['n']} |")
    return "\n".join(lines)


def full_markdown(results: Mapping) -> str:
    """Everything the ``table.md`` report holds."""
    n = results["n_vertebrae"]
    split = results.get("split", "anatomical")
    return "\n\n".join(
        [
            f"# Completion results ({n} vertebrae, arch/body split: {split})",
            "mean ± std (median); CD×1e4 on shapes normalised by the US-partial scale.",
            table1_markdown(results),
            "## CD-L1 (mm) per level",
            per_level_markdown(results),
            "## Paired tests against the full model",
            tests_markdown(results),
            "## Quality gate: all vertebrae against those published ok",
            gate_markdown(results),
        ]
    )


def write_reports(results: Mapping, report_dir: str | Path) -> list[Path]:
    """Write ``table.md`` and ``results.json`` into ``report_dir``; return their paths."""
    d = Path(report_dir)
    d.mkdir(parents=True, exist_ok=True)
    md, js = d / "table.md", d / "results.json"
    md.write_text(full_markdown(results) + "\n")
    js.write_text(json.dumps(results, indent=2, allow_nan=False) + "\n")
    return [md, js]


def pick_cases(values: np.ndarray) -> dict[str, int]:
    """Indices of the best (smallest), median and worst finite value of a (K,) array."""
    v = np.asarray(values, dtype=np.float64)
    idx = np.flatnonzero(np.isfinite(v))
    if idx.size == 0:
        return {}
    order = idx[np.argsort(v[idx], kind="stable")]
    return {
        "best": int(order[0]),
        "median": int(order[(len(order) - 1) // 2]),
        "worst": int(order[-1]),
    }


def render_case(
    path: str | Path,
    title: str,
    gt_mm: np.ndarray,
    us_mm: np.ndarray,
    xray_mm: np.ndarray,
    predictions_mm: Mapping[str, np.ndarray],
) -> Path:
    """One PNG: rows lateral (y–z) and axial (x–y), one column per method.

    Args:
        path: output PNG.
        title: figure title.
        gt_mm (M, 3), us_mm (N, 3), xray_mm (X, 3), predictions_mm {method: (P, 3)}: mm,
            one LPS frame (x left, y posterior, z superior).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = ordered_methods(list(predictions_mm))
    rng = np.random.default_rng(0)
    gt = gt_mm[rng.permutation(len(gt_mm))[:_GT_DRAW]]
    views = (
        ("lateral (y–z)", 1, 2, "y posterior (mm)", "z superior (mm)"),
        ("axial (x–y)", 0, 1, "x left (mm)", "y posterior (mm)"),
    )
    fig, axes = plt.subplots(2, len(names), figsize=(4.2 * len(names), 8.0), squeeze=False)
    for col, m in enumerate(names):
        for row, (view, a, b, la, lb) in enumerate(views):
            ax = axes[row, col]
            ax.scatter(gt[:, a], gt[:, b], s=1, c="0.7", label="GT")
            ax.scatter(us_mm[:, a], us_mm[:, b], s=1, c="tab:blue", alpha=0.5, label="US partial")
            if m != "us_only":  # the baseline never sees the X-ray
                ax.scatter(
                    xray_mm[:, a], xray_mm[:, b], s=1, c="tab:green", alpha=0.3, label="X-ray"
                )
            pr = predictions_mm[m]  # drawn last: the prediction is what the figure is about
            ax.scatter(pr[:, a], pr[:, b], s=1, c="tab:red", alpha=0.7, label="prediction")
            ax.set_aspect("equal")
            ax.set_title(f"{m}: {view}", fontsize=9)
            ax.set_xlabel(la, fontsize=8)
            ax.set_ylabel(lb, fontsize=8)
            ax.tick_params(labelsize=7)
    axes[0, 0].legend(loc="upper left", fontsize=7, markerscale=6)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def render_cases(
    report_dir: str | Path, evalset: EvalSet, evaluation: Evaluation, reference: str = "full"
) -> list[Path]:
    """Render the best / median / worst vertebra by ``reference``'s body CD-L1 (mm).

    Falls back to the first method when ``reference`` was not evaluated, and to the whole
    vertebra's CD-L1 when no body value is finite. Files are named
    ``case_<rank>_<vertebra name>.png``.
    """
    preds = evaluation.predictions
    ref = reference if reference in preds else ordered_methods(list(preds))[0]
    body_key = "body_cd_l1_mm" if evalset.gt_part is not None else "body_hs_cd_l1_mm"
    label = "body"
    values = np.array([r[body_key] for r in evaluation.rows[ref]], dtype=np.float64)
    if not np.isfinite(values).any():  # no prediction reached the body: rank by the whole
        label = "whole"
        values = np.array([r["cd_l1_mm"] for r in evaluation.rows[ref]], dtype=np.float64)
    out = []
    for rank, k in pick_cases(values).items():
        name = evalset.names[k]
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
        out.append(
            render_case(
                Path(report_dir) / f"case_{rank}_{safe}.png",
                f"{rank}: {name} ({ref} {label} CD-L1 {values[k]:.2f} mm)",
                evalset.gt[k],
                evalset.us[k],
                evalset.xray[k],
                {m: p[k] for m, p in preds.items()},
            )
        )
    return out
