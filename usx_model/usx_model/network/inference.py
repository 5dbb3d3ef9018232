"""Complete vertebrae from millimetre observations: ``complete(...)``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch

from usx_model.network.model import USXComplete
from usx_model.network.normalise import Canonicalise
from usx_model.network.prepare import prepare_observations
from usx_model.network.xray_consistency import silhouette_plane, snap_to_silhouette
from usx_model.ops.knn import knn_points

#: Seed of the posterior samples behind the uncertainty (makes ``complete`` deterministic).
SAMPLE_SEED = 0


class Completion(NamedTuple):
    """points_mm (B, N_out, 3) in the input frame; uncertainty_mm (B, N_out) or None."""

    points_mm: np.ndarray
    uncertainty_mm: np.ndarray | None


def sample_spread(mean: torch.Tensor, samples: torch.Tensor) -> torch.Tensor:
    """Per-point spread of posterior samples around the mean prediction.

    For each point of the mean prediction, the distance to its nearest point in each
    sample prediction, averaged over samples.

    Args:
        mean: (B, N, 3); samples: (K, B, M, 3).

    Returns:
        (B, N) mean nearest distances, same unit as the points.
    """
    k, b = samples.shape[:2]
    d2 = knn_points(mean.repeat(k, 1, 1), samples.reshape(k * b, -1, 3), 1).dist2[..., 0]
    return d2.sqrt().view(k, b, -1).mean(0)


def _as_list(name: str, clouds: object) -> list:
    if isinstance(clouds, np.ndarray):
        if clouds.ndim != 3:
            raise ValueError(
                f"{name}: expected (B, N, 3) array or list of (N, 3), got {clouds.shape}"
            )
        return list(clouds)
    if isinstance(clouds, (list, tuple)):
        return list(clouds)
    raise ValueError(f"{name}: expected a list of (N, 3) arrays, got {type(clouds).__name__}")


def complete(
    us_points_mm: Sequence[np.ndarray] | np.ndarray,
    xray_points_mm: Sequence[np.ndarray | None] | np.ndarray | None,
    levels: Sequence[str | int],
    model: USXComplete,
    device: str | torch.device = "cpu",
    n_samples: int = 4,
    canonicalise: Canonicalise | str = Canonicalise.NONE,
    rotations: Sequence[np.ndarray] | None = None,
    xray_snap: bool = True,
) -> Completion:
    """Complete B vertebrae in one batched forward pass.

    Inputs are resampled (FPS) and normalised from the observation only (see
    ``network.prepare``), the model predicts with the posterior mean (deterministic),
    and results are mapped back to the input frame in mm. With ``n_samples`` > 0,
    that many posterior samples (fixed seed) give the per-point uncertainty. For a model
    that takes the X-ray, points just outside the X-ray body silhouette are then moved
    onto it (``network.xray_consistency``; ``xray_snap``).

    Args:
        us_points_mm: B US partial clouds (N_i, 3), mm, or a (B, N, 3) array.
        xray_points_mm: B X-ray clouds (M_i, 3) in the same frame (None entries allowed
            only for a model without X-ray), or None.
        levels: B level names/ids, used to label error messages (not a network input).
        model: a ``USXComplete``; it is switched to eval mode.
        device: where to run.
        n_samples: posterior samples for the uncertainty (0: none, returns None).
        canonicalise, rotations: see ``network.normalise.fit_normaliser``.
        xray_snap: apply :func:`~usx_model.network.xray_consistency.snap_to_silhouette`
            to each vertebra whose X-ray points lie on a plane (spread along its normal
            <= ``PLANE_TOL_MM``, as every X-ray cloud of ``simulate`` and ``ingest`` does);
            the posterior direction is the normaliser's canonical y.

    Returns:
        :class:`Completion` with points_mm (B, N_out, 3) and uncertainty_mm (B, N_out).

    Raises:
        ValueError: empty/NaN/too-small/wrong-shape clouds, missing X-ray, count mismatch.
    """
    if int(n_samples) < 0:
        raise ValueError(f"n_samples: expected >= 0, got {n_samples}")
    us = _as_list("us_points_mm", us_points_mm)
    xr = None if xray_points_mm is None else _as_list("xray_points_mm", xray_points_mm)
    cfg = model.config
    obs = prepare_observations(
        us,
        xr,
        cfg.n_partial,
        cfg.n_xray,
        cfg.variant.uses_xray,
        names=[str(level) for level in levels],
        canonicalise=canonicalise,
        rotations=rotations,
    )
    dev = torch.device(device)
    model.eval()
    if next(model.parameters()).device != dev:  # a no-op .to() still walks every module
        model.to(dev)
    batch = {"partial": obs.partial.to(dev)}
    if obs.xray is not None:
        batch["xray"] = obs.xray.to(dev)
    with torch.inference_mode():
        gen = torch.Generator(device=dev).manual_seed(SAMPLE_SEED)
        fine, samples = model.predict(batch, int(n_samples), gen)
        spread = None if samples is None else sample_spread(fine, samples).cpu().numpy()
        fine = fine.cpu().numpy()
    points = np.stack([n.denormalise(p) for n, p in zip(obs.normalisers, fine, strict=True)])
    if xray_snap and cfg.variant.uses_xray:
        for i, (norm, x) in enumerate(zip(obs.normalisers, xr, strict=True)):
            plane = silhouette_plane(x)
            if plane.is_planar:
                points[i] = snap_to_silhouette(points[i], plane, norm.rotation[1])
    unc = None
    if spread is not None:
        unc = spread * np.array([n.scale_mm for n in obs.normalisers])[:, None]
    return Completion(points, unc)
