"""Per-vertebra metrics: CD-L1 (mm), CD-L2 ×1e4 on normalised shapes, EMD (mm), F1@1 mm.

Computed for the whole vertebra and for arch and body, split two ways:

- anatomical (keys ``arch_*``, ``body_*``): GT points by their part label ``gt_part``
  (1 = body, 2..7 = arch, ``usx_model.base.parts``); each predicted point takes the
  part of its nearest GT point.
- half-space (keys ``arch_hs_*``, ``body_hs_*``), the paper's split for comparability:
  ȳ = GT centroid y; arch = y > ȳ (+y posterior), body = y <= ȳ, for GT and prediction.
  Points must then be in an LPS-aligned frame (y posterior).

Per subset: ``cd_l1_mm`` = ½(mean d_pg + mean d_gp) in mm (the paper's cd_p);
``cd_l2_x1e4`` = (mean d_pg² + mean d_gp²) / scale_mm² × 1e4 (the paper's cd_t on
shapes normalised by ``scale_mm``); ``f1`` at ``f1_threshold_mm``; ``emd_mm``, exact
assignment after FPS of both clouds to min(N_pred, N_gt, emd_points) points (the paper
FPS'es to 1024). A subset empty in prediction or GT gives NaN for that subset.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.spatial import cKDTree

from usx_model.base.parts import Part
from usx_model.ops.emd import earth_movers_distance
from usx_model.ops.fps import farthest_point_sample

#: The paper's F1 threshold (squared 1e-4 on ~0.1 m units) ≈ 1 mm.
DEFAULT_F1_THRESHOLD_MM = 1.0

_KEYS = ("cd_l1_mm", "cd_l2_x1e4", "f1", "emd_mm")


def _points(name: str, a: np.ndarray | torch.Tensor) -> torch.Tensor:
    t = torch.as_tensor(a.detach().cpu() if isinstance(a, torch.Tensor) else np.asarray(a))
    if t.ndim != 2 or t.shape[1] != 3:
        raise ValueError(f"{name}: expected (N, 3) float points, got {tuple(t.shape)}")
    if t.shape[0] == 0:
        raise ValueError(f"{name}: empty cloud (0 points)")
    t = t.to(torch.float64)
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name}: points contain NaN or Inf")
    return t


def anatomical_split(
    pred: torch.Tensor, gt: torch.Tensor, gt_part: np.ndarray
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Masks {"arch": (pred_mask, gt_mask), "body": ...} from GT part labels.

    Args:
        pred: (N, 3); gt: (M, 3); gt_part: (M,) part codes 1..7.
    """
    part = torch.as_tensor(np.asarray(gt_part)).long()
    if part.shape != (gt.shape[0],):
        raise ValueError(f"gt_part: expected ({gt.shape[0]},) labels, got {tuple(part.shape)}")
    codes = {int(p) for p in Part}
    bad = sorted(set(part.unique().tolist()) - codes)
    if bad:
        raise ValueError(f"gt_part: expected part codes {sorted(codes)}, got {bad}")
    nearest = torch.as_tensor(cKDTree(gt.numpy()).query(pred.numpy())[1])
    gt_body = part == int(Part.BODY)
    pred_body = gt_body[nearest]
    return {"arch": (~pred_body, ~gt_body), "body": (pred_body, gt_body)}


def halfspace_split(
    pred: torch.Tensor, gt: torch.Tensor
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """The paper's masks: arch = y > GT centroid y, body = the rest (for both clouds)."""
    y0 = gt[:, 1].mean()
    pa, ga = pred[:, 1] > y0, gt[:, 1] > y0
    return {"arch_hs": (pa, ga), "body_hs": (~pa, ~ga)}


def _emd_mm(pred: torch.Tensor, gt: torch.Tensor, emd_points: int) -> float:
    n = min(pred.shape[0], gt.shape[0], emd_points)
    p = pred[farthest_point_sample(pred[None], n)[0]]
    g = gt[farthest_point_sample(gt[None], n)[0]]
    return float(earth_movers_distance(p.numpy(), g.numpy())[0])


def _subset_metrics(
    pred: torch.Tensor, gt: torch.Tensor, scale_mm: float, tau_mm: float, emd_points: int | None
) -> dict[str, float]:
    if pred.shape[0] == 0 or gt.shape[0] == 0:
        return dict.fromkeys(_KEYS, math.nan)
    # Exact nearest neighbours with k-d trees: the same values as the ops' brute-force
    # Chamfer/F-score (tested against each other), ~50x faster on 4096 x 8192 clouds.
    p, g = pred.numpy(), gt.numpy()
    d_pg = cKDTree(g).query(p)[0]
    d_gp = cKDTree(p).query(g)[0]
    precision, recall = float(np.mean(d_pg < tau_mm)), float(np.mean(d_gp < tau_mm))
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return {
        "cd_l1_mm": 0.5 * (float(d_pg.mean()) + float(d_gp.mean())),
        "cd_l2_x1e4": (float(np.mean(d_pg**2)) + float(np.mean(d_gp**2))) / scale_mm**2 * 1e4,
        "f1": f1,
        "emd_mm": _emd_mm(pred, gt, emd_points) if emd_points else math.nan,
    }


def vertebra_metrics(
    pred_mm: np.ndarray | torch.Tensor,
    gt_mm: np.ndarray | torch.Tensor,
    scale_mm: float,
    gt_part: np.ndarray | None = None,
    f1_threshold_mm: float = DEFAULT_F1_THRESHOLD_MM,
    emd_points: int | None = 1024,
) -> dict[str, float]:
    """All metrics of one predicted vertebra against its ground truth.

    Args:
        pred_mm: (N, 3) prediction, mm.
        gt_mm: (M, 3) ground truth, mm, same frame.
        scale_mm: the normalisation scale (``Normaliser.scale_mm``) for ``cd_l2_x1e4``.
        gt_part: optional (M,) part codes; without them the anatomical keys are absent.
        f1_threshold_mm: F1 distance threshold.
        emd_points: EMD subsample size (None: skip EMD, values NaN).

    Returns:
        Flat dict of floats: ``{key}`` for the whole shape and ``{subset}_{key}`` for
        subsets ``arch``, ``body`` (with gt_part), ``arch_hs``, ``body_hs``; keys
        ``cd_l1_mm``, ``cd_l2_x1e4``, ``f1``, ``emd_mm``.
    """
    pred, gt = _points("pred_mm", pred_mm), _points("gt_mm", gt_mm)
    if not scale_mm > 0:
        raise ValueError(f"scale_mm: expected > 0, got {scale_mm}")
    out = _subset_metrics(pred, gt, scale_mm, f1_threshold_mm, emd_points)
    splits = halfspace_split(pred, gt)
    if gt_part is not None:
        splits = {**anatomical_split(pred, gt, gt_part), **splits}
    for name, (pm, gm) in splits.items():
        sub = _subset_metrics(pred[pm], gt[gm], scale_mm, f1_threshold_mm, emd_points)
        out.update({f"{name}_{k}": v for k, v in sub.items()})
    return out
