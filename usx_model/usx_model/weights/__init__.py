"""Shipped, trained weights: ``usx_model/weights/<variant>.pt`` (+ ``<file>.json``).

The package ships the full model (``full.pt``) and the US-only baseline (``us_only.pt``),
each with its provenance JSON ``<file>.json`` (sha256, config, training facts) beside it;
ablation weights, when shipped, follow the same naming (``ef_only.pt``, ``lf_only.pt``).
They are loaded with ``network.weights.load_weights`` (sha256 checked against the
provenance before ``torch.load(weights_only=True)``); ``make train`` reproduces them.
"""

from __future__ import annotations

from pathlib import Path

from usx_model.network.config import Variant
from usx_model.network.weights import provenance_path

#: Folder of the shipped weights inside the installed package (this package).
WEIGHTS_DIR = Path(__file__).resolve().parent


def shipped_weights(variant: Variant | str) -> Path:
    """Path of the shipped weights file of a network variant.

    Args:
        variant: ``full``, ``us_only``, ``ef_only`` or ``lf_only``.

    Returns:
        ``WEIGHTS_DIR / "<variant>.pt"``; the file and its provenance JSON both exist.

    Raises:
        ValueError: unknown variant.
        FileNotFoundError: the weights file or its provenance JSON is missing (names it).
    """
    try:
        v = Variant(variant)
    except ValueError:
        known = ", ".join(x.value for x in Variant)
        raise ValueError(f"variant: expected one of {known}, got {variant!r}") from None
    path = WEIGHTS_DIR / f"{v.value}.pt"
    for p in (path, provenance_path(path)):
        if not p.is_file():
            raise FileNotFoundError(
                f"shipped {v.value} weights missing: {p} does not exist "
                "(pass --weights FILE, or install the trained weights there)"
            )
    return path
