"""The node process entry point: how a signal ends it."""

from __future__ import annotations

import subprocess
import sys
import textwrap

# Runs in a process of its own: pytest keeps its own SIGINT handler in this one.
SCRIPT = textwrap.dedent(
    """
    import os, signal, time
    import rclpy
    from usx_ros.nodes.common import quiet_keyboard_interrupt

    # Python's own handler, whatever this process inherited: a shell that starts a job
    # in the background (`cmd &`) hands it SIGINT ignored, and then rclpy chains to that
    signal.signal(signal.SIGINT, signal.default_int_handler)
    {before}
    rclpy.init()
    deadline = time.monotonic() + 10.0
    try:
        os.kill(os.getpid(), signal.SIGINT)
        while rclpy.ok() and time.monotonic() < deadline:
            sum(range(1000))  # Python bytecode, where a KeyboardInterrupt would land
        print("context ok after SIGINT:", rclpy.ok())
    except KeyboardInterrupt:
        print("KeyboardInterrupt")
    """
)


def _run(before: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(before=before)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return out.stdout + out.stderr


def test_sigint_shuts_the_context_down_without_a_keyboard_interrupt() -> None:
    out = _run("quiet_keyboard_interrupt()")
    assert "context ok after SIGINT: False" in out, out
    assert "KeyboardInterrupt" not in out, out


def test_without_it_python_raises_keyboard_interrupt_anywhere() -> None:
    # The reference: what rclpy's chaining to Python's default handler does.
    assert "KeyboardInterrupt" in _run("pass")


# The race of a signal landing between run_node's rclpy.ok() check and the executor's
# wait, made certain: the executor's spin shuts the context down first.
RACE = textwrap.dedent(
    """
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from usx_ros.nodes import common

    class SignalBeforeWait(SingleThreadedExecutor):
        def spin_once(self, timeout_sec=None):
            rclpy.try_shutdown()  # what rclpy's SIGTERM handler does
            super().spin_once(timeout_sec)

    common.SingleThreadedExecutor = SignalBeforeWait
    {run}
    print("returned")
    """
)


def test_a_signal_just_before_the_executor_waits_is_a_clean_shutdown() -> None:
    run = "common.run_node(lambda: Node('race'), [])"
    out = subprocess.run(
        [sys.executable, "-c", RACE.format(run=run)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0 and "returned" in out.stdout, out.stdout + out.stderr


def test_the_race_reference_raises_without_the_guard() -> None:
    # The same executor in a bare loop: the wait set fails on the dead context.
    run = "rclpy.init(); ex = SignalBeforeWait(); ex.add_node(Node('race')); ex.spin_once(0.2)"
    out = subprocess.run(
        [sys.executable, "-c", RACE.format(run=run)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode != 0 and "context is not valid" in out.stderr, out.stderr
