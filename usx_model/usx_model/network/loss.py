"""Training loss of the US-X Complete network (docs/model.md, loss) with schedules.

What is implemented, per output row (both the posterior and the prior path when the
model ran with ``gt`` in training mode, averaged over all rows):

    L = w_raw · CDp(coarse_raw) + w_high · CDp(coarse_high) + (w_fine + α(epoch)) · CDp(fine)
        + β(epoch) · (KL(N(0, I) ‖ p) + KL(sg(p) ‖ q))

CDp is the paper's cd_p = ½(mean √d1 + mean √d2) against the GT cloud. The reference's
separate ``coarse`` and ``fine`` terms are the same point set (docs/model.md), so they
are one term here with weight 1 + α. β ramps linearly from kl_weight/warmup to kl_weight
over the first ``kl_warmup_epochs`` epochs (0: constant kl_weight, as the reference).
KL terms are means over batch and latent dimensions; they are 0 for eval-mode outputs.
A training-mode forward without ``gt`` (train option ``prior_path: false``) reports the
fixed N(0, I) as p: KL(N(0, I) ‖ p) is then 0 and KL(p ‖ q) pulls q towards N(0, I).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import torch

from usx_model.network.coarse import Gaussian, kl_divergence
from usx_model.ops.chamfer import chamfer_distance


@dataclass(frozen=True)
class LossSchedule:
    """Weights and epoch schedules of the loss.

    Attributes:
        coarse_raw_weight, coarse_high_weight, fine_weight: CD term weights.
        alpha_epochs: epochs at which α steps to the next value of ``alpha_values``.
        alpha_values: len(alpha_epochs) + 1 values of α (extra fine weight).
        kl_weight: β after warm-up (the reference's constant 20).
        kl_warmup_epochs: epochs of linear β warm-up (0 = none).
    """

    coarse_raw_weight: float = 10.0
    coarse_high_weight: float = 0.5
    fine_weight: float = 1.0
    alpha_epochs: tuple[int, ...] = (5, 15, 30)
    alpha_values: tuple[float, ...] = (0.01, 0.1, 0.5, 1.0)
    kl_weight: float = 20.0
    kl_warmup_epochs: int = 0

    def __post_init__(self) -> None:
        if len(self.alpha_values) != len(self.alpha_epochs) + 1:
            raise ValueError(
                f"alpha_values: expected {len(self.alpha_epochs) + 1} values for "
                f"{len(self.alpha_epochs)} switch epochs, got {len(self.alpha_values)}"
            )
        if list(self.alpha_epochs) != sorted(self.alpha_epochs):
            raise ValueError(f"alpha_epochs: expected increasing epochs, got {self.alpha_epochs}")

    def alpha(self, epoch: int) -> float:
        """α at a 0-based epoch."""
        return float(self.alpha_values[bisect.bisect_right(self.alpha_epochs, epoch)])

    def beta(self, epoch: int) -> float:
        """KL weight at a 0-based epoch."""
        if self.kl_warmup_epochs <= 0:
            return float(self.kl_weight)
        return float(self.kl_weight) * min(1.0, (epoch + 1) / self.kl_warmup_epochs)


def paper_schedule() -> LossSchedule:
    """The reference's weights: α 0.01/0.1/0.5/1.0 switching at epochs 5/15/30, β = 20."""
    return LossSchedule()


def compact_schedule() -> LossSchedule:
    """Compressed schedule for short CPU runs (docs/model.md): α switches at 1/2/4,
    β warms up over 2 epochs."""
    return LossSchedule(alpha_epochs=(1, 2, 4), kl_warmup_epochs=2)


def completion_loss(
    outputs: dict, batch: dict, epoch: int, schedule: LossSchedule | None = None
) -> tuple[torch.Tensor, dict[str, float]]:
    """Total training loss and its parts.

    Args:
        outputs: ``USXComplete.forward`` output.
        batch: the batch it came from; ``gt`` (B, Ngt, 3) normalised complete shape.
        epoch: 0-based epoch, drives α and β.
        schedule: weights; default :func:`paper_schedule`.

    Returns:
        total: scalar tensor with gradient.
        parts: floats ``cd_coarse_raw``, ``cd_coarse_high``, ``cd_fine`` (cd_p, mean over
        rows), ``kl_rec``, ``kl_g``, ``alpha``, ``beta``, ``total``.
    """
    sched = schedule or paper_schedule()
    gt = batch.get("gt")
    if not isinstance(gt, torch.Tensor):
        raise ValueError("batch: the loss needs 'gt' (B, Ngt, 3) complete shapes")
    paths = int(outputs["n_paths"])
    if outputs["fine"].shape[0] != paths * gt.shape[0]:
        raise ValueError(
            f"outputs have {outputs['fine'].shape[0]} rows, expected {paths} x {gt.shape[0]}"
        )
    gt_rows = gt.repeat(paths, 1, 1)
    cd = {
        name: chamfer_distance(outputs[name], gt_rows).cd_p.mean()
        for name in ("coarse_raw", "coarse_high", "fine")
    }
    alpha, beta = sched.alpha(epoch), sched.beta(epoch)
    total = (
        sched.coarse_raw_weight * cd["coarse_raw"]
        + sched.coarse_high_weight * cd["coarse_high"]
        + (sched.fine_weight + alpha) * cd["fine"]
    )
    kl_rec = kl_g = torch.zeros((), device=gt.device)
    if "p_mu" in outputs:
        p = Gaussian(outputs["p_mu"], outputs["p_sigma"])
        q = Gaussian(outputs["q_mu"], outputs["q_sigma"])
        kl_rec = kl_divergence(Gaussian(torch.zeros_like(p.mu), torch.ones_like(p.sigma)), p)
        kl_g = kl_divergence(Gaussian(p.mu.detach(), p.sigma.detach()), q)
        total = total + beta * (kl_rec + kl_g)
    parts = {f"cd_{k}": float(v.detach()) for k, v in cd.items()}
    parts.update(
        kl_rec=float(kl_rec.detach()),
        kl_g=float(kl_g.detach()),
        alpha=alpha,
        beta=beta,
        total=float(total.detach()),
    )
    return total, parts
