"""Training configuration: one YAML/JSON file -> ``TrainConfig``.

Relative paths in the file (``data``) are resolved against the file's folder, so a
config and its data set can move together.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import MISSING, dataclass, field
from pathlib import Path

import yaml

from usx_model.network.config import CompletionConfig, Variant, compact_config, paper_config
from usx_model.network.loss import LossSchedule, compact_schedule, paper_schedule

_PRESETS = {"compact": compact_config, "paper": paper_config}
_SCHEDULES = {"compact": compact_schedule, "paper": paper_schedule}


#: Settings added after runs had been made, with the value those runs had (the reference's
#: learned-prior path; no rotation augmentation).
_BEFORE_ADDED = {"prior_path": True, "rotation_aug_deg": 0.0}
#: Settings since removed, with the value that meant "off" (weights averaging, not shipped).
_REMOVED_OFF = {"ema_decay": 0.0}


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run (stored in every checkpoint).

    Attributes:
        data: dataset HDF5 written by ``usx dataset build`` (train and val splits used).
        variant: full | us_only | ef_only | lf_only.
        preset: network size preset, compact (CPU) or paper.
        model: overrides of ``CompletionConfig`` fields on top of the preset.
        schedule: loss schedule preset (compact | paper); ``schedule_overrides`` on top.
        epochs, batch_size: per-process batch size (DDP multiplies by world size).
        lr, lr_decay, lr_decay_every, lr_min: Adam step size, multiplied by ``lr_decay``
            every ``lr_decay_every`` epochs, never below ``lr_min``.
        n_gt: GT points per sample used by the loss and validation (FPS of the file's GT).
        seed: seeds torch, numpy and python's random (plus the rank under DDP).
        threads: torch intra-op threads (0 = torch's default).
        device: auto | cpu | cuda.
        max_train_samples, max_val_samples: caps for quick runs (0 = all).
        rotation_aug_deg: uniform random rotation about each axis applied to the whole
            sample (observations and GT together) in the normalised frame; 0 = off.
        prior_path: also decode the learned prior's path (the complete shape's code), as
            the reference does. False decodes only the posterior path, regularised
            towards a fixed N(0, I) prior: half the step time. At the reference's KL
            weight the learned prior collapses to N(0, I) within an epoch anyway.

    The defaults are the shipped recipe, ``config/train.yaml`` (a test keeps them equal).
    """

    data: str
    variant: str = "full"
    preset: str = "compact"
    model: dict = field(default_factory=lambda: {"n_out": 8192, "up_ratio": 8})
    schedule: str = "compact"
    schedule_overrides: dict = field(default_factory=lambda: {"kl_weight": 0.001})
    epochs: int = 64
    batch_size: int = 8
    lr: float = 1e-3
    lr_decay: float = 0.7
    lr_decay_every: int = 8
    lr_min: float = 1e-6
    n_gt: int = 4096
    seed: int = 42
    threads: int = 2
    device: str = "auto"
    max_train_samples: int = 0
    max_val_samples: int = 0
    rotation_aug_deg: float = 3.0
    prior_path: bool = False

    def __post_init__(self) -> None:
        Variant(self.variant)  # raises ValueError naming the bad value
        if self.preset not in _PRESETS:
            raise ValueError(f"preset: expected one of {sorted(_PRESETS)}, got {self.preset!r}")
        if self.schedule not in _SCHEDULES:
            raise ValueError(
                f"schedule: expected one of {sorted(_SCHEDULES)}, got {self.schedule!r}"
            )
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device: expected auto, cpu or cuda, got {self.device!r}")
        for name in ("epochs", "batch_size", "lr_decay_every", "n_gt"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name}: expected >= 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"lr: expected > 0, got {self.lr}")

    def network_config(self) -> CompletionConfig:
        base = _PRESETS[self.preset](self.variant)
        return dataclasses.replace(base, **self.model) if self.model else base

    def loss_schedule(self) -> LossSchedule:
        base = _SCHEDULES[self.schedule]()
        if not self.schedule_overrides:
            return base
        over = {
            k: tuple(v) if isinstance(v, list) else v for k, v in self.schedule_overrides.items()
        }
        return dataclasses.replace(base, **over)

    def lr_at(self, epoch: int) -> float:
        """Learning rate of a 0-based epoch."""
        return max(self.lr * self.lr_decay ** (epoch // self.lr_decay_every), self.lr_min)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def same_run(self, stored: dict) -> bool:
        """True if ``stored`` (a run's config.json) describes this config.

        A setting added after the run was made counts as the value runs had before it
        existed (``_BEFORE_ADDED``, else its default); a removed setting must hold the value
        that meant "off" (``_REMOVED_OFF``), or the run was another run.
        """
        stored = dict(stored)
        for name, off in _REMOVED_OFF.items():
            if stored.pop(name, off) != off:
                return False
        defaults = {f.name: f.default for f in dataclasses.fields(self) if f.default is not MISSING}
        return {**defaults, **_BEFORE_ADDED, **stored} == self.to_dict()


def load_train_config(path: str | Path, **overrides) -> TrainConfig:
    """Read a YAML or JSON training config; ``overrides`` replace keys (e.g. variant).

    Raises:
        FileNotFoundError: no such file.
        ValueError: unknown keys or bad values.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"training config {path} does not exist")
    text = path.read_text(encoding="utf-8")
    raw = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a mapping of settings, got {type(raw).__name__}")
    raw.update({k: v for k, v in overrides.items() if v is not None})
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ValueError(f"{path}: unknown setting(s) {unknown}; known: {sorted(known)}")
    if "data" not in raw:
        raise ValueError(f"{path}: missing the 'data' setting (dataset HDF5 path)")
    data = Path(raw["data"])
    if not data.is_absolute():
        raw["data"] = str((path.parent / data).resolve())
    return TrainConfig(**raw)
