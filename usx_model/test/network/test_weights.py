"""Weights round trip, checksum verification and corrupted files."""

from __future__ import annotations

import inspect
import json

import pytest
import torch

from usx_model.network.model import USXComplete
from usx_model.network.weights import load_weights, provenance_path, save_weights, sha256_file


@pytest.fixture
def saved(tiny, tmp_path):
    torch.manual_seed(0)
    model = USXComplete(tiny("ef_only"))
    path = tmp_path / "w" / "model.pt"
    prov = save_weights(model, path, extra={"epochs": 3})
    return model, path, prov


def test_round_trip(saved) -> None:
    model, path, prov = saved
    loaded = load_weights(path)
    assert loaded.config == model.config and not loaded.training
    assert prov["epochs"] == 3 and len(prov["sha256"]) == 64
    assert json.loads(provenance_path(path).read_text())["sha256"] == prov["sha256"]
    batch = {"partial": torch.randn(1, 64, 3), "xray": torch.randn(1, 32, 3)}
    with torch.no_grad():
        torch.testing.assert_close(loaded(batch)["fine"], model.eval()(batch)["fine"])
    blob = torch.load(path, weights_only=True)  # no pickled code inside
    assert blob["config"]["variant"] == "ef_only"


def test_checksum_mismatch(saved) -> None:
    _, path, _ = saved
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="checksum mismatch"):
        load_weights(path)


def _reseal(path) -> None:
    """Record the file's new digest in its provenance, as a careless edit would."""
    prov = json.loads(provenance_path(path).read_text())
    prov["sha256"] = sha256_file(path)
    provenance_path(path).write_text(json.dumps(prov))


def test_corrupted_file(saved) -> None:
    _, path, _ = saved
    path.write_bytes(path.read_bytes()[:100])
    _reseal(path)
    with pytest.raises(ValueError, match="corrupted or not a torch file"):
        load_weights(path)


def test_a_tampered_model_is_never_loaded(saved) -> None:
    """Weights changed and saved as a valid file are refused, and no switch skips the check."""
    _, path, _ = saved
    blob = torch.load(path, weights_only=True)
    name = next(iter(blob["state_dict"]))
    blob["state_dict"][name] = blob["state_dict"][name] + 1.0
    torch.save(blob, path)
    with pytest.raises(ValueError, match="checksum mismatch"):
        load_weights(path)
    assert set(inspect.signature(load_weights).parameters) == {"path", "device", "provenance"}


def test_missing_files(saved, tmp_path) -> None:
    _, path, _ = saved
    with pytest.raises(OSError, match="weights file not found"):
        load_weights(tmp_path / "nope.pt")
    provenance_path(path).unlink()
    with pytest.raises(OSError, match="provenance JSON not found"):
        load_weights(path)


@pytest.mark.parametrize(
    ("fmt", "match"),
    [
        (None, "expected format 'usx-completion-weights-v2'"),
        ("usx-completion-weights-v1", "v1 weights predate the fused decoder code"),
    ],
)
def test_wrong_format(saved, fmt, match) -> None:
    _, path, _ = saved
    blob = torch.load(path, weights_only=True)
    blob["format"] = fmt
    torch.save(blob, path)
    _reseal(path)
    with pytest.raises(ValueError, match=match):
        load_weights(path)
