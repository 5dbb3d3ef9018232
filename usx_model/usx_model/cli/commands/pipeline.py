"""``usx pipeline``: a simulated robotic sweep through every stage, scored per stage."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from usx_model.network.us_consistency import US_SNAP_MM


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "pipeline",
        help="offline end-to-end run on a phantom spine (or a real one: VerSe volume, meshes)",
        description=__doc__,
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--phantom-seed", type=int, help="generate the phantom spine of this seed")
    src.add_argument(
        "--verse",
        nargs=2,
        metavar=("MASK", "CTD_JSON"),
        help="a real VerSe label volume and its centroid JSON as the phantom",
    )
    src.add_argument(
        "--meshes",
        metavar="DIR",
        help="per-level meshes of one person in anatomical relation as the phantom"
        " (e.g. <subject>_L1.ply ... _L5.ply, as usx evaluate --real groups them)",
    )
    p.add_argument("--json", required=True, help="write the stage report here")
    p.add_argument("--report", default=None, help="folder for a PNG render and report.md")
    p.add_argument("--weights-full", default=None, help="default: shipped full model")
    p.add_argument("--weights-us-only", default=None, help="default: shipped US-only model")
    p.add_argument("--seed", type=int, default=0, help="speckle/noise/perturbation seed")
    p.add_argument("--speed", type=float, default=10.0, help="sweep speed, mm/s")
    p.add_argument(
        "--lateral-offsets",
        type=_offsets,
        default=None,
        metavar="MM[,MM...]",
        help="one pass per lateral probe offset (default: -20,0,20, a serpentine)",
    )
    p.add_argument(
        "--probe-calibration",
        default=None,
        metavar="YAML",
        help="probe calibration whose hand-eye mounts the probe (default: config/probe.yaml)",
    )
    p.add_argument(
        "--calibration",
        default=None,
        metavar="YAML",
        help="the probe calibration the compounding uses (e.g. from `usx calibrate`); "
        "default: the truth, perturbed by --calib-error-*",
    )
    p.add_argument(
        "--no-xray-registration",
        action="store_true",
        help="place the X-ray as given (default: first re-register it to the US bone points)",
    )
    p.add_argument(
        "--us-snap-mm",
        type=float,
        default=US_SNAP_MM,
        help="move predicted points within this of the US bone points onto their surface "
        "(after the gate; 0 = off; default: the completion node's, %(default)s mm), here and "
        "in the ideal completion",
    )
    p.add_argument(
        "--no-breathing-compensation",
        action="store_true",
        help="keep the bone points as compounded (default: fit and remove breathing)",
    )
    cond = p.add_argument_group("lab conditions (default: none)")
    for flag, metavar, text in _CONDITIONS:
        cond.add_argument(flag, type=float, default=None, metavar=metavar, help=text)
    p.set_defaults(func=_run)


#: (flag, metavar, help) of each ``ChainConditions`` field
_CONDITIONS = (
    ("--breathing-mm", "MM", "peak-to-peak antero-posterior breathing excursion"),
    ("--breathing-hz", "HZ", "breathing rate (default 0.25)"),
    ("--xray-shift-mm", "MM", "patient translation between X-ray and sweep (random direction)"),
    ("--xray-shift-deg", "DEG", "patient rotation between X-ray and sweep (random axis)"),
    ("--calib-error-mm", "MM", "probe calibration translation error"),
    ("--calib-error-deg", "DEG", "probe calibration rotation error"),
    ("--time-offset-ms", "MS", "images stamped this much before they were acquired"),
    ("--contact-loss-frac", "P", "share of frames with the probe partly or wholly off the skin"),
)


def _conditions(args: argparse.Namespace):
    from usx_model.sim.conditions import ChainConditions

    given = {
        flag[2:].replace("-", "_"): getattr(args, flag[2:].replace("-", "_"))
        for flag, _, _ in _CONDITIONS
    }
    return ChainConditions(**{k: v for k, v in given.items() if v is not None})


def _offsets(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated millimetres, e.g. -20,0,20, got {text!r}"
        ) from None
    return values


def _run(args: argparse.Namespace) -> int:
    from usx_model.evaluation.offline import run_offline
    from usx_model.evaluation.spine_report import render_spine
    from usx_model.network.weights import load_weights
    from usx_model.weights import shipped_weights

    if args.verse:
        from usx_model.evaluation.levels import verse_spine_with_bodies

        spine = verse_spine_with_bodies(*args.verse)
    elif args.meshes:
        from usx_model.evaluation.real import spine_from_meshes

        spine = spine_from_meshes(args.meshes)
    else:
        from usx_model.sim.phantom.spine import generate_spine

        spine = generate_spine(args.phantom_seed)
    conditions = _conditions(args)
    full = load_weights(args.weights_full or shipped_weights("full"))
    us_only = load_weights(args.weights_us_only or shipped_weights("us_only"))
    offsets = {} if args.lateral_offsets is None else {"lateral_offsets_mm": args.lateral_offsets}
    res = run_offline(
        spine,
        full,
        us_only,
        seed=args.seed,
        sweep_speed_mm_s=args.speed,
        probe_calibration=args.probe_calibration,
        conditions=conditions,
        calibration=args.calibration,
        breathing_compensation=not args.no_breathing_compensation,
        xray_registration=not args.no_xray_registration,
        us_snap_mm=args.us_snap_mm,
        **offsets,
    )
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(res.report, indent=2) + "\n")
    if args.report:
        out = Path(args.report)
        render_spine(
            out / "pipeline.png",
            res.R_base_lps,
            res.completed_base_mm,
            res.bone_points_base_mm,
            res.gt_base_mm,
            title=spine.spine_id,
        )
    r = res.report
    print(
        json.dumps(
            {k: r[k] for k in ("conditions", "bone_points", "registration", "xray", "level_split")}
            | {
                "completion_cd_l1_mm": r["completion"]["cd_l1_mm"],
                "completion_ideal_cd_l1_mm": r["completion_ideal"]["cd_l1_mm"],
                "completion_ideal_no_body_cd_l1_mm": r["completion_ideal_no_body"]["cd_l1_mm"],
            },
            indent=2,
        )
    )
    return 0
