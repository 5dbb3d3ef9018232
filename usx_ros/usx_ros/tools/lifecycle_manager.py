"""Bring managed nodes up through their lifecycle services: configure, then activate.

What ``ros2 launch``'s LifecycleNode events (or nav2's lifecycle manager) do, for
``usx launch --isolated``: the nodes run in their own processes, started with
``autostart:=false``, and this client calls ``/<node>/get_state`` and
``/<node>/change_state`` (lifecycle_msgs) with deadlines, never fixed sleeps.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from lifecycle_msgs.msg import State, Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node

_STEPS = {
    State.PRIMARY_STATE_UNCONFIGURED: (Transition.TRANSITION_CONFIGURE, "configure"),
    State.PRIMARY_STATE_INACTIVE: (Transition.TRANSITION_ACTIVATE, "activate"),
}


class LifecycleError(RuntimeError):
    """A node refused a transition, or did not answer in time (the message says which)."""


class LifecycleManager:
    """Drives nodes of other processes through their lifecycle services.

    Args:
        node: the client node (spun here while waiting for answers).
        timeout_s: how long a node may take to offer its services, and to answer one call
            (configure loads weights: seconds on a loaded machine).
    """

    def __init__(self, node: Node, timeout_s: float = 60.0) -> None:
        self.node = node
        self.timeout_s = timeout_s
        self._clients: dict[str, tuple] = {}

    def _pair(self, name: str, fresh: bool = False):
        if fresh and name in self._clients:
            for client in self._clients.pop(name):
                self.node.destroy_client(client)
        if name not in self._clients:
            self._clients[name] = (
                self.node.create_client(GetState, f"/{name}/get_state"),
                self.node.create_client(ChangeState, f"/{name}/change_state"),
            )
        return self._clients[name]

    def _get_state(self, name: str, alive: Callable[[], bool]) -> State:
        # Re-sent every second until answered: a request sent just before the server
        # matched is lost, and a killed server stays discovered (its lease) for a while.
        get, _ = self._pair(name)
        answer = self._call(get, GetState.Request(), f"{name} get_state", alive, resend_s=1.0)
        return answer.current_state

    def _call(self, client, request, what: str, alive: Callable[[], bool], resend_s: float = 0.0):
        # a private executor on the node's own context (rclpy's global one would use the
        # default context), for this call only: the node may be spun elsewhere otherwise
        executor = SingleThreadedExecutor(context=self.node.context)
        executor.add_node(self.node)
        try:
            deadline = time.monotonic() + self.timeout_s
            future, sent = None, 0.0
            while future is None or not future.done():
                if not alive():
                    raise LifecycleError(f"{what}: the node's process ended")
                if time.monotonic() >= deadline:
                    missing = "service" if future is None else "answer"
                    raise LifecycleError(f"{what}: no {missing} after {self.timeout_s:.0f} s")
                if client.service_is_ready() and (
                    future is None or (resend_s and time.monotonic() - sent >= resend_s)
                ):
                    if future is not None:
                        client.remove_pending_request(future)
                    future, sent = client.call_async(request), time.monotonic()
                executor.spin_once(timeout_sec=0.1)
            return future.result()
        finally:
            executor.remove_node(self.node)
            executor.shutdown()

    def state(self, name: str, alive: Callable[[], bool] = lambda: True) -> str:
        """The label of node ``name``'s current state (``unconfigured``, ``active``, ...)."""
        return self._get_state(name, alive).label

    def bring_up(self, name: str, alive: Callable[[], bool] = lambda: True) -> None:
        """Configure (if needed) and activate node ``name``; return once it is active.

        Args:
            alive: False once the node's process has ended (stops the wait early).

        Raises:
            LifecycleError: a transition failed (an invalid parameter fails configure; the
                node logs which), or the node did not answer in time.
        """
        _, change = self._pair(name, fresh=True)  # a restarted node: its new process
        for _ in range(len(_STEPS) + 1):
            state = self._get_state(name, alive)
            if state.id == State.PRIMARY_STATE_ACTIVE:
                return
            if state.id not in _STEPS:
                raise LifecycleError(f"{name} is {state.label}: cannot bring it up")
            transition, label = _STEPS[state.id]
            request = ChangeState.Request(transition=Transition(id=transition))
            if not self._call(change, request, f"{name} {label}", alive).success:
                raise LifecycleError(f"{name} failed to {label} (its log says why)")
        raise LifecycleError(f"{name} did not become active")
