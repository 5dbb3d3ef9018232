"""The methods under evaluation: trained networks named after their variant."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from usx_model.evaluation.stats import ordered_methods
from usx_model.network.config import Variant
from usx_model.network.model import USXComplete, count_parameters
from usx_model.network.weights import load_weights, sha256_file


@dataclass(frozen=True)
class Method:
    """One trained network: ``name`` = its config variant (``full``, ``us_only``, ...)."""

    name: str
    model: USXComplete
    path: Path
    sha256: str

    def describe(self) -> dict:
        """JSON facts about the weights (path, sha256, variant, parameters, sizes)."""
        cfg = self.model.config
        return {
            "path": str(self.path),
            "sha256": self.sha256,
            "variant": cfg.variant.value,
            "parameters": count_parameters(self.model),
            "n_partial": cfg.n_partial,
            "n_xray": cfg.n_xray,
            "n_out": cfg.n_out,
        }


def load_methods(
    specs: Sequence[tuple[str | Path, Variant | str | None]],
    device: str | torch.device = "cpu",
) -> list[Method]:
    """Load every weights file (sha256-checked) and name it after its variant.

    Args:
        specs: (weights path, expected variant or None for any) pairs; the expected
            variant catches e.g. a full model passed as the baseline.
        device: where the models go.

    Returns:
        Methods in table order (full, us_only, ef_only, lf_only).

    Raises:
        OSError: a file is missing. ValueError: corrupted file, wrong variant, or two
        files of the same variant.
    """
    if not specs:
        raise ValueError("expected at least one weights file, got none")
    methods: dict[str, Method] = {}
    for path, want in specs:
        try:
            model = load_weights(path, device=device)
        except ValueError as exc:
            # torch's unpickling errors span many lines; the CLI reports one
            lines = str(exc).splitlines()
            more = " (...)" if len(lines) > 1 else ""
            raise ValueError(lines[0] + more) from exc
        name = model.config.variant.value
        if want is not None and name != Variant(want).value:
            raise ValueError(f"{path}: expected a {Variant(want).value} model, got a {name} model")
        if name in methods:
            raise ValueError(
                f"two weights files of variant {name}: {methods[name].path} and {path}"
            )
        methods[name] = Method(name, model, Path(path), sha256_file(path))
    return [methods[n] for n in ordered_methods(list(methods))]
