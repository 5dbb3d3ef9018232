"""``usx calibrate accuracy``: the calibration estimators against the truth on simulated
scenes of several seeds, and (``--end-to-end``) the completed spine with the estimated
calibration against the true one."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from usx_ros.tools.cli_calibrate import (
    IMAGE_TOPIC,
    JOINT_TOPIC,
    run_simulate,
    run_spatial,
    run_temporal,
)


def _seeds(text: str) -> list[int]:
    if "-" in text:
        a, b = (int(v) for v in text.split("-"))
        return list(range(a, b + 1))
    return [int(v) for v in text.split(",")]


def run_accuracy(args: argparse.Namespace) -> int:
    """``usx calibrate accuracy``; see ``usx_ros.tools.cli_calibrate``."""
    import shutil

    import numpy as np
    from scipy.spatial.transform import Rotation

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=False)
    rows = []
    for seed in _seeds(args.seeds):
        offset = float(np.random.default_rng([seed, 23]).uniform(-80.0, 80.0))
        d = out / str(seed)
        common = {"robot_name": "lbr", "joint_topic": JOINT_TOPIC, "image_topic": IMAGE_TOPIC}
        sim = {"calibration": None, "poses": 36, "heave_s": 8.0, "seed": seed, "offset_ms": offset}
        # the spatial scene starts 3 mm / 3 deg / 5 % off; the temporal one needs no start
        for kind, error in (("spatial", (3.0, 3.0, 5.0)), ("temporal", (0.0, 0.0, 0.0))):
            mm, deg, pct = error
            run_simulate(
                argparse.Namespace(
                    kind=kind,
                    out=d / kind,
                    error_mm=mm,
                    error_deg=deg,
                    spacing_error_pct=pct,
                    **sim,
                )
            )
        run_spatial(
            argparse.Namespace(
                bag=d / "spatial" / "bag",
                initial=d / "spatial" / "initial.yaml",
                out=d / "estimated.yaml",
                json=d / "spatial.json",
                **common,
            )
        )
        run_temporal(
            argparse.Namespace(
                bag=d / "temporal" / "bag",
                json=d / "temporal.json",
                calibration=None,
                out=None,
                **common,
            )
        )
        truth = json.loads((d / "spatial" / "truth.json").read_text())
        est = json.loads((d / "spatial.json").read_text())
        tem = json.loads((d / "temporal.json").read_text())
        A, B = np.array(truth["T_flange_image"]), np.array(est["T_flange_image"])
        row = {
            "seed": seed,
            "converged": est["converged"],
            "trans_error_mm": float(np.linalg.norm(B[:3, 3] - A[:3, 3])),
            "rot_error_deg": float(
                np.degrees(Rotation.from_matrix(B[:3, :3] @ A[:3, :3].T).magnitude())
            ),
            "spacing_error_pct": float(
                100
                * np.max(np.abs(np.array(est["pixel_spacing_mm"]) / truth["pixel_spacing_mm"] - 1))
            ),
            "residual_rms_mm": est["residual_mm"]["rms"],
            "offset_true_ms": offset,
            "offset_error_ms": tem["offset_ms"] - offset,
            "temporal_converged": tem["converged"],
        }
        if args.end_to_end and est["converged"]:
            row |= _end_to_end(seed, d / "estimated.yaml")
        if not args.keep_bags:
            shutil.rmtree(d / "spatial" / "bag")
            shutil.rmtree(d / "temporal" / "bag")
        print(json.dumps(row), file=sys.stderr)
        rows.append(row)
    summary = {}
    for key in (
        "trans_error_mm",
        "rot_error_deg",
        "spacing_error_pct",
        "offset_error_ms",
        "cd_ratio",
    ):
        v = np.abs([r[key] for r in rows if key in r])
        if len(v):
            summary[key] = {
                "median": float(np.median(v)),
                "mean": float(v.mean()),
                "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
                "max": float(v.max()),
            }
    summary["converged"] = sum(r["converged"] for r in rows)
    summary["temporal_converged"] = sum(r["temporal_converged"] for r in rows)
    report = {"seeds": _seeds(args.seeds), "per_seed": rows, "summary": summary}
    Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(summary, indent=1))
    return 0


def _end_to_end(seed: int, estimated: Path) -> dict:
    """``usx pipeline`` on the phantom of ``seed`` with the estimated and the true calibration."""
    from usx_model.evaluation.offline import run_offline
    from usx_model.network.weights import load_weights
    from usx_model.sim.phantom.spine import generate_spine
    from usx_model.weights import shipped_weights

    full = load_weights(shipped_weights("full"))
    us_only = load_weights(shipped_weights("us_only"))
    spine = generate_spine(seed)
    cd = {}
    for name, cal in (("true", None), ("estimated", estimated)):
        r = run_offline(spine, full, us_only, seed=seed, calibration=cal).report
        cd[name] = r["completion"]["cd_l1_mm"]
    return {
        "cd_true_mm": cd["true"],
        "cd_estimated_mm": cd["estimated"],
        "cd_ratio": cd["estimated"] / cd["true"],
    }
