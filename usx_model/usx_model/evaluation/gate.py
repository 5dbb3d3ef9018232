"""The quality gate over an evaluation set: status and confidence per vertebra and method,
and the statistics of all vertebrae against the ``ok`` ones only.

The evaluation sets hold each vertebra in its own LPS frame (``evaluation.pipeline``), so
the patient axes are the identity; the US partial is the network's input crop (neighbours
included for phantom spines, the loose vertebra alone for real meshes).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np

from usx_model.completion.quality import (
    OK,
    US_ONLY_FALLBACK,
    VertebraQuality,
    assess,
    quality_features,
)
from usx_model.evaluation.stats import aggregate

#: Verdicts that publish a vertebra as usable: a US-only model's pass is its fallback status.
PASSED = (OK, US_ONLY_FALLBACK)


def gate_vertebrae(
    us: Sequence[np.ndarray],
    xray: Sequence[np.ndarray],
    predictions: np.ndarray,
    used_xray: bool,
    us_only: np.ndarray | None = None,
) -> list[VertebraQuality]:
    """The gate's verdict on each of K predictions (K, N, 3) mm, LPS frames.

    ``us_only``: the US-only model's (K, L, 3) predictions of the same vertebrae, for the
    X-ray level check of a model that takes the X-ray (None: not checked).
    """
    uo = [None] * len(predictions) if us_only is None or not used_xray else list(us_only)
    return [
        assess(quality_features(u, p, np.eye(3), x if used_xray else None, None, o), used_xray)
        for u, x, p, o in zip(us, xray, predictions, uo, strict=True)
    ]


def gate_summary(
    values: Mapping[str, Mapping[str, Mapping[str, np.ndarray]]],
    gates: Mapping[str, Sequence[VertebraQuality]],
) -> dict:
    """``{method: {"statuses": {status: n}, "ok_fraction", "ok_only": {subset: {metric:
    aggregate}}}}`` from ``metric_arrays`` values and the verdicts in the same order;
    "ok" counts the statuses in :data:`PASSED`."""
    out = {}
    for m, verdicts in gates.items():
        ok = np.array([q.status in PASSED for q in verdicts])
        out[m] = {
            "statuses": dict(Counter(q.status for q in verdicts)),
            "ok_fraction": float(ok.mean()) if len(ok) else None,
            "ok_only": {
                s: {k: aggregate(v[ok]) for k, v in per.items()} for s, per in values[m].items()
            },
        }
    return out


def gate_markdown(results: Mapping) -> str:
    """Table: per method, vertebrae ok, and CD-L1 (mm) of all against ok-only."""
    gate = results.get("gate")
    if not gate:
        return "(no quality gate in these results)"
    lines = [
        "| method | ok / all | subset | CD-L1 all (mm) | CD-L1 ok only (mm) |",
        "|---|---|---|---|---|",
    ]
    for m, g in gate.items():
        n_all = sum(g["statuses"].values())
        n_ok = sum(g["statuses"].get(k, 0) for k in PASSED)
        for s, per in g["ok_only"].items():
            a, o = results["methods"][m][s]["cd_l1_mm"], per["cd_l1_mm"]
            lines.append(f"| {m} | {n_ok} / {n_all} | {s} | {_fmt(a)} | {_fmt(o)} |")
    return "\n".join(lines)


def _fmt(a: Mapping) -> str:
    if a["mean"] is None:
        return "–"
    return f"{a['mean']:.3f} ± {a['std']:.3f} ({a['median']:.3f})"
