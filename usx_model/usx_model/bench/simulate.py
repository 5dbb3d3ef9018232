"""``usx bench simulate``: speed (and acceptance figures) of the physics-aware simulators.

Times, on procedurally generated spines: the US partial clouds of a whole spine, the
lateral X-ray (2.5D points + DRR with labels) of a whole spine, and B-mode frames of a
512 x 512 linear probe along a sweep (ms per frame). Medians over repeats. With
``--acceptance`` it also reports the occlusion fractions of the partials (body vs
posterior elements within 1.5 mm) and the bone-echo recall of the B-mode frames.
"""

from __future__ import annotations

import argparse

import numpy as np

from usx_model.bench.common import summarise, time_runs
from usx_model.sim.phantom.types import Spine

NAME = "simulate"
HELP = "time the US partial, X-ray and B-mode simulators on generated spines"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=5000, help="first phantom seed")
    parser.add_argument("--spines", type=int, default=1, help="number of spines (seeds)")
    parser.add_argument("--runs", type=int, default=3, help="timed repeats per spine")
    parser.add_argument("--frames", type=int, default=50, help="B-mode frames per sweep")
    parser.add_argument(
        "--acceptance", action="store_true", help="also report occlusion fractions and recall"
    )


def _spine(seed: int) -> Spine:
    from usx_model.sim.phantom.spine import generate_spine

    return generate_spine(seed)


def run(args: argparse.Namespace) -> dict:
    from usx_model.sim.bmode import BModeSimulator, bone_echo_recall
    from usx_model.sim.probe import ProbeModel, sweep_poses
    from usx_model.sim.scene import SpineScene
    from usx_model.sim.us_partial import simulate_us_partials
    from usx_model.sim.visibility import spine_visibility
    from usx_model.sim.xray import lateral_geometry, render_lateral_xray, xray_points_25d

    if args.spines < 1 or args.frames < 1:
        raise ValueError(f"--spines and --frames must be >= 1, got {args.spines}, {args.frames}")
    us_s, xray_s, frame_s, body, post, recall = [], [], [], [], [], []
    for seed in range(args.seed, args.seed + args.spines):
        spine = _spine(seed)
        us_s += time_runs(lambda s=spine: simulate_us_partials(s, seed=0), args.runs)
        geom = lateral_geometry(spine)
        xray_s += time_runs(
            lambda s=spine, g=geom: (xray_points_25d(s), render_lateral_xray(s, g)), args.runs
        )
        sim = BModeSimulator(spine, ProbeModel(), seed=seed, scene=SpineScene(spine))
        poses = sweep_poses(spine, args.frames)
        times = time_runs(lambda sim=sim, p=poses: sim.render_sweep(p), args.runs)
        frame_s += [t / args.frames for t in times]
        if args.acceptance:
            vis = spine_visibility(spine, simulate_us_partials(spine, seed=seed))
            body += [v.body for v in vis.values()]
            post += [v.posterior for v in vis.values()]
            r = [bone_echo_recall(f) for f in sim.render_sweep(poses) if f.bone_mask.any()]
            recall += r
    out = {
        "seeds": [args.seed, args.seed + args.spines - 1],
        "us_partial_per_spine_s": summarise(us_s),
        "xray_per_spine_s": summarise(xray_s),
        "bmode_per_frame_512x512_s": summarise(frame_s),
        "bmode_median_ms_per_frame": 1000.0 * summarise(frame_s)["median_s"],
    }
    if args.acceptance:
        out["acceptance"] = {
            "body_fraction_within_1p5mm": float(np.mean(body)),
            "posterior_fraction_within_1p5mm": float(np.mean(post)),
            "bone_echo_recall_mean": float(np.mean(recall)),
            "bone_echo_recall_min": float(np.min(recall)),
            "frames_with_bone": len(recall),
        }
    return out
