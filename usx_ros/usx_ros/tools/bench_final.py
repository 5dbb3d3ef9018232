"""``usx bench final --bag BAG``: what a sweep's end costs, stage by stage, on a recorded sweep.

After a sweep ends, xray_ingest places the X-ray on the sweep's final bone points and
completion completes the five levels from both; the spine is final only then. This reads the
last ``/usx/bone_points``, ``/usx/xray`` and ``/usx/xray_points`` of a bag (``make demo``
records them) and times those two steps in one process, on one thread, as the nodes run them
with the phantom launch's parameters (re-registration on, the X-ray's registration gradients
made once, as xray_ingest keeps them; ``n_samples`` 1; the node's ``us_snap_mm``): medians
of ``--runs`` after one untimed run. It also says whether the placement made here equals the
one recorded (the live graph's), so the figures are of the same work. Without the graph's
transport, settling and the other nodes' load: ``usx bench graph`` measures those.
"""

from __future__ import annotations

import os
import statistics
import sys
import time

NAME = "final"
HELP = "a recorded sweep's end: X-ray placement and spine completion, stage by stage"

TOPICS = ("/usx/bone_points", "/usx/xray", "/usx/xray_points")


def add_arguments(parser) -> None:
    parser.add_argument("--bag", required=True, help="a bag with a finished sweep (make demo)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each step")
    parser.add_argument("--samples", type=int, default=1, help="posterior samples (node: 1)")


def _last_messages(bag: str) -> dict:
    """The last message of each of TOPICS, deserialised.

    Raises:
        ValueError: not a readable bag, or one of TOPICS missing (names it).
    """
    from usx_ros.tools.bag import read_bag

    last = {rec.topic: rec for rec in read_bag(bag, TOPICS)}
    missing = [t for t in TOPICS if t not in last]
    if missing:
        raise ValueError(
            f"bag {bag} has no {', '.join(missing)}: record a finished sweep (make demo)"
        )
    return {topic: rec.deserialize() for topic, rec in last.items()}


def _inputs(bag: str) -> tuple:
    """(final bone points mm, XrayObservation, recorded placement level -> mm points)."""
    import numpy as np

    from usx_ros.conversions import cloud_to_array, xray_view_from_msg, xyz_from_cloud_mm

    msgs = _last_messages(bag)
    bone = xyz_from_cloud_mm(msgs["/usx/bone_points"])
    xray = xray_view_from_msg(msgs["/usx/xray"])
    placed = msgs["/usx/xray_points"]
    pts = xyz_from_cloud_mm(placed)
    level = cloud_to_array(placed, ("x", "y", "z", "level"))["level"].astype(int)
    return bone, xray, {int(lv): pts[level == lv] for lv in np.unique(level)}


def _median_run(fn, runs: int) -> tuple[float, object]:
    out = fn()  # untimed: first-call costs (imports, allocator, kernels)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def _max_difference_mm(a: dict, b: dict) -> float:
    """Largest coordinate difference of two placements (inf when their points differ in
    levels or counts)."""
    import numpy as np

    if sorted(a) != sorted(b) or any(len(a[k]) != len(b[k]) for k in a):
        return float("inf")
    return max(
        float(np.abs(np.sort(a[k], axis=0) - np.sort(b[k], axis=0)).max()) if len(a[k]) else 0.0
        for k in a
    )


def run(args) -> dict:
    if args.runs < 1:
        raise ValueError(f"--runs: expected >= 1, got {args.runs}")
    if args.samples < 0:
        raise ValueError(f"--samples: expected >= 0, got {args.samples}")
    if "open3d" not in sys.modules:  # Open3D's neighbour search reads it on first import
        os.environ["OMP_NUM_THREADS"] = "1"
    import numpy as np
    import torch

    from usx_model.completion.spine import PatientPrior, SpineCompleter
    from usx_model.completion.xray_placement import place_xray, registration_gradients
    from usx_model.network.weights import load_weights
    from usx_model.weights import shipped_weights
    from usx_ros.nodes.completion import CompletionParams
    from usx_ros.nodes.xray_ingest import XrayIngestParams

    torch.set_num_threads(1)  # the completion node's default
    bone, xray, recorded = _inputs(args.bag)
    posterior = np.array(XrayIngestParams().patient_posterior)
    gradients = registration_gradients(xray, posterior)
    place_s, placed = _median_run(lambda: place_xray(bone, xray, posterior, gradients), args.runs)
    gradients_s, _ = _median_run(lambda: registration_gradients(xray, posterior), args.runs)

    p = CompletionParams()
    models = {v: load_weights(str(shipped_weights(v)), "cpu") for v in ("full", "us_only")}
    completer = SpineCompleter(
        models["full"], models["us_only"], "cpu", args.samples, us_snap_mm=p.us_snap_mm
    )
    completer.warm_up()
    prior = PatientPrior(np.array(p.patient_cranial), np.array(p.patient_posterior))
    stages: dict[str, list[float]] = {}

    def complete():
        result = completer.complete(bone, prior, placed)
        for name, s in result.timings_s.items():
            stages.setdefault(name, []).append(s)
        return result

    complete_s, result = _median_run(complete, args.runs)
    return {
        "bag": str(args.bag),
        "bone_points": len(bone),
        "xray_points": int(sum(len(v) for v in placed.values())),
        "threads": torch.get_num_threads(),
        "samples": args.samples,
        "runs": args.runs,
        "xray_placement_s": place_s,
        "registration_gradients_s": gradients_s,
        "placement_vs_recorded_max_mm": _max_difference_mm(placed, recorded),
        "completion_s": complete_s,
        "completion_stages_s": {k: statistics.median(v[1:]) for k, v in stages.items()},
        "placement_plus_completion_s": place_s + complete_s,
        "levels": {f"L{lc.level}": lc.status for lc in result.levels},
    }
