"""Shipped network weights: ``full.pt`` and ``us_only.pt`` with provenance JSON beside them.

Each ``<name>.pt`` is loaded with ``network.weights.load_weights`` (``torch.load`` with
``weights_only=True`` after its sha256 is checked against ``<name>.pt.json``), so the demo
and the evaluation run without training. ``make train`` reproduces them.
"""

from __future__ import annotations

from pathlib import Path

WEIGHTS_DIR = Path(__file__).parent
VARIANTS = ("full", "us_only", "ef_only", "lf_only")


def shipped_weights(variant: str) -> Path:
    """Path of the shipped weights of ``variant``.

    Raises:
        ValueError: unknown variant.
        FileNotFoundError: the file is not in the package (not trained/shipped yet).
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant: expected one of {VARIANTS}, got {variant!r}")
    path = WEIGHTS_DIR / f"{variant}.pt"
    if not path.is_file():
        raise FileNotFoundError(
            f"no shipped weights for {variant!r}: {path} is missing "
            "(run `make train` or pass a weights file)"
        )
    return path
