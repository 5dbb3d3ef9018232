"""Shared fixtures of the core tests: a tiny synthetic completion dataset and network."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from usx_model.dataset.schema import VertebraSamples, write_samples
from usx_model.network.config import tiny_config as tiny_network_config

#: The core's tiny network sizes as a training-config "model" section.
TINY_MODEL = {k: v for k, v in tiny_network_config().to_dict().items() if k != "variant"}


def toy_samples(n_spines: int = 6, seed: int = 0, n_gt: int = 256) -> VertebraSamples:
    """Ellipsoid 'vertebrae': body = anterior half (y < 0), US sees the posterior cap."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n_spines):
        split = "train" if s < n_spines - 2 else ("val" if s == n_spines - 2 else "test")
        for level in range(1, 6):
            radii = np.array([35.0, 30.0, 20.0]) * rng.uniform(0.85, 1.15, 3)
            d = rng.normal(size=(n_gt, 3))
            gt = d / np.linalg.norm(d, axis=1, keepdims=True) * radii + [0, 0, 40.0 * level]
            part = np.where(gt[:, 1] < 0, 1, 3).astype(np.uint8)
            us = gt[gt[:, 1] > 0.3 * radii[1]][:128]
            us = np.concatenate([us, us[: 128 - len(us)]]) if len(us) < 128 else us
            body = gt[part == 1][:64].copy()
            body[:, 0] = 0.0
            rows.append((us, body, gt, part, level, f"toy-{s}", split))
    cols = list(zip(*rows, strict=True))
    return VertebraSamples(
        us_partial=np.stack(cols[0]),
        xray=np.stack(cols[1]),
        gt=np.stack(cols[2]),
        gt_part=np.stack(cols[3]),
        level=np.array(cols[4]),
        spine_id=np.array(cols[5]),
        split=np.array(cols[6]),
        norm_centre_mm=np.zeros((len(rows), 3)),
        norm_scale_mm=np.ones(len(rows)),
    )


@pytest.fixture
def make_toy_samples():
    """The ``toy_samples`` factory, for tests that need variations of the toy data."""
    return toy_samples


@pytest.fixture
def toy_dataset(tmp_path):
    path = tmp_path / "toy.h5"
    write_samples(path, toy_samples(), {"seed": 0, "n_spines": 6})
    return path


@pytest.fixture
def tiny_config(tmp_path, toy_dataset):
    path = tmp_path / "train.yaml"
    cfg = {
        "data": toy_dataset.name,
        "model": TINY_MODEL,
        "epochs": 2,
        "batch_size": 4,
        "n_gt": 128,
        "lr": 1e-3,
        "threads": 1,
        "device": "cpu",
    }
    path.write_text(yaml.safe_dump(cfg))
    return path
