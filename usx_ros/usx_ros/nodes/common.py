"""Process entry point shared by every node: init, spin, clean shutdown.

Ctrl-C (SIGINT) and external shutdown (``rclpy.shutdown`` from elsewhere, SIGTERM from
a launcher) end the spin without a traceback; an invalid parameter at start-up ends the
process with exit code 2 and one log line naming the parameter.
"""

from __future__ import annotations

import signal
import sys

import rclpy
from rclpy.executors import (
    ExternalShutdownException,
    MultiThreadedExecutor,
    SingleThreadedExecutor,
)

from usx_model.tracking.calibration import ProbeCalibration, load_probe_calibration
from usx_ros.dds import configure_dds
from usx_ros.graph import config_path
from usx_ros.memory import freeze_heap, no_numpy_hugepages
from usx_ros.nodes.managed import ManagedNode
from usx_ros.params import ParameterError

#: Description of every node's ``probe_calibration`` parameter.
PROBE_CALIBRATION_DOC = (
    "probe calibration YAML (hand-eye T_ee_probe, T_probe_image, pixel spacing and origin); "
    "'' = the shipped config/probe.yaml"
)


def load_calibration(path: str) -> ProbeCalibration:
    """The probe calibration named by a node's ``probe_calibration`` parameter.

    Raises:
        ParameterError: the file is missing, unreadable or malformed (one line naming it).
    """
    try:
        file = path or str(config_path("probe"))
        return load_probe_calibration(file)
    except FileNotFoundError:
        raise ParameterError(f"parameter 'probe_calibration': no such file {path!r}") from None
    except (OSError, ValueError) as exc:
        where = path or "the shipped config/probe.yaml"
        raise ParameterError(f"parameter 'probe_calibration': {where}: {exc}") from exc


_interrupted: set[int] = set()  # SIGINT seen by Python (before rclpy.init: only there)


def quiet_keyboard_interrupt() -> None:
    """SIGINT ends a node's spin through rclpy alone, never as a ``KeyboardInterrupt``.

    rclpy's SIGINT handler (installed by ``rclpy.init``) shuts the contexts down, which
    ends the spin loop, and then calls the Python handler it found. Python's default one
    raises ``KeyboardInterrupt`` at whatever bytecode the main thread runs next: between
    a lock's acquisition and its ``with`` block inside the executor, the lock is never
    released and the shutdown that follows waits on it for ever (a node process that hung
    on Ctrl-C with no output). Call before ``rclpy.init`` so that the handler rclpy chains
    to is this one, which only notes the signal.
    """
    _interrupted.clear()
    signal.signal(signal.SIGINT, _note_interrupt)


def _note_interrupt(signum: int, frame) -> None:
    """rclpy has already acted on the signal; one that came before ``rclpy.init`` is
    acted on by :func:`run_node` once the context exists."""
    _interrupted.add(signum)


def run_node(node_class, args: list[str] | None = None, threads: int = 1) -> None:
    """Run one node in this process until shutdown; exit 2 on a start-up parameter error.

    ``threads`` > 1 only for nodes whose callback groups must overlap (completion keeps
    its parameter services answering while the network runs): rclpy's multi-threaded
    executor costs 2.4x the CPU per message of the single-threaded one and, on the 2-core
    target, lost 9 % of 100 Hz joint states where the single-threaded one lost none.
    """
    configure_dds()
    no_numpy_hugepages()  # a node's per-sweep arrays are on fresh memory (usx_ros.memory)
    quiet_keyboard_interrupt()
    rclpy.init(args=args)
    if _interrupted:  # Ctrl-C before rclpy's handler was installed: nothing to stop
        rclpy.try_shutdown()
        return
    # rclpy's own handlers (SignalHandlerOptions.ALL, the default) turn SIGINT and SIGTERM
    # (what launchers send) into a clean shutdown. Do not replace them: a Python handler
    # calling rclpy.try_shutdown() never wakes a single-threaded executor's wait.
    try:
        node = node_class()
    except ParameterError as exc:
        if not issubclass(node_class, ManagedNode):  # a managed node's configure said it
            rclpy.logging.get_logger(node_class.__name__).error(f"invalid parameter: {exc}")
        rclpy.try_shutdown()
        sys.exit(2)
    if threads > 1:
        executor = MultiThreadedExecutor(num_threads=threads)
    else:
        executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        # Bounded waits, re-checking the context: a signal that lands while the node is
        # still being built (before the executor waits) must not be missed.
        while rclpy.ok():
            executor.spin_once(timeout_sec=0.2)
            if getattr(node, "heap_settled", False):
                node.heap_settled = False
                freeze_heap()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception:
        # A signal between the rclpy.ok() check and the executor's wait shuts the context
        # down under it: the wait set then fails ("the given context is not valid").
        # That is the shutdown asked for, not an error.
        if rclpy.ok():
            raise
    finally:
        close = getattr(node, "close", None)
        if close is not None:
            close()
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
