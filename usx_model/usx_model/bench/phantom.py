"""``usx bench phantom``: throughput of procedural vertebra and spine generation."""

from __future__ import annotations

import argparse
import statistics

from usx_model.bench.common import summarise, time_runs

NAME = "phantom"
HELP = "phantom generation throughput (vertebrae/s, spines/s)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runs", type=int, default=5, help="timed runs (default 5)")
    parser.add_argument("--spines", type=int, default=2, help="spines per run (default 2)")
    parser.add_argument("--spacing-mm", type=float, default=0.9, help="mesh grid spacing")


def run(args: argparse.Namespace) -> dict:
    from usx_model.phantom.spine import generate_spine

    if args.spines < 1:
        raise ValueError(f"--spines must be >= 1, got {args.spines}")
    state = {"next_seed": 0, "vertebrae": [], "vertices": []}

    def _batch() -> None:
        # Fresh seeds every run: the same seed would time identical work each time.
        for _ in range(args.spines):
            spine = generate_spine(state["next_seed"], spacing_mm=args.spacing_mm)
            state["next_seed"] += 1
            state["vertebrae"].append(len(spine.vertebrae))
            state["vertices"] += [len(m.vertices_mm) for m in spine.vertebrae.values()]

    times = time_runs(_batch, runs=args.runs, warmup=1)
    stats = summarise(times)
    n_vert = 5 * args.spines
    return {
        "spines_per_run": args.spines,
        "spacing_mm": args.spacing_mm,
        "seconds_per_run": stats,
        "spines_per_s": args.spines / stats["median_s"],
        "vertebrae_per_s": n_vert / stats["median_s"],
        "median_vertices_per_vertebra": statistics.median(state["vertices"]),
    }
