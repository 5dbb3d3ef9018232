"""``usx demo``: the phantom graph, headless, end to end — what ``make demo`` runs.

Live: the nodes of ``usx_ros.graph`` ("phantom") run one process each, as ``ros2 launch``
runs them (each its own Python interpreter and DDS participant); a bag recorder and a
monitor run in this process. The phantom sweeps, the completion appears on
``/usx/completed_spine``; then ``OUT/`` gets the bag, ``spine.png`` (completed spine over
the US points and the ground truth, lateral + axial), ``demo.rrd`` (the sweep as a Rerun
recording, ``usx view``) and ``report.json``/``report.md``
(per-level CD vs ground truth, latency per stage, frame drops from the nodes' status
topics).

Replay (``--replay BAG``): the same graph without the phantom, fed by ``bag_replay`` at
the original timing; the new completion is compared with the one stored in the bag.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import PointCloud2
from std_msgs.msg import Bool, String

from usx_model.evaluation.spine_report import render_spine, score_levels
from usx_model.ops.chamfer import chamfer_distance
from usx_msgs.action import RecordSweep
from usx_msgs.msg import SpineCompletion
from usx_ros.completion_status import STATUS_NAME
from usx_ros.conversions import cloud_to_array, m_to_mm
from usx_ros.dds import configure_dds
from usx_ros.graph import config_path, graph
from usx_ros.qos import RESULT_QOS
from usx_ros.sweep_action import ACTION_NAME
from usx_ros.tools.bag import read_bag
from usx_ros.tools.bag_record import BagRecorder
from usx_ros.tools.bag_replay import BagReplayer
from usx_ros.tools.launcher import spin_in_background, stop_processes

#: The replay starts and stops the sweep from the recorded phantom's sweep state (a bag
#: holds no service calls).
_REPLAY_SWEEP = ["-p", "sweep_source:=topic", "-r", "/usx/sweep/active:=/usx/phantom/sweep_active"]

RECORDED = [
    "/lbr/joint_states",
    "/us/image",
    "/usx/xray",
    "/usx/phantom/ground_truth",
    "/usx/phantom/sweep_active",
    "/usx/sweep_report",
    "/usx/bone_points",
    "/usx/xray_points",
    "/usx/completed_spine",
    "/usx/spine_completion",
    "/us_compounding/status",  # which frames the sweep placed (their stamps' digest)
]


def _cloud_by_level(msg: PointCloud2, extra: str | None = None) -> dict[int, np.ndarray]:
    arr = cloud_to_array(msg, ("x", "y", "z", "level"))
    xyz = m_to_mm(np.stack([arr["x"], arr["y"], arr["z"]], axis=1))
    out = {}
    for lv in np.unique(arr["level"]):
        sel = arr["level"] == lv
        out[int(lv)] = (xyz[sel], arr[extra][sel]) if extra else xyz[sel]
    return out


@dataclass
class Monitor:
    """Collects what the demo reports, with receive times (perf_counter, s)."""

    node: Node
    t: dict[str, float] = field(default_factory=dict)
    msgs: dict[str, object] = field(default_factory=dict)
    growth: list[tuple[float, list[str]]] = field(default_factory=list)  # live completions

    def __post_init__(self) -> None:
        subs = {
            "sweep_active": (Bool, "/usx/phantom/sweep_active"),
            "ground_truth": (PointCloud2, "/usx/phantom/ground_truth"),
            "bone_points": (PointCloud2, "/usx/bone_points"),
            "xray_points": (PointCloud2, "/usx/xray_points"),
            "completed_spine": (PointCloud2, "/usx/completed_spine"),
            "spine_completion": (SpineCompletion, "/usx/spine_completion"),
            "phantom_status": (String, "/phantom/status"),
            "compounding_status": (String, "/us_compounding/status"),
            "completion_status": (String, "/completion/status"),
        }
        for key, (cls, topic) in subs.items():
            self.node.create_subscription(cls, topic, self._cb(key), RESULT_QOS)
        # the sweep goal's feedback (the action's own topic, default QoS): live coverage
        self.node.create_subscription(
            RecordSweep.Impl.FeedbackMessage,
            f"{ACTION_NAME}/_action/feedback",
            self._cb("sweep_feedback"),
            10,
        )

    def _cb(self, key: str):
        def on_msg(msg) -> None:
            now = time.perf_counter()
            if key == "sweep_active":
                self.t["sweep_start" if msg.data else "sweep_end"] = now
                return
            if key == "spine_completion" and not msg.final:
                # a live completion while the sweep records: the spine growing
                levels = [v.level for v in msg.vertebrae]
                for lv in levels:
                    self.t.setdefault(f"live_{lv}", now)
                self.growth.append((now, levels))
                self.msgs["live_spine_completion"] = msg
                return
            self.msgs[key] = msg
            self.t.setdefault(key, now)
            if key == "sweep_feedback":  # when each level first met the coverage criterion
                fb = msg.feedback
                for lv, ok in zip(fb.levels, fb.covered, strict=True):
                    if ok:
                        self.t.setdefault(f"covered_{lv}", now)

        return on_msg

    def stats(self) -> dict:
        """Counters and timings the graph's nodes published on their status topics."""

        def status(key: str) -> dict:
            msg = self.msgs.get(key)
            return json.loads(msg.data) if msg is not None else {}

        out = {**status("phantom_status"), **status("compounding_status")}
        completion = status("completion_status")
        out["completion_latency_s"] = completion.get("latency_s", float("nan"))
        out["completion_inputs_wait_s"] = completion.get("inputs_wait_s", float("nan"))
        out["sweep_stop_to_result_s"] = completion.get("sweep_end_to_result_s", float("nan"))
        out["completion_stage_s"] = completion.get("stages_s", {})
        out["R_base_lps"] = completion.get("R_base_lps", np.eye(3).tolist())
        return out


def _graph_processes(
    params: Path, replay_bag: Path | None, weights: dict[str, str]
) -> list[tuple[str, subprocess.Popen]]:
    procs = []
    for d in graph("phantom"):
        if replay_bag is not None and d.name == "phantom":
            continue
        args = d.ros_args(params)
        if replay_bag is not None and d.name == "us_compounding":
            # No service calls in a bag: start/stop from the recorded sweep state.
            args += _REPLAY_SWEEP
        if d.name == "completion":
            for k, v in weights.items():
                args += ["-p", f"weights_{k}:={v}"]
        procs.append((d.name, subprocess.Popen([sys.executable, "-m", d.module, *args])))
    return procs


def _local_nodes(context, replay_bag: Path | None, record_to: Path) -> list[Node]:
    topics = RECORDED if replay_bag is None else RECORDED[5:]
    nodes: list[Node] = [
        BagRecorder(
            context=context,
            parameter_overrides=[
                Parameter("output", value=str(record_to)),
                Parameter("topics", value=topics),
            ],
        )
    ]
    return nodes


def _replayer(context, bag: Path) -> BagReplayer:
    return BagReplayer(
        context=context,
        parameter_overrides=[
            Parameter("bag", value=str(bag)),
            Parameter("topics", value=RECORDED[:5]),
            Parameter("start_delay_s", value=0.5),
        ],
    )


#: Subscribers the graph must have before a replay starts (the monitor's own on
#: /usx/bone_points): a transient-local sweep start sent to nobody would be lost.
_READY_SUBSCRIBERS = {
    "/lbr/joint_states": 1,
    "/us/image": 1,
    "/usx/xray": 1,
    "/usx/probe_pose": 1,
    "/usx/bone_points": 1,
    "/usx/sweep/bone_points": 2,
    "/usx/phantom/sweep_active": 2,
}
#: Topics between graph nodes that must have their publisher too before a replay starts:
#: poses are volatile, so any sent before us_compounding matched probe_tracker are lost
#: and the first frames are dropped for want of a pose.
_READY_PUBLISHERS = {"/usx/probe_pose": 1}
#: The monitor sees endpoints as discovery reaches it; the two other processes match a
#: moment later. Readiness must hold this long before the replay starts.
_READY_HOLD_S = 1.0


def _graph_ready(node: Node) -> bool:
    return all(node.count_subscribers(t) >= n for t, n in _READY_SUBSCRIBERS.items()) and all(
        node.count_publishers(t) >= n for t, n in _READY_PUBLISHERS.items()
    )


def run_demo(
    out: str | Path,
    replay: str | Path | None = None,
    params_file: str | Path | None = None,
    timeout_s: float = 300.0,
    weights: dict[str, str] | None = None,
) -> dict:
    """Run the demo; returns the report dict (also written to ``out``).

    ``weights`` maps ``full``/``us_only`` to weights files replacing the shipped ones.

    Raises:
        ValueError: a missing/corrupt replay bag, or no completion before the timeout.
    """
    out = Path(out)
    replay_bag = Path(replay) if replay else None
    if replay_bag is not None and not (replay_bag / "metadata.yaml").is_file():
        raise ValueError(f"{replay_bag} is not a rosbag2 folder (no metadata.yaml)")
    bag_dir = out / ("replay_bag" if replay_bag else "bag")
    if bag_dir.exists():
        shutil.rmtree(bag_dir)
    out.mkdir(parents=True, exist_ok=True)
    params = Path(params_file) if params_file else config_path("phantom")

    context = rclpy.context.Context()
    configure_dds()
    rclpy.init(context=context)
    t_start = time.perf_counter()
    procs = _graph_processes(params, replay_bag, weights or {})
    nodes = _local_nodes(context, replay_bag, bag_dir)
    monitor = Monitor(rclpy.create_node("usx_demo_monitor", context=context))
    # One thread: the recorder and the monitor are light, and rclpy's multi-threaded
    # executor costs more CPU per message than it saves (nodes/common.py).
    executor = SingleThreadedExecutor(context=context)
    for n in [*nodes, monitor.node]:
        executor.add_node(n)
    spinner = spin_in_background(executor)
    deadline = time.monotonic() + timeout_s
    try:
        if replay_bag is not None:
            ready_since = None
            while ready_since is None or time.monotonic() - ready_since < _READY_HOLD_S:
                if time.monotonic() > deadline:
                    counts = {t: monitor.node.count_subscribers(t) for t in _READY_SUBSCRIBERS}
                    raise ValueError(f"the graph's nodes did not come up: subscribers {counts}")
                if not _graph_ready(monitor.node):
                    ready_since = None
                elif ready_since is None:
                    ready_since = time.monotonic()
                time.sleep(0.1)
            nodes.append(_replayer(context, replay_bag))
            executor.add_node(nodes[-1])
        while not (
            "sweep_end" in monitor.t
            and "spine_completion" in monitor.msgs
            and monitor.t["spine_completion"] > monitor.t["sweep_end"]
        ):
            failed = [(name, p.returncode) for name, p in procs if p.poll() is not None]
            if failed:
                raise ValueError(f"node {failed[0][0]} exited with code {failed[0][1]}")
            if time.monotonic() > deadline:
                raise ValueError(f"no completed spine within {timeout_s:.0f} s")
            time.sleep(0.02)
        time.sleep(2.0)  # let the recorder and the monitor take the results in
    finally:
        stop_processes([p for _, p in procs])
        for n in nodes:
            close = getattr(n, "close", None)
            if close is not None:
                close()
        executor.shutdown()
        spinner.join(timeout=5.0)
        for n in [*nodes, monitor.node]:
            n.destroy_node()
        context.try_shutdown()
    stats = monitor.stats()
    if "frames_sent" in stats and "frames_placed" in stats:
        # Frames the compounding node never received: lost between the processes.
        stats["frames_lost_in_transport"] = (
            stats["frames_sent"] - stats["frames_placed"] - stats.get("frames_dropped", 0)
        )
    report = _report(monitor, stats, out, bag_dir, replay_bag, time.perf_counter() - t_start)
    if replay_bag is None:
        # the sweep for the Rerun viewer (`rerun out/demo/demo.rrd`)
        from usx_ros.tools.view import write_recording

        rrd = out / "demo.rrd"
        report["recording"] = {"path": str(rrd), **write_recording(bag_dir, rrd)}
    (out / ("replay_report.json" if replay_bag else "report.json")).write_text(
        json.dumps(report, indent=2) + "\n"
    )
    if replay_bag is None:
        (out / "report.md").write_text(_markdown(report))
    return report


def _report(monitor: Monitor, stats: dict, out: Path, bag_dir: Path, replay_bag, wall_s) -> dict:
    t = monitor.t
    completed = _cloud_by_level(monitor.msgs["completed_spine"])
    bone = m_to_mm(_xyz(monitor.msgs["bone_points"])) if "bone_points" in monitor.msgs else None
    report: dict = {
        "mode": "replay" if replay_bag else "live",
        "bag": str(bag_dir),
        "wall_s": wall_s,
        "graph": stats,
        "latency_s": {
            "sweep": t.get("sweep_end", np.nan) - t.get("sweep_start", np.nan),
            "sweep_end_to_bone_points": t.get("bone_points", np.nan) - t.get("sweep_end", np.nan),
            "sweep_end_to_completed_spine": t["spine_completion"] - t["sweep_end"],
            "completion_node_total": stats["completion_latency_s"],
            # of it, from the bone points' arrival to the start of the work (X-ray placement)
            "completion_inputs_wait": stats["completion_inputs_wait_s"],
            # us_compounding's stop to completion's result, in the nodes' clocks
            "sweep_stop_to_result_nodes": stats["sweep_stop_to_result_s"],
            "completion_stages": stats["completion_stage_s"],
        },
        "levels": {},
    }
    vertebrae = monitor.msgs["spine_completion"].vertebrae
    report["status"] = {v.level: STATUS_NAME.get(v.status, str(v.status)) for v in vertebrae}
    report["confidence"] = {v.level: round(float(v.confidence), 3) for v in vertebrae}
    report["status_message"] = {v.level: v.status_message for v in vertebrae if v.status_message}
    fb = monitor.msgs.get("sweep_feedback")
    if fb is not None:  # the sweep's last feedback: each level's coverage as the node saw it
        cov = fb.feedback
        report["coverage"] = {
            lv: round(float(c), 3) for lv, c in zip(cov.levels, cov.coverage, strict=True)
        }
    # seconds from a level meeting its coverage criterion to its first completion on
    # /usx/spine_completion (live while the sweep records, else the final one)
    report["level_ready_s"] = {
        lv: round(t.get(f"live_{lv}", t["spine_completion"]) - t[f"covered_{lv}"], 3)
        for lv in sorted(k.removeprefix("covered_") for k in t if k.startswith("covered_"))
    }
    # each level's first publication, s after the sweep's end (negative: during the sweep)
    report["first_published_after_sweep_end_s"] = {
        lv: round(t.get(f"live_{lv}", t["spine_completion"]) - t["sweep_end"], 3)
        for lv in (v.level for v in vertebrae)
    }
    start = t.get("sweep_start", np.nan)
    report["growth"] = [
        {"t_s": round(when - start, 2), "levels": levels} for when, levels in monitor.growth
    ]
    R = np.array(stats["R_base_lps"])
    gt_msg = monitor.msgs.get("ground_truth") or _bag_message(
        replay_bag, "/usx/phantom/ground_truth"
    )
    gt = None
    if gt_msg is not None:
        gt_all = _cloud_by_level(gt_msg, extra="part")
        gt = {lv: v[0] for lv, v in gt_all.items()}
        scores = score_levels(completed, gt, {lv: v[1] for lv, v in gt_all.items()})
        report["levels"] = {f"L{lv}": s for lv, s in scores.items()}
        report["mean_cd_l1_mm"] = float(np.mean([s["cd_l1_mm"] for s in scores.values()]))
    live_msg = monitor.msgs.get("live_spine_completion")
    if live_msg is not None:
        report["live"] = _live_against_final(live_msg, completed, gt)
    if replay_bag is not None:
        report["reproduction"] = _compare_with_recording(replay_bag, completed, stats)
    name = "replay_spine.png" if replay_bag else "spine.png"
    render_spine(out / name, R, completed, bone, gt, title=f"usx demo ({report['mode']})")
    report["png"] = str(out / name)
    return report


def _live_against_final(live_msg: SpineCompletion, final: dict, gt: dict | None) -> dict:
    """Each level's last live completion against its final one (CD-L1, mm) and, with the
    ground truth, its own CD-L1: what a user saw during the sweep, and how far it was off."""
    import torch

    out: dict = {"against_final_cd_l1_mm": {}, "cd_l1_mm": {}}
    for v in live_msg.vertebrae:
        lv = int(v.level.removeprefix("L"))
        pts = m_to_mm(_xyz(v.cloud))
        if not len(pts):
            continue
        for key, ref in (("against_final_cd_l1_mm", final), ("cd_l1_mm", gt or {})):
            if lv in ref and len(ref[lv]):
                cd = chamfer_distance(torch.as_tensor(pts)[None], torch.as_tensor(ref[lv])[None])
                out[key][v.level] = round(float(cd.cd_p[0]), 3)
    return out


def _xyz(msg: PointCloud2) -> np.ndarray:
    arr = cloud_to_array(msg)
    return np.stack([arr["x"], arr["y"], arr["z"]], axis=1).astype(np.float64)


def _bag_message(bag: Path | None, topic: str):
    if bag is None:
        return None
    records = list(read_bag(bag, topics=[topic]))
    return records[-1].deserialize() if records else None


def _compare_with_recording(bag: Path, completed: dict[int, np.ndarray], stats: dict) -> dict:
    """Symmetric max nearest-point distance (mm) per level, replay vs the recorded run.

    Also whether both runs placed the same frames (``same_frames``; None for a bag
    recorded without the compounding status): images are best-effort, so a machine under
    load may lose a frame in one run, and then the completions may differ by millimetres
    without anything being wrong with the pipeline.
    """
    import torch

    status_msg = _bag_message(bag, "/us_compounding/status")
    recorded_status = json.loads(status_msg.data) if status_msg is not None else {}
    recorded_digest = recorded_status.get("frames_digest")
    frames = {
        "recorded_placed": recorded_status.get("frames_placed"),
        "replay_placed": stats.get("frames_placed"),
        "same_frames": None
        if recorded_digest is None
        else recorded_digest == stats.get("frames_digest"),
    }

    recorded_msg = _bag_message(bag, "/usx/completed_spine")
    if recorded_msg is None:
        raise ValueError(f"{bag} holds no /usx/completed_spine to compare with")
    recorded = _cloud_by_level(recorded_msg)
    per_level = {}
    for lv in sorted(set(recorded) | set(completed)):
        if lv not in recorded or lv not in completed:
            per_level[f"L{lv}"] = None
            continue
        a = torch.as_tensor(recorded[lv])[None]
        b = torch.as_tensor(completed[lv])[None]
        cd = chamfer_distance(a, b)
        worst = max(float(cd.dist_xy.max().sqrt()), float(cd.dist_yx.max().sqrt()))
        per_level[f"L{lv}"] = worst
    worst = max((v for v in per_level.values() if v is not None), default=float("inf"))
    return {
        "max_point_distance_mm": per_level,
        "worst_mm": worst,
        "within_0_1mm": worst <= 0.1,
        "frames": frames,
    }


def _markdown(r: dict) -> str:
    lines = ["# usx demo report", "", f"- bag: `{r['bag']}`", f"- render: `{r['png']}`"]
    lat = r["latency_s"]
    lines += [
        f"- sweep: {lat['sweep']:.1f} s; sweep end -> completed spine: "
        f"{lat['sweep_end_to_completed_spine']:.2f} s "
        f"(completion node {lat['completion_node_total']:.2f} s)",
        f"- frames: {r['graph'].get('frames_sent', 'n/a')} sent, "
        f"{r['graph'].get('frames_placed', 'n/a')} placed, "
        f"{r['graph'].get('frames_dropped', 'n/a')} dropped, "
        f"{r['graph'].get('frames_lost_in_transport', 'n/a')} lost in transport",
        "",
        "| level | CD-L1 (mm) | body CD-L1 (mm) | arch CD-L1 (mm) | F1@1mm | status | coverage |",
        "|---|---|---|---|---|---|---|",
    ]
    coverage = r.get("coverage", {})
    for lv, s in r["levels"].items():
        cov = f"{coverage[lv]:.2f}" if lv in coverage else "n/a"
        lines.append(
            f"| {lv} | {s['cd_l1_mm']:.2f} | {s['body_cd_l1_mm']:.2f} | "
            f"{s['arch_cd_l1_mm']:.2f} | {s['f1']:.2f} | {r['status'].get(lv, '')} | {cov} |"
        )
    lines += [
        "",
        "coverage: the share of each level's expected US-visible surface the sweep saw "
        "(the sweep goal's last feedback; a level counts as covered from 0.5).",
    ]
    ready, first = r.get("level_ready_s", {}), r.get("first_published_after_sweep_end_s", {})
    if first:
        lines += [
            "",
            "| level | covered -> first completion (s) | first completion - sweep end (s) |",
        ]
        lines += ["|---|---|---|"]
        for lv in first:
            rd = f"{ready[lv]:.2f}" if lv in ready else "n/a"
            lines.append(f"| {lv} | {rd} | {first[lv]:+.2f} |")
    live = r.get("live", {})
    if live.get("cd_l1_mm"):
        lines += [
            "",
            "Each level's last live completion (during the sweep), CD-L1 in mm: against the "
            "ground truth "
            + ", ".join(f"{lv} {v:.2f}" for lv, v in live["cd_l1_mm"].items())
            + "; against its final completion "
            + ", ".join(f"{lv} {v:.2f}" for lv, v in live["against_final_cd_l1_mm"].items())
            + ".",
        ]
    if r.get("growth"):
        lines += [
            "",
            "The spine while the sweep recorded (live completions, s after its start):",
            "",
        ]
        lines += [f"- {g['t_s']:.1f} s: {' '.join(g['levels'])}" for g in r["growth"]]
    return "\n".join(lines) + "\n"
