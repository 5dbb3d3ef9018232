"""The quality gate over an evaluation set: status and confidence per vertebra and method,
and the statistics of all vertebrae against the ``ok`` ones only.

The evaluation sets hold each vertebra in its spine's LPS frame (``evaluation.pipeline``);
the US partial is the network's input crop (neighbours included for spines, the loose
vertebra alone for loose real meshes). The gate reads what the completion node gives it
live: the vertebra's own points (here by an ideal split, :func:`own_points`) in the
vertebra's own frame (:func:`gate_frames`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from usx_model.base.points import nearest_distance
from usx_model.completion.quality import (
    OK,
    US_ONLY_FALLBACK,
    VertebraQuality,
    assess,
    level_frame,
    quality_features,
)
from usx_model.evaluation.stats import aggregate

if TYPE_CHECKING:  # the pipeline imports this module
    from usx_model.evaluation.pipeline import EvalSet

#: Verdicts that publish a vertebra as usable: a US-only model's pass is its fallback status.
PASSED = (OK, US_ONLY_FALLBACK)
#: A clean crop point this close to the vertebra's true surface is its own, mm: every
#: simulated US point of a loose vertebra (no neighbours) lies within it (the simulator's
#: noise takes 5 % beyond 1.5 mm); a neighbour's lie farther, except at the facet joints.
OWN_MM = 3.0


def own_points(us: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(N,) bool: which clean crop points (N, 3) lie within :data:`OWN_MM` of the
    vertebra's true surface samples ``gt`` (M, 3), i.e. are its own, not a neighbour's."""
    return nearest_distance(us, gt) <= OWN_MM


def gate_frames(evalset: EvalSet) -> list[np.ndarray]:
    """(3, 3) per vertebra: the frame the live gate measures it in (:func:`level_frame`),
    from the centroids of the clean X-ray points of its spine's vertebrae (names
    ``<spine>-L<level>``); identity for a vertebra without neighbours."""
    cases = evalset.meta.get("real_cases")
    spines: dict[str, dict[int, np.ndarray]] = {}
    for k, name in enumerate(evalset.names):
        if cases is None or cases[k]["neighbours"]:
            spine = name.rsplit("-L", 1)[0]
            spines.setdefault(spine, {})[int(evalset.levels[k])] = evalset.xray[k].mean(axis=0)
    frames = []
    for k, name in enumerate(evalset.names):
        centroids = spines.get(name.rsplit("-L", 1)[0], {}) if "-L" in name else {}
        frames.append(level_frame(np.eye(3), centroids, int(evalset.levels[k])))
    return frames


def gate_vertebrae(
    evalset: EvalSet,
    predictions: np.ndarray,
    used_xray: bool,
    us_only: np.ndarray | None = None,
) -> list[VertebraQuality]:
    """The gate's verdict on each of the set's K predictions (K, N, 3) mm, LPS frames.

    ``us_only``: the US-only model's (K, L, 3) predictions of the same vertebrae, for the
    X-ray level check of a model that takes the X-ray (None: not checked).
    """
    uo = [None] * len(predictions) if us_only is None or not used_xray else list(us_only)
    frames = gate_frames(evalset)
    out = []
    for k, (p, o) in enumerate(zip(predictions, uo, strict=True)):
        own = evalset.us[k][own_points(evalset.us[k], evalset.gt[k])]
        x = evalset.xray[k] if used_xray else None
        out.append(assess(quality_features(own, p, frames[k], x, None, o), used_xray))
    return out


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
