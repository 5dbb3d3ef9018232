"""The US-X Complete network: coarse VAE stage + RENet refinement (docs/model.md).

``model(batch) -> outputs`` works in the normalised frame (see ``network.normalise``).

Batch (dict of tensors, normalised coordinates):
    ``partial``: (B, Np, 3) US partial cloud, exactly ``cfg.n_partial`` points.
    ``xray``: (B, Nx, 3) X-ray points, exactly ``cfg.n_xray``; required unless the
        variant is ``us_only`` (ignored there).
    ``gt``: (B, Ngt, 3) complete shape; in training mode it feeds the prior path
        (FPS to Np inside the model). Not used in eval mode.

Outputs (dict): ``coarse_raw`` (P·B, n_coarse, 3), ``coarse_high`` (P·B, N1, 3),
``fine`` (P·B, n_out, 3) where P = 2 in training with ``gt`` (rows [:B] decode the
posterior sample, rows [B:] the prior sample) and P = 1 otherwise; ``q_mu``,
``q_sigma`` (B, Z); ``p_mu``, ``p_sigma`` (B, Z) when the prior path ran; ``n_paths``.
In eval mode z is the posterior mean, so the output is deterministic.
"""

from __future__ import annotations

import torch
from torch import nn

from usx_model.network.coarse import CoarseNet, Gaussian
from usx_model.network.config import CompletionConfig, compact_config
from usx_model.network.renet import LocalFolding, RENet
from usx_model.ops.fps import farthest_point_sample
from usx_model.ops.gather import index_points


def _check_cloud(name: str, t: object, n: int, batch: int | None) -> torch.Tensor:
    if not isinstance(t, torch.Tensor):
        raise ValueError(f"batch[{name!r}]: expected a torch.Tensor, got {type(t).__name__}")
    if t.ndim != 3 or t.shape[2] != 3 or (n > 0 and t.shape[1] != n):
        want = f"(B, {n}, 3)" if n > 0 else "(B, N, 3)"
        raise ValueError(f"batch[{name!r}]: expected {want} float points, got {tuple(t.shape)}")
    if batch is not None and t.shape[0] != batch:
        raise ValueError(f"batch[{name!r}]: expected batch size {batch}, got {t.shape[0]}")
    if not t.is_floating_point() or not bool(torch.isfinite(t).all()):
        raise ValueError(f"batch[{name!r}]: expected finite float points")
    return t


class USXComplete(nn.Module):
    """Two-stage probabilistic completion network; variant and sizes from the config."""

    def __init__(self, config: CompletionConfig | None = None) -> None:
        super().__init__()
        self.config = config or compact_config()
        self.coarse = CoarseNet(self.config)
        self.renet = RENet(self.config)
        self.folding = (
            LocalFolding(self.config.expand, self.config.up_ratio)
            if self.config.up_ratio > 1
            else None
        )
        src = torch.eye(self.config.n_sources)
        # One-hot source codes: 0 = coarse_raw, 1 = US partial, 2 = X-ray.
        self.register_buffer("_source_codes", src, persistent=False)

    def _inputs(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor | None]:
        cfg = self.config
        if "partial" not in batch:
            raise ValueError("batch: missing 'partial' (B, Np, 3) US points")
        us = _check_cloud("partial", batch["partial"], cfg.n_partial, None)
        xray = None
        if cfg.variant.uses_xray:
            if batch.get("xray") is None:
                raise ValueError(f"batch: variant {cfg.variant.value!r} needs 'xray' points")
            xray = _check_cloud("xray", batch["xray"], cfg.n_xray, us.shape[0])
        return us, xray

    def refine(
        self, coarse_raw: torch.Tensor, us: torch.Tensor, xray: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """RENet on [coarse_raw; US; X-ray] with one-hot source tags → (coarse_high, fine).

        Args:
            coarse_raw: (B, n_coarse, 3); us: (B, Np, 3); xray: (B, Nx, 3) or None.

        Returns:
            coarse_high (B, N1, 3) xyz per input point and fine (B, n_out, 3):
            its FPS subset of n_out / up_ratio points (indices without gradient,
            coordinates with), each expanded by local folding when up_ratio > 1.
        """
        parts = [coarse_raw, us]
        if self.config.variant.late_fusion:
            parts.append(xray)
        xyz = torch.cat(parts, dim=1)
        codes = [self._source_codes[i].expand(p.shape[1], -1) for i, p in enumerate(parts)]
        onehot = torch.cat(codes, dim=0)[None].expand(xyz.shape[0], -1, -1)
        coarse_high, head = self.renet(xyz, onehot)
        idx = farthest_point_sample(coarse_high, self.config.n_selected)
        selected = index_points(coarse_high, idx)
        if self.folding is None:
            return coarse_high, selected
        return coarse_high, self.folding(selected, index_points(head, idx))

    def forward(self, batch: dict) -> dict:
        us, xray = self._inputs(batch)
        g_obs, q = self.coarse.encode(us, xray)
        out: dict = {"q_mu": q.mu, "q_sigma": q.sigma, "n_paths": 1}
        if not self.training:
            z, g = q.mu, g_obs
        else:
            z, g = q.mu + q.sigma * torch.randn_like(q.sigma), g_obs
            if batch.get("gt") is None:
                # Posterior path only: the prior is the fixed N(0, I), so the loss's KL
                # still keeps q a distribution (train option prior_path: false).
                out.update(p_mu=torch.zeros_like(q.mu), p_sigma=torch.ones_like(q.sigma))
            else:
                gt = _check_cloud("gt", batch["gt"], 0, us.shape[0])
                prior_in = index_points(gt, farthest_point_sample(gt, self.config.n_partial))
                p = self.coarse.encode_prior(prior_in)
                z_p = p.mu + p.sigma * torch.randn_like(p.sigma)
                z, g = torch.cat([z, z_p]), torch.cat([g_obs, g_obs])
                us = torch.cat([us, us])
                xray = torch.cat([xray, xray]) if xray is not None else None
                out.update(p_mu=p.mu, p_sigma=p.sigma, n_paths=2)
        coarse_raw = self.coarse.decode(g, z)
        coarse_high, fine = self.refine(coarse_raw, us, xray)
        out.update(coarse_raw=coarse_raw, coarse_high=coarse_high, fine=fine)
        return out

    def sample(
        self, batch: dict, n_samples: int, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Decode ``n_samples`` posterior samples z ~ q for every cloud.

        Args:
            batch: as for ``forward`` (``gt`` ignored).
            n_samples: K >= 1.
            generator: optional torch.Generator on the model's device for reproducibility.

        Returns:
            (K, B, n_out, 3) predictions in the normalised frame. Dropout follows the
            module's mode; call ``eval()`` first for pure posterior sampling.
        """
        if int(n_samples) < 1:
            raise ValueError(f"n_samples: expected >= 1, got {n_samples}")
        return self._decode_posterior(batch, int(n_samples), generator, with_mean=False)

    def predict(
        self, batch: dict, n_samples: int = 0, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The posterior-mean prediction and K posterior samples, decoded as one batch.

        In eval mode the values are those of ``forward(batch)["fine"]`` and ``sample(batch,
        K, generator)`` up to float rounding (in a larger batch the kernels may sum in
        another order; bit for bit when K = 0), but the encoder runs once and RENet's
        per-step costs (farthest point sampling loops over points) are paid once for all
        K + 1 decodings (``usx bench completion --samples 1 --threads 1``, shipped
        weights: 0.60 -> 0.47 s for five vertebrae).

        Args:
            batch: as for ``forward`` (``gt`` ignored).
            n_samples: K >= 0.
            generator: as for ``sample``.

        Returns:
            mean (B, n_out, 3) and samples (K, B, n_out, 3) or None when K = 0, in the
            normalised frame.
        """
        if int(n_samples) < 0:
            raise ValueError(f"n_samples: expected >= 0, got {n_samples}")
        fine = self._decode_posterior(batch, int(n_samples), generator, with_mean=True)
        return fine[0], (fine[1:] if n_samples else None)

    def _decode_posterior(
        self, batch: dict, k: int, generator: torch.Generator | None, with_mean: bool
    ) -> torch.Tensor:
        """(K + with_mean, B, n_out, 3): the mean's decoding first, then K samples.

        Every vertebra of the batch takes the same K standard-normal draws (z = mu + sigma
        eps_k), so a vertebra's samples, and the uncertainty made from them, do not depend
        on which vertebrae share its batch or on its place in it: a level completed live
        alone and in the sweep's final batch of five gets the same spread.
        """
        us, xray = self._inputs(batch)
        g_obs, q = self.coarse.encode(us, xray)
        eps = torch.randn(
            (k, 1, q.mu.shape[1]), generator=generator, device=q.mu.device, dtype=q.mu.dtype
        )
        z = torch.cat([q.mu[None]] * with_mean + [q.mu + q.sigma * eps]).flatten(0, 1)
        copies, b = z.shape[0] // us.shape[0], us.shape[0]
        rep = lambda t: None if t is None else t.repeat(copies, 1, 1)  # noqa: E731
        coarse_raw = self.coarse.decode(g_obs.repeat(copies, 1), z)
        _, fine = self.refine(coarse_raw, rep(us), rep(xray))
        return fine.view(copies, b, self.config.n_out, 3)

    def posterior(self, batch: dict) -> Gaussian:
        """The posterior q(z | observation) as (B, Z) mean and standard deviation."""
        us, xray = self._inputs(batch)
        return self.coarse.encode(us, xray)[1]


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
