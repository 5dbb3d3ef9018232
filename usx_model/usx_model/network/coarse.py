"""Coarse stage (PMNet-like): PCN encoders, early fusion, VAE prior/posterior, FC decoder.

docs/model.md, coarse stage. Differences from the reference: inference uses the posterior mean
(``sample=False``), the prior path sees FPS(GT, Np) rather than a fixed 4096-point GT,
the decoder reads the fused US + X-ray code rather than the US code alone, and
blocks a variant does not use are not built at all.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from usx_model.network.config import CompletionConfig

#: Added to softplus(σ_raw) so that KL terms stay finite.
SIGMA_FLOOR = 1e-5


class ResBlock(nn.Module):
    """Pre-activation residual MLP: y = W2·ReLU(W1·ReLU(x)) + Wr·x, W1: i→i, W2, Wr: i→o."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(c_in, c_in)
        self.fc2 = nn.Linear(c_in, c_out)
        self.shortcut = nn.Linear(c_in, c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.relu(self.fc1(F.relu(x)))) + self.shortcut(x)


class PCNEncoder(nn.Module):
    """PCN encoder: shared MLP 3→h1→f1, max, tile and concat, 2·f1→h2→G, max.

    Input (B, N, 3) points, output (B, G) global feature with no final activation.
    """

    def __init__(self, widths: tuple[int, int, int, int]) -> None:
        super().__init__()
        h1, f1, h2, g = widths
        # Shared per-point MLPs as Linear on (B, N, C): same maths as 1x1 Conv1d, several
        # times faster on CPU.
        self.conv1 = nn.Linear(3, h1)
        self.conv2 = nn.Linear(h1, f1)
        self.conv3 = nn.Linear(2 * f1, h2)
        self.conv4 = nn.Linear(h2, g)

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        x = self.conv2(F.relu(self.conv1(points)))
        pooled = x.amax(dim=1, keepdim=True)
        if torch.is_grad_enabled():
            x = self.conv3(torch.cat([pooled.expand_as(x), x], dim=2))
        else:
            # W·[pooled; x] = W_p·pooled + W_x·x: the pooled part once per cloud.
            f = x.shape[2]
            w = self.conv3.weight
            x = F.linear(x, w[:, f:], self.conv3.bias).add_(F.linear(pooled, w[:, :f]))
        return self.conv4(F.relu(x)).amax(dim=1)


class Gaussian(NamedTuple):
    """Diagonal Gaussian: mean and standard deviation, both (B, Z)."""

    mu: torch.Tensor
    sigma: torch.Tensor


def _split_gaussian(h: torch.Tensor) -> Gaussian:
    mu, raw = h.chunk(2, dim=1)
    # The floor keeps log σ and 1/σ finite when softplus underflows.
    return Gaussian(mu, F.softplus(raw) + SIGMA_FLOOR)


class CoarseNet(nn.Module):
    """Encoders, fusion, latent distributions, generator and FC decoder.

    ``us`` (B, Np, 3) and ``xray`` (B, Nx, 3) give the posterior q; the complete shape
    (B, Np, 3) gives the prior p (training only, Siamese with the US encoder). The
    decoder's global code is g_obs + Gen(z), where g_obs is the observation code: the
    fused US + X-ray feature with early fusion, g_us otherwise. The reference decodes
    g_us + Gen(z), so its X-ray reaches the decoder only through z (docs/model.md);
    with its KL weight the posterior collapses to N(0, I) and early fusion is lost.
    """

    def __init__(self, cfg: CompletionConfig) -> None:
        super().__init__()
        self.cfg = cfg
        g, z = cfg.pcn_widths[3], cfg.z_dim
        self.encoder_us = PCNEncoder(cfg.pcn_widths)
        if cfg.variant.early_fusion:
            self.encoder_xray = PCNEncoder(cfg.pcn_widths)
            self.fusion = nn.Sequential(
                nn.Linear(2 * g, cfg.fusion_hidden),
                nn.ReLU(),
                nn.Linear(cfg.fusion_hidden, g),
                nn.ReLU(),
            )
        self.posterior = nn.Sequential(ResBlock(g, g), ResBlock(g, 2 * z))
        self.prior = ResBlock(g, 2 * z)
        self.generator = ResBlock(z, g)
        h = cfg.decoder_hidden
        self.decoder = nn.Sequential(
            nn.Linear(g, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(), nn.Linear(h, 3 * cfg.n_coarse)
        )

    def encode(self, us: torch.Tensor, xray: torch.Tensor | None) -> tuple[torch.Tensor, Gaussian]:
        """Observation code g_obs (B, G) and the posterior q(z | US[, X-ray]).

        g_obs is the fused US + X-ray feature with early fusion, else the US feature.
        """
        g_obs = self.encoder_us(us)
        if self.cfg.variant.early_fusion:
            g_obs = self.fusion(torch.cat([g_obs, self.encoder_xray(xray)], dim=1))
        return g_obs, _split_gaussian(self.posterior(g_obs))

    def encode_prior(self, complete: torch.Tensor) -> Gaussian:
        """Prior p(z | complete shape), complete: (B, Np, 3)."""
        return _split_gaussian(self.prior(self.encoder_us(complete)))

    def decode(self, g_obs: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """coarse_raw (B, n_coarse, 3) from the observation code g_obs (B, G) and z (B, Z)."""
        out = self.decoder(g_obs + self.generator(z))
        # Channel-major reshape as in the reference: (B, 3, n) then to points.
        return out.view(-1, 3, self.cfg.n_coarse).transpose(1, 2)


def kl_divergence(p: Gaussian, q: Gaussian) -> torch.Tensor:
    """Mean over batch and dimensions of KL(p ‖ q) for diagonal Gaussians.

    Per dimension: log(σ_q/σ_p) + (σ_p² + (μ_p − μ_q)²) / (2σ_q²) − ½.
    """
    var_ratio = (p.sigma / q.sigma).square()
    mean_term = ((p.mu - q.mu) / q.sigma).square()
    return (0.5 * (var_ratio + mean_term) - 0.5 - torch.log(p.sigma / q.sigma)).mean()
