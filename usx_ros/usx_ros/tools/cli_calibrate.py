"""``usx calibrate``: probe calibration from a recorded sweep over a plate in a water bath.

- ``simulate --kind spatial|temporal|degenerate --seed S --out DIR``: the phantom's
  calibration scene: ``DIR/bag`` (rosbag2, MCAP: ``/lbr/joint_states`` and ``/us/image``),
  ``DIR/truth.json`` (``T_flange_image`` 4x4 mm, ``pixel_spacing_mm``, ``offset_ms``) and
  ``DIR/initial.yaml`` (the truth perturbed by ``--error-mm/--error-deg/--spacing-error-pct``);
- ``spatial --bag BAG --initial CALIB.yaml --out CALIB.yaml --json OUT.json``: image ->
  flange and pixel spacing (single-wall method), from the frames taken while the robot
  stood still; exit 1 when the sweep did not determine it (``converged: false``);
- ``temporal --bag BAG --json OUT.json [--calibration CALIB.yaml --out CALIB.yaml]``: the
  image stamp offset ``offset_ms`` (add it to image stamps to get the joint-state clock)
  from an up-and-down motion over the plate, written into the calibration file's
  ``temporal_offset_ms`` with ``--out``;
- ``accuracy --seeds A-B --out DIR --json OUT.json``: the three above on simulated scenes
  of each seed (a 3 mm / 3 deg / 5 % start, a random offset in [-80, 80] ms), errors
  against the truth; ``--end-to-end`` also runs ``usx pipeline`` on the seed's phantom
  with the estimated calibration and with the true one.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

JOINT_TOPIC = "/lbr/joint_states"
IMAGE_TOPIC = "/us/image"
#: simulated recordings start at this wall-clock time (2026-01-01), ns
EPOCH_NS = 1_767_225_600 * 1_000_000_000


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "calibrate",
        help="probe calibration (spatial, temporal) from a plate sweep",
        description=__doc__,
    )
    sub = p.add_subparsers(dest="calibration", required=True, metavar="KIND")

    s = sub.add_parser("simulate", help="write a simulated calibration recording")
    s.add_argument("--kind", required=True, choices=("spatial", "temporal", "degenerate"))
    s.add_argument("--seed", type=int, required=True)
    s.add_argument("--out", required=True, help="new folder for bag/, truth.json, initial.yaml")
    s.add_argument("--offset-ms", type=float, default=0.0, help="images stamped this much early")
    s.add_argument("--error-mm", type=float, default=0.0, help="initial.yaml translation error")
    s.add_argument("--error-deg", type=float, default=0.0, help="initial.yaml rotation error")
    s.add_argument(
        "--spacing-error-pct", type=float, default=0.0, help="initial.yaml spacing error"
    )
    s.add_argument(
        "--calibration", default=None, help="the true calibration (default: config/probe.yaml)"
    )
    s.add_argument("--poses", type=int, default=36, help="spatial: stop-and-image poses")
    s.add_argument("--heave-s", type=float, default=8.0, help="temporal: seconds of heave")
    s.set_defaults(func=run_simulate)

    a = sub.add_parser("accuracy", help="estimators against the truth on simulated scenes")
    a.add_argument("--seeds", default="2301-2310", help="A-B or A,B,... (default 2301-2310)")
    a.add_argument("--out", required=True, help="new folder for the scenes and estimates")
    a.add_argument("--json", required=True, help="write the per-seed errors and summary here")
    a.add_argument("--end-to-end", action="store_true", help="also usx pipeline per seed")
    a.add_argument("--keep-bags", action="store_true", help="keep the bags (~200 MB each)")
    a.set_defaults(func=_accuracy)

    for name, helptext in (
        ("spatial", "image -> flange and pixel spacing"),
        ("temporal", "image clock offset"),
    ):
        e = sub.add_parser(name, help=helptext)
        e.add_argument("--bag", required=True)
        e.add_argument("--json", required=True, help="write the result here")
        e.add_argument("--joint-topic", default=JOINT_TOPIC)
        e.add_argument("--image-topic", default=IMAGE_TOPIC)
        e.add_argument("--robot-name", default="lbr", help="joint name prefix (lbr_A1 ...)")
        if name == "spatial":
            e.add_argument("--initial", required=True, help="starting calibration YAML")
            e.add_argument("--out", required=True, help="write the estimated calibration YAML here")
            e.set_defaults(func=run_spatial)
        else:
            e.add_argument(
                "--calibration", default=None, help="calibration YAML (default: config/probe.yaml)"
            )
            e.add_argument(
                "--out",
                default=None,
                help="write --calibration with the estimated temporal_offset_ms here",
            )
            e.set_defaults(func=run_temporal)


def _accuracy(args: argparse.Namespace) -> int:
    from usx_ros.tools.calibration_accuracy import run_accuracy

    return run_accuracy(args)


def run_simulate(args: argparse.Namespace) -> int:
    """``usx calibrate simulate``: bag, truth.json and initial.yaml in a new folder."""
    from sensor_msgs.msg import JointState
    from std_msgs.msg import Header

    from usx_model.sim.calibration_scene import plan_calibration_scene
    from usx_model.sim.conditions import condition_rng, perturbed_calibration
    from usx_model.sim.plate import PlateScene
    from usx_model.sim.probe import ProbeModel
    from usx_model.tracking.calibration import (
        ImageCalibration,
        load_probe_calibration,
        save_probe_calibration,
    )
    from usx_model.tracking.iiwa import JOINT_NAMES
    from usx_ros.conversions import array_to_image, ns_to_stamp
    from usx_ros.tools.bag import BagWriter

    out = Path(args.out)
    if out.exists():
        raise ValueError(f"{out} exists; choose a new folder")
    truth = load_probe_calibration(args.calibration)
    su, sv = truth.image.spacing_mm
    probe = ProbeModel(pixel_mm=su)
    if (
        su != sv
        or truth.image.origin_px != ImageCalibration.centred_on_face(512, (su, sv)).origin_px
    ):
        raise ValueError(
            "the plate simulator draws square pixels with the origin at the face centre "
            "of a 512-column image"
        )
    rate = 30.0 if args.kind == "temporal" else 15.0
    scene = plan_calibration_scene(
        args.kind,
        args.seed,
        truth.T_ee_probe,
        frame_rate_hz=rate,
        n_poses=args.poses,
        heave_s=args.heave_s,
    )
    plate = PlateScene(probe, seed=args.seed)
    out.mkdir(parents=True)
    names = [f"lbr_{j.split('_', 1)[1]}" for j in JOINT_NAMES]
    offset_ns = round(args.offset_ms * 1e6)
    with BagWriter(out / "bag") as bag:
        k = 0
        for t, q in zip(scene.joint_times_ns, scene.joint_positions_rad, strict=True):
            while k < len(scene.frame_times_ns) and scene.frame_times_ns[k] <= t:
                stamp = EPOCH_NS + int(scene.frame_times_ns[k]) - offset_ns
                header = Header(frame_id="us_image", stamp=ns_to_stamp(stamp))
                img = array_to_image(plate.render(scene.T_plate_probe[k]), "mono8", header)
                bag.write(IMAGE_TOPIC, img, EPOCH_NS + int(scene.frame_times_ns[k]))
                k += 1
            header = Header(frame_id="", stamp=ns_to_stamp(EPOCH_NS + int(t)))
            bag.write(
                JOINT_TOPIC,
                JointState(header=header, name=names, position=[float(v) for v in q]),
                EPOCH_NS + int(t),
            )
    rng = condition_rng(args.seed, "initial_calibration")
    initial = perturbed_calibration(
        truth, rng, args.error_mm, args.error_deg, args.spacing_error_pct
    )
    save_probe_calibration(
        initial,
        out / "initial.yaml",
        f"usx calibrate simulate --kind {args.kind} --seed {args.seed}: the truth perturbed by "
        f"{args.error_mm} mm, {args.error_deg} deg, {args.spacing_error_pct} % spacing",
    )
    truth_json = {
        "T_flange_image": truth.T_ee_image.tolist(),
        "pixel_spacing_mm": list(truth.image.spacing_mm),
        "offset_ms": float(args.offset_ms),
        "kind": args.kind,
        "seed": args.seed,
        "frames": len(scene.frame_times_ns),
    }
    (out / "truth.json").write_text(json.dumps(truth_json, indent=1) + "\n")
    print(
        json.dumps(
            {
                "out": str(out),
                "frames": len(scene.frame_times_ns),
                "joint_states": len(scene.joint_times_ns),
            }
        )
    )
    return 0


def _read(args: argparse.Namespace):
    """Joint stamps and angles; image stamps and the plate line of every frame."""
    import numpy as np

    from usx_model.calibration.plate_line import detect_plate_line
    from usx_model.tracking.iiwa import JOINT_NAMES
    from usx_ros.conversions import image_to_array, stamp_to_ns
    from usx_ros.tools.bag import read_bag

    names = [f"{args.robot_name}_{j.split('_', 1)[1]}" for j in JOINT_NAMES]
    joint_t, joint_q, image_t, lines, shape = [], [], [], [], None
    for rec in read_bag(args.bag, (args.joint_topic, args.image_topic)):
        msg = rec.deserialize()
        if rec.topic == args.joint_topic:
            index = {n: i for i, n in enumerate(msg.name)}
            if any(n not in index for n in names):
                raise ValueError(f"{args.joint_topic}: a JointState lacks some of {names}")
            joint_t.append(stamp_to_ns(msg.header.stamp))
            joint_q.append([msg.position[index[n]] for n in names])
        else:
            img = image_to_array(msg)
            shape = img.shape
            image_t.append(stamp_to_ns(msg.header.stamp))
            lines.append(detect_plate_line(img))
    if not joint_t or not image_t:
        raise ValueError(
            f"{args.bag}: expected {args.joint_topic} and {args.image_topic} messages, got "
            f"{len(joint_t)} joint states and {len(image_t)} images"
        )
    order = np.argsort(joint_t, kind="stable")
    return np.asarray(joint_t)[order], np.asarray(joint_q)[order], np.asarray(image_t), lines, shape


def run_spatial(args: argparse.Namespace) -> int:
    """``usx calibrate spatial``: 0 and the calibration file written, or 1 (not converged)."""
    from usx_model.calibration.recording import spatial_from_recording
    from usx_model.tracking.calibration import load_probe_calibration, save_probe_calibration

    initial = load_probe_calibration(args.initial)
    joint_t, joint_q, image_t, lines, _ = _read(args)
    result, counts = spatial_from_recording(joint_t, joint_q, image_t, lines, initial)
    report = result.as_dict() | {
        "frames_by_kind": counts,
        "bag": str(args.bag),
        "initial": str(args.initial),
    }
    Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
    if result.converged:
        save_probe_calibration(
            result.calibration,
            args.out,
            f"usx calibrate spatial --bag {args.bag}: {counts['used']} still frames, RMS "
            f"residual {result.residual_mm['rms']:.3f} mm",
        )
    print(
        json.dumps(
            {
                k: report[k]
                for k in (
                    "converged",
                    "pixel_spacing_mm",
                    "residual_mm",
                    "frames_by_kind",
                    "warnings",
                )
            }
        )
    )
    if not result.converged:
        print(f"usx calibrate spatial: not converged, {args.out} not written", file=sys.stderr)
        return 1
    return 0


def run_temporal(args: argparse.Namespace) -> int:
    """``usx calibrate temporal``: 0 with ``offset_ms`` in the JSON, or 1 (not converged)."""
    import dataclasses

    from usx_model.calibration.recording import temporal_from_recording
    from usx_model.tracking.calibration import load_probe_calibration, save_probe_calibration

    cal = load_probe_calibration(args.calibration)
    joint_t, joint_q, image_t, lines, _ = _read(args)
    result = temporal_from_recording(joint_t, joint_q, image_t, lines, cal.image.origin_px[0])
    report = result.as_dict() | {"bag": str(args.bag)}
    Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report))
    if result.converged and args.out:
        save_probe_calibration(
            dataclasses.replace(cal, temporal_offset_ms=round(result.offset_ms, 3)),
            args.out,
            f"usx calibrate temporal --bag {args.bag}: offset {result.offset_ms:.3f} ms, "
            f"correlation {result.correlation:.4f}",
        )
    return 0 if result.converged else 1
