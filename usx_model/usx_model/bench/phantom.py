"""``usx bench phantom``: throughput of phantom generation and of the simulators on it.

Generation: spines (and vertebrae) per second. Simulation, on one generated spine: the
US partial views of all levels, the X-ray 2.5D points, the dataset builder's whole
per-spine sample set, and one 512 x 512 B-mode frame; medians of ``--runs``."""

from __future__ import annotations

import argparse
import statistics

from usx_model.bench.common import summarise, time_runs

NAME = "phantom"
HELP = "phantom generation and simulation throughput (spines/s, s per spine, ms per frame)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runs", type=int, default=5, help="timed runs (default 5)")
    parser.add_argument("--spines", type=int, default=2, help="spines per run (default 2)")
    parser.add_argument("--spacing-mm", type=float, default=0.9, help="mesh grid spacing")


def run(args: argparse.Namespace) -> dict:
    from usx_model.sim.phantom.spine import generate_spine

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
        "simulation": _simulation(args.runs, args.spacing_mm),
        "spines_per_run": args.spines,
        "spacing_mm": args.spacing_mm,
        "seconds_per_run": stats,
        "spines_per_s": args.spines / stats["median_s"],
        "vertebrae_per_s": n_vert / stats["median_s"],
        "median_vertices_per_vertebra": statistics.median(state["vertices"]),
    }


def _simulation(runs: int, spacing_mm: float) -> dict:
    """Median seconds of each simulator on one phantom spine (and ms per B-mode frame)."""
    from usx_model.dataset.builder import BuildOptions, build_spine_samples
    from usx_model.sim.bmode import BModeSimulator
    from usx_model.sim.phantom.spine import generate_spine
    from usx_model.sim.probe import sweep_poses
    from usx_model.sim.us_partial import simulate_us_partials
    from usx_model.sim.xray import xray_points_25d

    spine = generate_spine(10_000, spacing_mm=spacing_mm)
    bmode = BModeSimulator(spine, seed=0)
    poses = sweep_poses(spine, 16)
    frame = {"i": 0}

    def _frame() -> None:
        bmode.render(poses[frame["i"] % len(poses)])
        frame["i"] += 1

    def med(fn, n: int = runs) -> float:
        return summarise(time_runs(fn, runs=n, warmup=1))["median_s"]

    return {
        "us_partials_s_per_spine": med(lambda: simulate_us_partials(spine, seed=0)),
        "xray_points_s_per_spine": med(lambda: xray_points_25d(spine, jitter_seed=0)),
        "dataset_samples_s_per_spine": med(
            lambda: build_spine_samples(10_000, "train", BuildOptions()), max(1, runs // 2)
        ),
        "bmode_ms_per_frame": 1e3 * med(_frame, 3 * runs),
    }
