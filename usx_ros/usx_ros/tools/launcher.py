"""Start a graph of ``usx_ros.graph`` without ``ros2 launch``.

In one process (default): every node in one MultiThreadedExecutor; they still talk
over DDS (intra-process), exactly as separate processes would. Either way the launcher is
the lifecycle manager of the graph's managed nodes: they start with ``autostart:=false``
and it configures and activates them in graph order. ``isolated=True``: one
process per node, as ``ros2 launch`` runs them. Both read the same parameter file with
the standard ``--ros-args --params-file`` mechanism, and the graph's remappings with
``-r``. ``record_dir``: ``bag_record`` runs as one more node of the graph (restarted like
the others), writing a new bag in that folder at every start (``tools.bag_record``).
"""

from __future__ import annotations

import faulthandler
import queue
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import rclpy
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.signals import SignalHandlerOptions

from usx_ros.dds import configure_dds
from usx_ros.graph import NodeDescription, config_path, graph
from usx_ros.params import ParameterError
from usx_ros.tools.lifecycle_manager import LifecycleError, LifecycleManager
from usx_ros.tools.respawn import RespawnPolicy


@dataclass(frozen=True)
class RecorderDescription(NodeDescription):
    """``bag_record`` as a node of a graph: a new bag in ``bag_dir`` at every start.

    ``-p bag_dir:=`` follows the parameter file, so a ``bag_record`` section there sets the
    rest (topics, flush_period_s); only a ``bag_dir`` in that section would outrank it.
    """

    bag_dir: str = ""

    def ros_args(self, params_file: str | Path, managed_by_launcher: bool = False) -> list[str]:
        return [
            *super().ros_args(params_file, managed_by_launcher),
            "-p",
            f"bag_dir:={self.bag_dir}",
        ]


def graph_nodes(name: str, record_dir: str | Path | None = None) -> tuple[NodeDescription, ...]:
    """The nodes of graph ``name``, plus the recorder writing into ``record_dir`` if given."""
    nodes = graph(name)
    if record_dir is None:
        return nodes
    recorder = RecorderDescription(
        "bag_record",
        "bag_record",
        "usx_ros.tools.bag_record:BagRecorder",
        managed=False,
        bag_dir=str(Path(record_dir).resolve()),
    )
    return (*nodes, recorder)


def catch_sigint() -> None:
    """Ctrl-C (SIGINT) raises KeyboardInterrupt here even where it was ignored at start.

    A process started in the background by a non-interactive shell (a CI runner, a
    script's ``&``) inherits SIGINT ignored, and Python then installs no handler: the
    launcher would never stop on SIGINT, and whoever sent it kills the group instead,
    with no clean shutdown of the nodes (a recording left unindexed).
    """
    signal.signal(signal.SIGINT, signal.default_int_handler)


def spin_in_background(executor) -> threading.Thread:
    """Spin ``executor`` in a daemon thread until shutdown.

    ``spin()`` keeps the executor's worker threads busy; a ``spin_once`` loop hands out
    one callback per call and cannot keep up with a graph's hundreds of callbacks per
    second.
    """

    def _spin() -> None:
        try:
            executor.spin()
        except ExternalShutdownException:
            pass

    thread = threading.Thread(target=_spin, name="usx-executor", daemon=True)
    thread.start()
    return thread


def launch_in_process(
    name: str,
    params_file: str | Path | None = None,
    duration_s: float | None = None,
    record_dir: str | Path | None = None,
) -> int:
    """Run graph ``name`` in this process until Ctrl-C/SIGTERM or ``duration_s``.

    Returns:
        0 on a clean stop, 2 when a node refuses its parameters at start-up.
    """
    params = Path(params_file) if params_file else config_path(name)
    descriptions = graph_nodes(name, record_dir)
    context = rclpy.context.Context()
    configure_dds()
    rclpy.init(context=context)
    signal.signal(signal.SIGTERM, lambda *_: context.try_shutdown())
    catch_sigint()
    nodes = []
    try:
        for d in descriptions:
            nodes.append(d.node_class()(context=context, cli_args=d.ros_args(params, True)))
        # The managed nodes come up in graph order, before anything spins: each is active
        # (weights loaded, sockets open) before the next one configures.
        for d, n in zip(descriptions, nodes, strict=True):
            if d.managed:
                n.bring_up()
                print(f"usx launch: {d.name} active", file=sys.stderr, flush=True)
    except (ParameterError, RuntimeError) as exc:
        print(f"usx launch: node failed to start: {exc}", file=sys.stderr)
        for n in nodes:
            getattr(n, "close", lambda: None)()
            n.destroy_node()
        context.try_shutdown()
        return 2
    executor = MultiThreadedExecutor(num_threads=max(4, len(nodes)), context=context)
    for n in nodes:
        executor.add_node(n)
    spinner = spin_in_background(executor)
    deadline = None if duration_s is None else time.monotonic() + duration_s
    try:
        while context.ok() and spinner.is_alive():
            if deadline is not None and time.monotonic() >= deadline:
                break
            time.sleep(0.1)
    except KeyboardInterrupt:
        pass
    finally:
        for n in nodes:
            close = getattr(n, "close", None)
            if close is not None:
                close()
        executor.shutdown()
        for n in nodes:
            n.destroy_node()
        context.try_shutdown()
    return 0


def launch_isolated(
    name: str,
    params_file: str | Path | None = None,
    duration_s: float | None = None,
    policy: RespawnPolicy | None = None,
    record_dir: str | Path | None = None,
) -> int:
    """Run graph ``name`` with one process per node, restarting nodes that exit.

    Every exit while the graph runs is reported on stderr, clean or not, and the node is
    restarted by ``policy`` (``tools.respawn``); when the policy gives up (a parameter
    error at start-up, too many restarts) the whole graph stops.

    Managed nodes start unconfigured; a :class:`LifecycleManager` brings each up
    (configure, activate) through its lifecycle services, in graph order, and again after
    every restart. A node that fails to configure (an invalid parameter) stops the graph
    with code 2.

    Returns:
        0 on a clean stop, 2 when a node fails to configure, else the exit code of the
        node the policy gave up on.
    """
    params = Path(params_file) if params_file else config_path(name)
    policy = policy or RespawnPolicy()
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # `kill -USR1`: where it hangs
    descriptions = graph_nodes(name, record_dir)
    manager = _Manager() if any(d.managed for d in descriptions) else None

    def start(d) -> tuple[subprocess.Popen, float]:
        proc = subprocess.Popen([sys.executable, "-m", d.module, *d.ros_args(params, True)])
        if d.managed:
            manager.bring_up(d.name, proc)  # queued: graph order at the first start
        return proc, time.monotonic()

    running = {d.name: (d, *start(d)) for d in descriptions}
    due: dict[str, tuple[object, float]] = {}  # node -> (description, restart time)
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    catch_sigint()
    deadline = None if duration_s is None else time.monotonic() + duration_s
    code = 0
    try:
        while not stop["now"] and (deadline is None or time.monotonic() < deadline):
            if manager is not None and manager.failed:
                print(f"usx launch: {manager.failed}: stopping the graph", file=sys.stderr)
                code = 2
                break
            now = time.monotonic()
            for node, (d, proc, started) in list(running.items()):
                if proc.poll() is None:
                    continue
                del running[node]
                verdict = policy.on_exit(node, proc.returncode, started, now)
                print(f"usx launch: {verdict.message}", file=sys.stderr, flush=True)
                if not verdict.restart:
                    code = proc.returncode or 1
                    stop["now"] = True
                    break
                due[node] = (d, now + verdict.delay_s)
            for node, (d, at) in list(due.items()):
                if not stop["now"] and now >= at:
                    del due[node]
                    running[node] = (d, *start(d))
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        stop_processes([proc for _, proc, _ in running.values()])
        if manager is not None:
            manager.close()
    return code


class _Manager:
    """The launcher's own ROS node, which brings the managed nodes up.

    A worker thread takes the nodes one at a time, in the order they were (re)started,
    while the launcher's loop goes on watching the processes.
    """

    def __init__(self) -> None:
        self.context = rclpy.context.Context()
        configure_dds()
        # no rclpy signal handlers: SIGINT stays a KeyboardInterrupt of the launcher's loop
        rclpy.init(context=self.context, signal_handler_options=SignalHandlerOptions.NO)
        self.node = rclpy.create_node("usx_launch", context=self.context)
        self.lifecycle = LifecycleManager(self.node)
        self.failed = ""  # why a node could not be brought up
        self._queue: queue.Queue = queue.Queue()
        self._stopping = False
        self._worker = threading.Thread(target=self._work, name="usx-lifecycle", daemon=True)
        self._worker.start()

    def bring_up(self, name: str, proc: subprocess.Popen) -> None:
        """Queue node ``name`` (running as ``proc``) to be configured and activated."""
        self._queue.put((name, proc))

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            name, proc = item

            def alive(p=proc) -> bool:
                return p.poll() is None and not self._stopping

            try:
                self.lifecycle.bring_up(name, alive=alive)
                print(f"usx launch: {name} active", file=sys.stderr, flush=True)
            except LifecycleError as exc:
                if alive():  # not a process that died meanwhile: it is restarted and queued
                    self.failed = str(exc)

    def close(self) -> None:
        self._stopping = True
        self._queue.put(None)
        self._worker.join(timeout=10.0)
        self.node.destroy_node()
        self.context.try_shutdown()


def stop_processes(procs: list[subprocess.Popen], timeout_s: float = 15.0) -> None:
    """SIGINT every running node process (clean ROS shutdown), kill what outlives it."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
    for p in procs:
        try:
            p.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
