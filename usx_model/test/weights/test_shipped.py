"""The shipped weights are what `make train` (config/train.yaml) builds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from usx_model.network.weights import load_weights, provenance_path
from usx_model.train.config import load_train_config
from usx_model.weights import shipped_weights

REPO = Path(__file__).resolve().parents[3]
TRAIN_YAML = REPO / "config" / "train.yaml"


@pytest.mark.parametrize("variant", ["full", "us_only"])
def test_shipped_network_is_the_train_recipe(variant: str) -> None:
    path = shipped_weights(variant)
    model = load_weights(path)  # verifies the sha256 against the provenance
    recipe = load_train_config(TRAIN_YAML, variant=variant)
    assert model.config == recipe.network_config()
    assert path.stat().st_size <= 25 * 1024 * 1024
    prov = json.loads(provenance_path(path).read_text())
    assert not prov["commit"].endswith("+dirty")
    assert len(prov["dataset"]["content_sha256"]) == 64
