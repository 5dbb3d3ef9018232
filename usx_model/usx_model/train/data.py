"""Dataset rows -> normalised network tensors, with the same code path as inference.

Every sample goes through ``network.prepare.prepare_observations`` (FPS to Np/Nx,
observation-only normaliser); the GT keeps its first ``n_gt`` points (the builder's GT
samples are i.i.d. area-uniform, so a prefix is a uniform random subset — and costs
nothing, where FPS of 8192 points would dominate the preparation) and is mapped with
the *same* normaliser. Nothing here looks at GT to place or scale a sample.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from usx_model.dataset.schema import VertebraSamples
from usx_model.network.config import CompletionConfig
from usx_model.network.prepare import prepare_observations, resample

#: Samples prepared per FPS call (bounds memory for large splits).
_CHUNK = 256


@dataclass
class PreparedSplit:
    """Normalised tensors of one split.

    Attributes:
        partial: (S, Np, 3) float32; xray: (S, Nx, 3) float32; gt: (S, n_gt, 3) float32.
        scale_mm: (S,) mm per network unit of each sample's normaliser.
        level: (S,) int64 1..5.
    """

    partial: torch.Tensor
    xray: torch.Tensor
    gt: torch.Tensor
    scale_mm: torch.Tensor
    level: torch.Tensor

    def __len__(self) -> int:
        return int(self.level.shape[0])

    def batch(self, idx: torch.Tensor | slice) -> dict[str, torch.Tensor]:
        return {"partial": self.partial[idx], "xray": self.xray[idx], "gt": self.gt[idx]}


def prepare_split(samples: VertebraSamples, config: CompletionConfig, n_gt: int) -> PreparedSplit:
    """Normalise every row of ``samples`` for ``config``'s point counts."""
    if len(samples) == 0:
        raise ValueError("the split has no samples")
    parts, xrays, gts, scales = [], [], [], []
    for start in range(0, len(samples), _CHUNK):
        rows = slice(start, start + _CHUNK)
        obs = prepare_observations(
            list(samples.us_partial[rows]),
            list(samples.xray[rows]),
            config.n_partial,
            config.n_xray,
            use_xray=True,
        )
        gt = samples.gt[rows].astype(np.float64)
        gt_rs = gt[:, :n_gt] if gt.shape[1] >= n_gt else resample(list(gt), n_gt)
        parts.append(obs.partial.float())
        xrays.append(obs.xray.float())
        gts.append(
            torch.from_numpy(
                np.stack([n.normalise(g) for n, g in zip(obs.normalisers, gt_rs, strict=True)])
            )
        )
        scales.extend(n.scale_mm for n in obs.normalisers)
    return PreparedSplit(
        partial=torch.cat(parts),
        xray=torch.cat(xrays),
        gt=torch.cat(gts).float(),
        scale_mm=torch.tensor(scales, dtype=torch.float32),
        level=torch.from_numpy(samples.level.astype(np.int64)),
    )


def random_rotations(n: int, max_deg: float, generator: torch.Generator) -> torch.Tensor:
    """(n, 3, 3) rotations with independent uniform angles in ±max_deg about x, y, z."""
    ang = (torch.rand((n, 3), generator=generator) * 2 - 1) * math.radians(max_deg)
    c, s = ang.cos(), ang.sin()
    one, zero = torch.ones(n), torch.zeros(n)
    rx = torch.stack([one, zero, zero, zero, c[:, 0], -s[:, 0], zero, s[:, 0], c[:, 0]], 1)
    ry = torch.stack([c[:, 1], zero, s[:, 1], zero, one, zero, -s[:, 1], zero, c[:, 1]], 1)
    rz = torch.stack([c[:, 2], -s[:, 2], zero, s[:, 2], c[:, 2], zero, zero, zero, one], 1)
    return rz.view(n, 3, 3) @ ry.view(n, 3, 3) @ rx.view(n, 3, 3)


def rotate_batch(batch: dict[str, torch.Tensor], rot: torch.Tensor) -> dict[str, torch.Tensor]:
    """Apply per-sample rotations (B, 3, 3) about the normalised origin to every cloud."""
    return {k: v @ rot.transpose(1, 2) for k, v in batch.items()}
