"""F-score of a predicted cloud at a distance threshold (Tatarchenko et al. 2019)."""

from __future__ import annotations

from typing import NamedTuple

import torch

from usx_model.ops._checks import check_points, check_same_batch
from usx_model.ops.chamfer import nearest_sq_dist


class F1Result(NamedTuple):
    """Per-cloud (B,) F-score, precision and recall."""

    f1: torch.Tensor
    precision: torch.Tensor
    recall: torch.Tensor


def f_score(pred: torch.Tensor, gt: torch.Tensor, threshold: float) -> F1Result:
    """F-score at Euclidean distance ``threshold`` (same unit as the points); no gradient.

    precision = fraction of predicted points with a GT point closer than threshold,
    recall = fraction of GT points with a predicted point closer than threshold,
    F = 2PR/(P+R), defined as 0 when P + R == 0. The paper's squared threshold 1e-4
    on normalised shapes corresponds to ``threshold = 0.01``.

    Args:
        pred: (B, N, 3), gt: (B, M, 3).
        threshold: distance > 0.

    Returns:
        :class:`F1Result` of (B,) tensors.
    """
    check_points("pred", pred)
    check_points("gt", gt)
    check_same_batch("pred", pred, "gt", gt)
    if not threshold > 0:
        raise ValueError(f"threshold: expected a distance > 0, got {threshold}")
    with torch.no_grad():
        d_pg, _ = nearest_sq_dist(pred.detach(), gt.detach())
        d_gp, _ = nearest_sq_dist(gt.detach(), pred.detach())
        tau2 = float(threshold) ** 2
        precision = (d_pg < tau2).to(pred.dtype).mean(1)
        recall = (d_gp < tau2).to(pred.dtype).mean(1)
        denom = precision + recall
        f1 = torch.where(denom > 0, 2 * precision * recall / denom.clamp_min(1e-30), 0.0)
    return F1Result(f1, precision, recall)
