"""Complete every evaluation vertebra with every method, score it, and summarise.

The observations are the stored US partial and X-ray points (mm, spine LPS frame); each
method completes them in batches with the posterior mean (``network.complete``,
``canonicalise="none"``, no samples), and the prediction is scored against the GT surface
samples with ``metrics.vertebra.vertebra_metrics``. The CD×1e4 normalisation scale is the
same for every method: the observation-only normaliser of ``network.prepare`` fitted on
the US partial FPS'ed to :data:`NORM_POINTS` points, i.e. the ``norm_scale_mm`` the
dataset builder stores, recomputed so that real vertebrae get it the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import h5py
import numpy as np
import torch

from usx_model.dataset.schema import SPLITS, read_samples
from usx_model.evaluation.gate import gate_summary, gate_vertebrae
from usx_model.evaluation.methods import Method
from usx_model.evaluation.stats import (
    ANATOMICAL_SUBSETS,
    HALFSPACE_SUBSETS,
    json_safe,
    metric_arrays,
    summarise,
)
from usx_model.metrics.vertebra import vertebra_metrics
from usx_model.network.inference import complete
from usx_model.network.prepare import prepare_observations
from usx_model.network.us_consistency import snap_to_us_surface

#: Np of the reference normaliser behind CD×1e4 (the dataset builder's ``norm_points``).
NORM_POINTS = 512


@dataclass
class EvalSet:
    """K vertebrae with their observations and ground truth (mm, one LPS frame each).

    Attributes:
        names: K identifiers (``<spine_id>-L<level>`` or the real file's stem).
        levels: (K,) int 1..5.
        us: K US partial clouds (N_i, 3). xray: K X-ray clouds (M_i, 3).
        gt: (K, M, 3) GT surface samples. gt_part: (K, M) uint8 part codes or None.
        split: ``anatomical`` (arch/body from gt_part) or ``halfspace`` (no labels).
    """

    names: list[str]
    levels: np.ndarray
    us: list[np.ndarray]
    xray: list[np.ndarray]
    gt: np.ndarray
    gt_part: np.ndarray | None
    split: str
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.names)

    def head(self, n: int) -> EvalSet:
        """The first ``n`` vertebrae (per-vertebra ``meta["real_cases"]`` cut alike)."""
        meta = dict(self.meta)
        if "real_cases" in meta:
            meta["real_cases"] = meta["real_cases"][:n]
        return replace(
            self,
            names=self.names[:n],
            levels=self.levels[:n],
            us=self.us[:n],
            xray=self.xray[:n],
            gt=self.gt[:n],
            gt_part=None if self.gt_part is None else self.gt_part[:n],
            meta=meta,
        )


@dataclass
class Evaluation:
    """Results: the JSON dict, per-vertebra metric rows and predictions per method."""

    results: dict
    rows: dict[str, list[dict]]
    predictions: dict[str, np.ndarray]
    scale_mm: np.ndarray


def dataset_eval_set(path: str | Path, split: str = "test", limit: int | None = None) -> EvalSet:
    """The vertebrae of one split (or ``all``) of a dataset file, in file order.

    Raises:
        FileNotFoundError: no such file. ValueError: not a dataset, bad split name, or no
        vertebra in the split (the message lists the splits the file has).
    """
    if split not in (*SPLITS, "all"):
        raise ValueError(f"--split: expected one of {(*SPLITS, 'all')}, got {split!r}")
    samples = read_samples(path, None if split == "all" else split)
    if len(samples) == 0:
        with h5py.File(path, "r") as f:
            present = sorted(set(f["split"].asstr()[...].tolist()))
        raise ValueError(
            f"{path} has no vertebrae in split {split!r} (it has {present or 'none'}); "
            "pass --split all or --split <one of those>"
        )
    if limit is not None:
        if limit < 1:
            raise ValueError(f"--limit: expected >= 1, got {limit}")
        samples = samples.select(np.arange(min(limit, len(samples))))
    names = [f"{s}-L{int(lv)}" for s, lv in zip(samples.spine_id, samples.level, strict=True)]
    return EvalSet(
        names=names,
        levels=samples.level.astype(int),
        us=list(samples.us_partial.astype(np.float64)),
        xray=list(samples.xray.astype(np.float64)),
        gt=samples.gt.astype(np.float64),
        gt_part=samples.gt_part.astype(np.uint8),
        split="anatomical",
        meta={"data": str(path), "data_split": split},
    )


def reference_scale_mm(us: Sequence[np.ndarray]) -> np.ndarray:
    """(K,) normaliser scale (mm per unit) of each US partial, Np = :data:`NORM_POINTS`."""
    obs = prepare_observations(list(us), None, NORM_POINTS, NORM_POINTS, use_xray=False)
    return np.array([n.scale_mm for n in obs.normalisers])


def predict(
    method: Method,
    evalset: EvalSet,
    device: str | torch.device = "cpu",
    batch_size: int = 16,
    progress: Callable[[int], None] | None = None,
    xray_snap: bool = True,
) -> np.ndarray:
    """Complete every vertebra of ``evalset`` with one method → (K, N_out, 3) mm.

    Posterior mean only (``n_samples=0``), inputs already LPS (``canonicalise="none"``).
    ``progress`` is called with the number of vertebrae done after each batch;
    ``xray_snap`` is ``complete``'s X-ray silhouette consistency.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size: expected >= 1, got {batch_size}")
    out = []
    for i in range(0, len(evalset), batch_size):
        sl = slice(i, i + batch_size)
        res = complete(
            evalset.us[sl],
            evalset.xray[sl],
            [evalset.names[j] for j in range(len(evalset))[sl]],
            method.model,
            device=device,
            n_samples=0,
            canonicalise="none",
            xray_snap=xray_snap,
        )
        out.append(res.points_mm)
        if progress:
            progress(min(i + batch_size, len(evalset)))
    return np.concatenate(out)


def score_one(
    pred_mm: np.ndarray, evalset: EvalSet, k: int, scale_mm: float, emd_points: int | None = 1024
) -> dict:
    """``vertebra_metrics`` of vertebra ``k``'s prediction (N, 3) mm against its GT."""
    part = None if evalset.gt_part is None else evalset.gt_part[k]
    return vertebra_metrics(
        pred_mm, evalset.gt[k], float(scale_mm), gt_part=part, emd_points=emd_points
    )


def evaluate(
    methods: Sequence[Method],
    evalset: EvalSet,
    device: str | torch.device = "cpu",
    batch_size: int = 16,
    emd_points: int | None = 1024,
    progress: Callable[[str, int], None] | None = None,
    xray_snap: bool = True,
    us_snap_mm: float = 0.0,
) -> Evaluation:
    """Predict and score every vertebra with every method; build the results JSON.

    Args:
        methods: from ``evaluation.methods.load_methods``.
        evalset: the vertebrae.
        device: where the networks run (metrics run on the CPU).
        batch_size: vertebrae per forward pass.
        emd_points: EMD subsample size (None: no EMD).
        progress: called with (stage, vertebrae done) — stage ``"<method> predict"`` or
            ``"<method> metrics"``.
        xray_snap: ``complete``'s X-ray silhouette consistency for methods with X-ray.
        us_snap_mm: move predicted points within this of the vertebra's US points onto
            their surface (``network.us_consistency``) before scoring; the gate judges the
            network's output before it, as live (0 = off).

    Returns:
        :class:`Evaluation`; ``results`` follows the JSON contract of ``usx evaluate``.
    """
    if len(evalset) == 0:
        raise ValueError("expected at least one vertebra to evaluate, got none")
    subsets = ANATOMICAL_SUBSETS if evalset.gt_part is not None else HALFSPACE_SUBSETS
    scale = reference_scale_mm(evalset.us)
    if not us_snap_mm >= 0:
        raise ValueError(f"us_snap_mm: expected >= 0, got {us_snap_mm}")
    raw, preds, rows, values, timing = {}, {}, {}, {}, {}
    for m in methods:
        t0 = time.perf_counter()
        cb = (lambda n, s=f"{m.name} predict": progress(s, n)) if progress else None
        raw[m.name] = predict(m, evalset, device, batch_size, cb, xray_snap)
        preds[m.name] = raw[m.name]
        if us_snap_mm > 0:
            preds[m.name] = np.stack(
                [
                    snap_to_us_surface(p, evalset.us[k], us_snap_mm)
                    for k, p in enumerate(raw[m.name])
                ]
            )
        t1 = time.perf_counter()
        rows[m.name] = []
        for k in range(len(evalset)):
            rows[m.name].append(score_one(preds[m.name][k], evalset, k, scale[k], emd_points))
            if progress:
                progress(f"{m.name} metrics", k + 1)
        t2 = time.perf_counter()
        values[m.name] = metric_arrays(rows[m.name], subsets)
        timing[m.name] = {
            "predict_s_per_vertebra": (t1 - t0) / len(evalset),
            "metrics_s_per_vertebra": (t2 - t1) / len(evalset),
        }
    gates = {
        m.name: gate_vertebrae(
            evalset,
            raw[m.name],
            m.model.config.variant.uses_xray,
            raw.get("us_only"),
        )
        for m in methods
    }
    results = summarise(values, evalset.levels)
    results["gate"] = gate_summary(values, gates)
    results.update(
        split=evalset.split,
        subsets_note=(
            "arch/body from GT part labels; arch_hs/body_hs = the paper's half-space cut"
            if evalset.split == "anatomical"
            else "no part labels: arch/body are the paper's half-space cut (= arch_hs/body_hs)"
        ),
        scale=f"US-partial normaliser (network.prepare), Np={NORM_POINTS}",
        weights={m.name: m.describe() for m in methods},
        timing=timing,
        device=str(device),
        xray_snap=xray_snap,
        us_snap_mm=us_snap_mm,
        **evalset.meta,
    )
    ref = "full" if "full" in rows else next(iter(rows))
    results["per_vertebra"] = []
    for k in range(len(evalset)):
        per = {m: _row_json(rows[m][k], subsets) for m in rows}
        for m in per:
            q = gates[m][k]
            per[m].update(status=q.status, confidence=q.confidence, quality=q.features)
        results["per_vertebra"].append(
            {
                "name": evalset.names[k],
                "level": int(evalset.levels[k]),
                "scale_mm": float(scale[k]),
                "method": ref,  # whose values the flat keys hold (whole vertebra, gate)
                **per[ref]["whole"],
                "status": gates[ref][k].status,
                "confidence": gates[ref][k].confidence,
                "methods": per,
            }
        )
    return Evaluation(json_safe(results), rows, preds, scale)


def _row_json(row: dict, subsets: dict[str, str]) -> dict:
    arrays = metric_arrays([row], subsets)
    return {s: {k: float(v[0]) for k, v in per.items()} for s, per in arrays.items()}


def save_predictions(path: str | Path, evalset: EvalSet, evaluation: Evaluation) -> Path:
    """Write one row per (vertebra, method) to an ``.npz`` readable without pickle.

    Arrays: ``pred`` (R, N, 3) and ``gt`` (R, M, 3) mm in the vertebra's frame,
    ``gt_part`` (R, M) uint8 (zeros without labels), ``level`` (R,) uint8,
    ``method`` (R,) and ``name`` (R,) fixed-width unicode, ``scale_mm`` (R,),
    ``us_partial`` (R, Np, 3) and ``xray`` (R, Nx, 3) when every vertebra has the same
    counts. Rows are vertebra-major (all methods of vertebra 0, then vertebra 1, ...).

    Raises:
        ValueError: the methods predict different point counts (no rectangular array).
    """
    preds = evaluation.predictions
    counts = {m: p.shape[1] for m, p in preds.items()}
    if len(set(counts.values())) != 1:
        raise ValueError(f"--save-predictions: methods predict different point counts {counts}")
    order = list(preds)
    k_idx = np.repeat(np.arange(len(evalset)), len(order))
    methods = np.array(order * len(evalset), dtype=np.str_)
    gt_part = (
        np.zeros(evalset.gt.shape[:2], np.uint8) if evalset.gt_part is None else evalset.gt_part
    )
    arrays = {
        "pred": np.stack([preds[m][k] for k, m in zip(k_idx, methods, strict=True)]),
        "gt": evalset.gt[k_idx],
        "gt_part": gt_part[k_idx].astype(np.uint8),
        "level": evalset.levels[k_idx].astype(np.uint8),
        "method": methods,
        "name": np.array([evalset.names[k] for k in k_idx], dtype=np.str_),
        "scale_mm": evaluation.scale_mm[k_idx],
    }
    for key, clouds in (("us_partial", evalset.us), ("xray", evalset.xray)):
        if len({c.shape for c in clouds}) == 1:
            arrays[key] = np.stack(clouds)[k_idx]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)
    return path
