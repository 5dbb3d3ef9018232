"""Helpers for tests that spin real rclpy nodes: bounded waits, never fixed sleeps."""

from __future__ import annotations

import time
from collections.abc import Callable

from rclpy.executors import Executor, SingleThreadedExecutor
from rclpy.node import Node


def spin_until(
    spinner: Node | Executor,
    condition: Callable[[], bool],
    timeout_s: float,
    step_s: float = 0.05,
) -> bool:
    """Spin ``spinner`` one callback at a time until ``condition()`` or the deadline.

    Args:
        spinner: a node (spun with a private executor) or an executor with nodes added.
        condition: checked before every ``spin_once``.
        timeout_s: wall-clock deadline in seconds.
        step_s: the longest single ``spin_once`` wait.

    Returns:
        True if the condition became true, False at the deadline.
    """
    executor = spinner if isinstance(spinner, Executor) else None
    owned = executor is None
    if owned:
        executor = SingleThreadedExecutor(context=spinner.context)
        executor.add_node(spinner)
    try:
        deadline = time.monotonic() + timeout_s
        while not condition():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            executor.spin_once(timeout_sec=min(step_s, remaining))
        return True
    finally:
        if owned:
            executor.remove_node(spinner)
            executor.shutdown()


def write_probe_calibration(
    path, spacing_mm: float = 0.15, width_px: int = 512, hand_eye_rpy_deg=(0.0, 0.0, 0.0)
) -> str:
    """Write a probe calibration YAML like config/probe.yaml with these values; its path."""
    import yaml

    from usx_ros.graph import config_path

    spec = yaml.safe_load(config_path("probe").read_text())
    cal = spec["probe_calibration"]
    cal["image"] = {"spacing_mm": [spacing_mm, spacing_mm], "width_px": width_px}
    cal["T_ee_probe"]["rpy_deg"] = list(hand_eye_rpy_deg)
    with open(path, "w", encoding="utf-8") as fh:
        yaml.safe_dump(spec, fh)
    return str(path)


def serve_record_sweep(node: Node, name: str, start: Callable[[object], tuple[bool, str]]):
    """A stand-in RecordSweep server on ``node`` (a peer for a client under test).

    ``start(goal)`` -> (recording, message): a recording goal gets one feedback (its sweep
    id, state ``recording``) and succeeds; another is refused as us_compounding refuses
    (aborted, ``outcome: refused``, ``message``). Returns the ActionServer.
    """
    from rclpy.action import ActionServer

    from usx_msgs.action import RecordSweep

    def execute(handle):
        recording, message = start(handle.request)
        if not recording:
            handle.abort()
            return RecordSweep.Result(success=False, outcome="refused", message=message)
        handle.publish_feedback(
            RecordSweep.Feedback(sweep_id=handle.request.sweep_id, state="recording")
        )
        handle.succeed()
        return RecordSweep.Result(success=True, outcome="succeeded", message=message)

    return ActionServer(node, RecordSweep, name, execute_callback=execute)
