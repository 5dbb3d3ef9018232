"""``usx bench completion``: latency of completing L1-L5 (five vertebrae, one call).

Synthetic observation clouds of realistic size (a few thousand US points, a few
hundred X-ray points, in mm) are completed with ``network.complete``; the figure is the
median of ``--runs`` timed calls after ``--warmup`` untimed ones, under
``torch.inference_mode`` (inside ``complete``). The shipped weights of ``--variant`` unless
``--weights`` names others or ``--untrained`` asks for a random network of ``--size``.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import torch

from usx_model.base.parts import LEVEL_NAMES
from usx_model.bench.common import summarise, time_runs
from usx_model.network.config import Variant, compact_config, paper_config
from usx_model.network.inference import complete
from usx_model.network.model import USXComplete, count_parameters
from usx_model.network.weights import load_weights
from usx_model.weights import shipped_weights

NAME = "completion"
HELP = "latency of completing five vertebrae (L1-L5) in one call"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="device")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--runs", type=int, default=20, help="timed runs (>= 20 recommended)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed warm-up runs")
    parser.add_argument("--samples", type=int, default=0, help="posterior samples (uncertainty)")
    parser.add_argument(
        "--weights", default=None, help="weights file (default: the shipped ones of --variant)"
    )
    parser.add_argument(
        "--untrained", action="store_true", help="a random network of --size instead of weights"
    )
    parser.add_argument("--size", choices=("compact", "paper"), default="compact")
    parser.add_argument("--variant", choices=[v.value for v in Variant], default="full")
    parser.add_argument("--us-points", type=int, default=3000, help="US points per vertebra")
    parser.add_argument("--xray-points", type=int, default=500, help="X-ray points per vertebra")


def _synthetic_observations(n_us: int, n_xray: int) -> tuple[list, list]:
    """Five posterior-surface-like US patches and flat sagittal X-ray patches, mm, LPS."""
    rng = np.random.default_rng(0)
    us, xr = [], []
    for level in range(5):
        z0 = -35.0 * level
        us.append(rng.normal(size=(n_us, 3)) * [25.0, 6.0, 12.0] + [0.0, 40.0, z0])
        xr.append(rng.uniform(-1, 1, size=(n_xray, 3)) * [0.5, 15.0, 12.0] + [0.0, 0.0, z0])
    return us, xr


def run(args: argparse.Namespace) -> dict:
    if args.device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA device is available")
    if args.threads:
        torch.set_num_threads(args.threads)
        # Open3D's neighbour search (ops.knn) runs on OpenMP threads, read when Open3D
        # is first imported: the same limit, so that --threads 1 means one thread.
        if "open3d" not in sys.modules:
            os.environ["OMP_NUM_THREADS"] = str(args.threads)
    if args.untrained and args.weights:
        raise ValueError("--untrained and --weights: expected one of them, got both")
    weights = args.weights
    if weights is None and not args.untrained:
        try:
            weights = str(shipped_weights(args.variant))
        except FileNotFoundError as exc:
            raise ValueError(
                f"--variant {args.variant}: {exc}; pass --weights or --untrained"
            ) from exc
    if weights is not None:
        model = load_weights(weights, device=args.device)
    else:
        torch.manual_seed(0)
        make = compact_config if args.size == "compact" else paper_config
        model = USXComplete(make(args.variant))
    model = model.to(args.device).eval()
    us, xr = _synthetic_observations(args.us_points, args.xray_points)
    xr_in = xr if model.config.variant.uses_xray else None

    def once() -> None:
        complete(us, xr_in, LEVEL_NAMES, model, device=args.device, n_samples=args.samples)
        if args.device == "cuda":
            torch.cuda.synchronize()

    times = time_runs(once, runs=args.runs, warmup=args.warmup)
    return {
        **summarise(times),
        "device": args.device,
        "threads": torch.get_num_threads(),
        "samples": args.samples,
        "variant": model.config.variant.value,
        "size": args.size if weights is None else "weights",
        "parameters": count_parameters(model),
        "vertebrae": 5,
        "us_points": args.us_points,
        "xray_points": args.xray_points,
        "weights": weights if weights is not None else "untrained",
    }
