"""The phantom and real evaluation sets a ``usx measure`` harness runs the shipped full
model on: shared arguments, loading, and the model."""

from __future__ import annotations

import argparse
from pathlib import Path

from usx_model.evaluation.methods import load_methods
from usx_model.evaluation.pipeline import EvalSet, dataset_eval_set
from usx_model.evaluation.real import find_real_cases, real_eval_set
from usx_model.network.model import USXComplete
from usx_model.weights import shipped_weights


def add_set_arguments(p: argparse.ArgumentParser) -> None:
    """``--data``, ``--split``, ``--real``, ``--loose``, ``--limit``."""
    p.add_argument("--data", metavar="H5", help="phantom dataset (usx dataset build)")
    p.add_argument("--split", default="all", help="--data split (default: all)")
    p.add_argument("--real", metavar="DIR", help="folder of real vertebrae (usx evaluate --real)")
    p.add_argument(
        "--loose", action="store_true", help="--real: every mesh alone (no relation kept)"
    )
    p.add_argument("--limit", type=int, default=None, help="first N vertebrae of each set")


def load_sets(args: argparse.Namespace, command: str) -> dict[str, EvalSet]:
    """``{"phantom": ..., "real": ...}`` for the sets the arguments name, in that order.

    Raises:
        SystemExit: neither ``--data`` nor ``--real`` given (``command`` names the caller).
    """
    if not args.data and not args.real:
        raise SystemExit(f"{command}: give --data H5 and/or --real DIR")
    sets = {}
    if args.data:
        sets["phantom"] = dataset_eval_set(args.data, args.split, args.limit)
    if args.real:
        real = real_eval_set(find_real_cases(args.real, args.loose))
        sets["real"] = real if args.limit is None else real.head(args.limit)
    return sets


def shipped_model(variant: str) -> tuple[USXComplete, Path]:
    """A shipped model (``full`` or ``us_only``; sha256-checked) and its weights path."""
    path = shipped_weights(variant)
    return load_methods([(path, variant)])[0].model, path


def shipped_full_model() -> tuple[USXComplete, Path]:
    """The shipped full model (sha256-checked) and its weights path."""
    return shipped_model("full")
