"""Tiny saved networks of every variant (untrained: the tests check plumbing, not skill)
and a module-scoped toy test set with two test spines (10 vertebrae, enough for the paired
tests to give p-values below 0.05 when one method is clearly worse)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from usx_model.dataset.schema import VertebraSamples, write_samples
from usx_model.network.config import tiny_config
from usx_model.network.model import USXComplete
from usx_model.network.weights import save_weights


def save_tiny(folder, variant: str, seed: int = 0):
    """Save an untrained tiny network of ``variant`` under ``folder``; return the path."""
    torch.manual_seed(seed)
    path = folder / "weights" / f"{variant}-{seed}.pt"
    save_weights(USXComplete(tiny_config(variant)), path)
    return path


@pytest.fixture(scope="session")
def tiny_saver():
    """:func:`save_tiny` for module-scoped fixtures (``tiny_saver(folder, variant)``)."""
    return save_tiny


@pytest.fixture
def tiny_weights(tmp_path):
    """``make(variant, seed=0) -> Path`` of a saved tiny network (+ provenance JSON)."""
    return lambda variant, seed=0: save_tiny(tmp_path, variant, seed)


def ellipsoid_samples(n_test_spines: int = 2, seed: int = 3, n_gt: int = 256) -> VertebraSamples:
    """Ellipsoid vertebrae (body = anterior half y < 0), one train spine + test spines."""
    rng = np.random.default_rng(seed)
    cols: dict[str, list] = {k: [] for k in ("us", "xray", "gt", "part", "level", "sid", "split")}
    for s in range(n_test_spines + 1):
        for level in range(1, 6):
            radii = np.array([35.0, 30.0, 20.0]) * rng.uniform(0.85, 1.15, 3)
            d = rng.normal(size=(n_gt, 3))
            gt = d / np.linalg.norm(d, axis=1, keepdims=True) * radii + [0, 0, 40.0 * level]
            part = np.where(gt[:, 1] < 0, 1, 4).astype(np.uint8)
            cap = gt[gt[:, 1] > 0.3 * radii[1]]
            body = gt[part == 1][:64] * [0.0, 1.0, 1.0]  # the X-ray loses x
            cols["us"].append(cap[np.arange(96) % len(cap)])
            cols["xray"].append(body[np.arange(64) % len(body)])
            cols["gt"].append(gt)
            cols["part"].append(part)
            cols["level"].append(level)
            cols["sid"].append(f"ell-{s}")
            cols["split"].append("train" if s == 0 else "test")
    n = len(cols["level"])
    return VertebraSamples(
        us_partial=np.stack(cols["us"]),
        xray=np.stack(cols["xray"]),
        gt=np.stack(cols["gt"]),
        gt_part=np.stack(cols["part"]),
        level=np.array(cols["level"]),
        spine_id=np.array(cols["sid"]),
        split=np.array(cols["split"]),
        norm_centre_mm=np.zeros((n, 3)),
        norm_scale_mm=np.ones(n),
    )


@pytest.fixture(scope="module")
def module_dir(tmp_path_factory):
    """A folder shared by the tests of one module."""
    return tmp_path_factory.mktemp("evaluation")


@pytest.fixture(scope="module")
def ellipsoid_h5(module_dir):
    path = module_dir / "ellipsoids.h5"
    write_samples(path, ellipsoid_samples(), {"seed": 3})
    return path
