"""The US-X Complete completion network in pure PyTorch (described in docs/model.md).

- ``config``: :class:`CompletionConfig`, variants, ``compact_config`` / ``paper_config``.
- ``model``: :class:`USXComplete`, ``model(batch) -> outputs``, ``model.sample(batch, K)``.
- ``loss``: ``completion_loss(outputs, batch, epoch, schedule) -> (total, parts)``.
- ``normalise`` / ``prepare``: observation-only normalisation shared by training and inference.
- ``inference``: ``complete(us_mm, xray_mm, levels, model) -> (points_mm, uncertainty_mm)``.
- ``weights``: ``save_weights`` / ``load_weights`` with sha256 provenance.
"""

from usx_model.network.config import CompletionConfig, Variant, compact_config, paper_config
from usx_model.network.inference import Completion, complete
from usx_model.network.loss import LossSchedule, compact_schedule, completion_loss, paper_schedule
from usx_model.network.model import USXComplete, count_parameters
from usx_model.network.normalise import (
    Canonicalise,
    Normaliser,
    denormalise,
    fit_normaliser,
    normalise,
)
from usx_model.network.prepare import Observations, prepare_observations
from usx_model.network.weights import load_weights, save_weights

__all__ = [
    "Canonicalise",
    "Completion",
    "CompletionConfig",
    "LossSchedule",
    "Normaliser",
    "Observations",
    "USXComplete",
    "Variant",
    "compact_config",
    "compact_schedule",
    "complete",
    "completion_loss",
    "count_parameters",
    "denormalise",
    "fit_normaliser",
    "load_weights",
    "normalise",
    "paper_config",
    "paper_schedule",
    "prepare_observations",
    "save_weights",
]
