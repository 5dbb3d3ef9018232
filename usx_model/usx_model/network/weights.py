"""Save and load network weights with a provenance JSON and a sha256 check.

A weights file is a plain ``torch.save`` of ``{"format", "config", "state_dict"}`` with
only tensors, strings, numbers and lists inside, so ``torch.load(weights_only=True)``
reads it without executing code. Beside it, ``<file>.json`` holds the provenance:
``{"format", "config", "sha256", "parameters", "torch", "created_utc", ...extra}``.
Loading verifies the file's sha256 against that JSON before unpickling anything.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from pathlib import Path

import torch

from usx_model.network.config import CompletionConfig
from usx_model.network.model import USXComplete, count_parameters

FORMAT = "usx-completion-weights-v2"
#: Formats that load no more, with the reason. v1 networks decoded the US code alone and
#: regressed absolute xyz; their tensors fit the v2 modules but mean something else.
RETIRED_FORMATS = {
    "usx-completion-weights-v1": "v1 weights predate the fused decoder code and the offset "
    "head; retrain them (make train)",
}


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def provenance_path(weights_path: str | Path) -> Path:
    """The provenance JSON that belongs to a weights file: ``<weights>.json``."""
    p = Path(weights_path)
    return p.with_name(p.name + ".json")


def save_weights(model: USXComplete, path: str | Path, extra: dict | None = None) -> dict:
    """Write the weights file and its provenance JSON; return the provenance dict.

    Args:
        model: the network (its config is stored with it).
        path: output file (parents are created).
        extra: JSON-serialisable facts to add (data set, epochs, metrics, seed...).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cfg = model.config.to_dict()
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    torch.save({"format": FORMAT, "config": cfg, "state_dict": state}, path)
    prov = {
        **(extra or {}),
        "format": FORMAT,
        "config": cfg,
        "sha256": sha256_file(path),
        "parameters": count_parameters(model),
        "torch": torch.__version__,
        "created_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    provenance_path(path).write_text(json.dumps(prov, indent=2, sort_keys=True) + "\n")
    return prov


def load_weights(
    path: str | Path,
    device: str | torch.device = "cpu",
    provenance: str | Path | None = None,
) -> USXComplete:
    """Build the network from a weights file, after checking its sha256.

    There is no way around the check: a file whose digest disagrees with its provenance
    is never loaded (a model that changed without its record is not the measured one).

    Args:
        path: weights file written by :func:`save_weights`.
        device: where to put the model.
        provenance: provenance JSON (default ``<path>.json``).

    Returns:
        The model in eval mode.

    Raises:
        OSError: a file is missing.
        ValueError: checksum mismatch, corrupted/unknown file, config mismatch.
    """
    path = Path(path)
    if not path.is_file():
        raise OSError(f"weights file not found: {path}")
    prov_path = Path(provenance) if provenance else provenance_path(path)
    if not prov_path.is_file():
        raise OSError(f"provenance JSON not found: {prov_path} (needed to verify {path})")
    try:
        prov = json.loads(prov_path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"provenance JSON {prov_path} is not valid JSON: {exc}") from exc
    want, got = prov.get("sha256"), sha256_file(path)
    if want != got:
        raise ValueError(f"checksum mismatch for {path}: expected sha256 {want}, got {got}")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a damaged archive
        raise ValueError(f"weights file {path} is corrupted or not a torch file: {exc}") from exc
    if isinstance(blob, dict) and blob.get("format") in RETIRED_FORMATS:
        raise ValueError(f"weights file {path}: {RETIRED_FORMATS[blob['format']]}")
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise ValueError(f"weights file {path}: expected format {FORMAT!r}")
    cfg = CompletionConfig.from_dict(blob["config"])
    if prov.get("config") not in (None, blob["config"]):
        raise ValueError(f"weights file {path}: config differs from its provenance JSON")
    model = USXComplete(cfg)
    try:
        model.load_state_dict(blob["state_dict"])
    except RuntimeError as exc:
        raise ValueError(f"weights file {path} does not fit its config: {exc}") from exc
    return model.to(device).eval()
