"""Managed (lifecycle) nodes: the base class of every product node of usx.

A product node is an ``rclpy.lifecycle.LifecycleNode`` with the standard states:

- **unconfigured**: only the lifecycle and parameter services exist;
- ``configure``: declares and validates the node's parameters (``usx_ros.params``), loads
  what it needs (weights, calibration) and creates its publishers, subscriptions,
  services and timers. An invalid parameter fails the transition with one log line
  (``invalid parameter: parameter 'x': expected ..., got ...``) and the node stays
  unconfigured, with nothing created;
- **inactive**: everything exists, nothing is processed: a message that arrives is
  dropped and counted (``dropped_inactive``), a service call is answered
  ``success=false`` with the state, timers do nothing. ``/diagnostics`` still reports,
  at WARN, with the state. Except on a transient-local (latched) topic: its message is
  the topic's state, which the publisher delivers once, to the subscriptions that exist;
  the latest one per topic is kept and handed to the node just after ``activate``, in
  the order they came, in its subscription's callback group (a node still loading its
  models when a sweep's results were latched would otherwise never see them);
- ``activate`` -> **active**: processing; ``deactivate`` goes back to inactive;
- ``cleanup``: releases the node's resources (sockets, models: :meth:`release`) and
  destroys every entity ``configure`` created -> unconfigured, ready to configure again
  (with changed parameters, say);
- ``shutdown`` (from any state; also when the process stops): releases and finalizes.

``autostart`` (bool parameter of every product node, read at construction, default true):
the node configures and activates itself, as a plain node would (``ros2 run``, tests,
tools that start nodes themselves). A lifecycle manager (``usx launch``, the launch file)
starts nodes with ``autostart:=false`` and drives the transitions itself, in the graph's
order. Built in-process with autostart, a configure failure is raised from the
constructor (``ParameterError`` for a parameter).

Subclasses put what a plain node's constructor did in :meth:`configure`, and free what
the process would otherwise keep in :meth:`release`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from rcl_interfaces.msg import ParameterDescriptor
from rclpy.client import Client
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.publisher import Publisher
from rclpy.qos import DurabilityPolicy
from rclpy.service import Service
from rclpy.subscription import Subscription
from rclpy.timer import Timer

#: The states in which a node processes its inputs.
ACTIVE = "active"


class AnyState:
    """Marks a timer callback that runs in every state (diagnostics), not only when active."""

    def __init__(self, callback: Callable[[], None]) -> None:
        self.callback = callback

    def __call__(self) -> None:
        self.callback()


class ManagedNode(LifecycleNode):
    """Base class of the product nodes: lifecycle transitions around a ``configure()``.

    Attributes:
        dropped_inactive: messages and service calls refused while not active.
        heap_settled: set when the node's start-up objects are made (on activation; a
            node with later start-up work sets it again after it): ``run_node`` then
            freezes them out of the garbage collector's sight (``memory.freeze_heap``).
    """

    def __init__(self, node_name: str, **kwargs) -> None:
        # Set before Node.__init__, which creates its own entities through the overrides.
        self.dropped_inactive = 0
        self._owned: list = []  # entities configure() created; cleanup destroys them
        self._creating = False
        self._active = False
        self._warned_at = -1e9
        self._configure_exc: BaseException | None = None
        # topic -> (arrival order, callback, message, its subscription's callback group)
        self._latched: dict[str, tuple[int, Callable, object, object]] = {}
        self._latched_order = 0
        self.heap_settled = False
        super().__init__(node_name, **kwargs)
        autostart = self.declare_parameter(
            "autostart",
            True,
            ParameterDescriptor(
                description="configure and activate at start-up (false: wait for a "
                "lifecycle manager)",
                read_only=True,
            ),
        ).value
        if autostart:
            self.bring_up()

    # --- what subclasses write ----------------------------------------------------------
    def configure(self) -> None:
        """Declare parameters, load resources, create entities (a plain node's __init__).

        Raises:
            ParameterError: a parameter is invalid (the transition fails, cleanly).
        """

    def release(self) -> None:
        """Free what configure acquired beyond ROS entities (sockets, models, threads)."""

    # --- state --------------------------------------------------------------------------
    @property
    def lifecycle_state(self) -> str:
        """The current state's label: unconfigured, inactive, active, finalized, ..."""
        return self._state_machine.current_state[1]

    @property
    def is_active(self) -> bool:
        return self._active

    @property
    def configure_error(self) -> str:
        """Why the last configure failed ('' when it did not)."""
        return "" if self._configure_exc is None else str(self._configure_exc)

    def bring_up(self) -> None:
        """Configure and activate now (what ``autostart`` does).

        Raises:
            the exception that failed configure (``ParameterError`` for a parameter),
            RuntimeError when a transition failed otherwise.
        """
        self.trigger_configure()
        if self.lifecycle_state != "inactive":
            if self._configure_exc is not None:
                raise self._configure_exc
            raise RuntimeError(f"{self.get_name()}: configure failed ({self.lifecycle_state})")
        self.trigger_activate()
        if self.lifecycle_state != ACTIVE:
            raise RuntimeError(f"{self.get_name()}: activate failed ({self.lifecycle_state})")

    def close(self) -> None:
        """Shut down (release, destroy entities); what a process does as it stops.

        After Ctrl-C the context is already shut down and the state machine cannot
        announce a transition any more: then the node only releases what it holds.
        """
        if self.lifecycle_state in ("finalized", "unknown"):
            return
        if self.context.ok():
            try:
                self.trigger_shutdown()
                return
            except RuntimeError:  # rclpy's RCLError
                # A signal shut the context down during the transition (after the check
                # above): the state machine could not publish it. Release all the same.
                if self.context.ok():
                    raise
        self._teardown()

    def destroy_node(self) -> None:
        """Shut down first: what configure made outside the node's own entity lists (an
        action server) is released too, not left to the garbage collector."""
        self.close()
        super().destroy_node()

    # --- transitions --------------------------------------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        from usx_ros.params import ParameterError

        self._configure_exc = None
        self._creating = True
        try:
            self.configure()
        except Exception as exc:
            self._configure_exc = exc
            if isinstance(exc, ParameterError):
                self.get_logger().error(f"invalid parameter: {exc}")
            else:
                self.get_logger().error(f"configure failed: {exc!r}")
            self._destroy_owned()
            return TransitionCallbackReturn.FAILURE
        finally:
            self._creating = False
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._active = True
        self.heap_settled = True
        groups = {id(entry[3]): entry[3] for entry in self._latched.values()}
        for group in groups.values():
            self._deliver_latched_later(group)
        return super().on_activate(state)

    def _deliver_latched_later(self, group) -> None:
        """A one-shot timer in ``group`` hands over the latched messages of its
        subscriptions: after the transition returns (the manager's change_state call is
        not held up), and never beside another callback of that group (a multi-threaded
        executor runs other groups in parallel)."""
        timer = None

        def deliver() -> None:
            timer.cancel()
            self.destroy_timer(timer)
            pending = sorted(
                (entry[0], topic) for topic, entry in self._latched.items() if entry[3] is group
            )
            for _, topic in pending:
                if not self._active:
                    return  # kept for the next activation
                _, callback, msg, _ = self._latched.pop(topic)
                callback(msg)

        timer = LifecycleNode.create_timer(self, 0.0, deliver, callback_group=group)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._active = False
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._teardown()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._teardown()
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._teardown()
        return TransitionCallbackReturn.SUCCESS  # back to unconfigured

    def _teardown(self) -> None:
        self._active = False
        self._latched.clear()
        try:
            self.release()
        finally:
            self._destroy_owned()

    def _destroy_owned(self) -> None:
        destroy = {
            Subscription: self.destroy_subscription,
            Publisher: self.destroy_publisher,
            Service: self.destroy_service,
            Client: self.destroy_client,
            Timer: self.destroy_timer,
        }
        for entity in reversed(self._owned):
            for kind, fn in destroy.items():
                if isinstance(entity, kind):
                    fn(entity)
                    break
        self._owned.clear()

    # --- entities made by configure: owned, and gated by the state ----------------------
    def _own(self, entity):
        if self._creating:
            self._owned.append(entity)
        return entity

    def _refused(self, what: str) -> str:
        self.dropped_inactive += 1
        now = time.monotonic()
        if now - self._warned_at > 5.0:  # rate-limited: a stream would flood the log
            self._warned_at = now
            self.get_logger().warning(
                f"{what} while {self.lifecycle_state}: not processed "
                f"({self.dropped_inactive} so far)"
            )
        return f"{self.get_name()} is {self.lifecycle_state}: activate it first"

    def create_subscription(self, msg_type, topic, callback, *args, **kwargs):
        if self._creating:
            inner = callback
            qos = args[0] if args else kwargs.get("qos_profile")
            latched = getattr(qos, "durability", None) == DurabilityPolicy.TRANSIENT_LOCAL
            group = kwargs.get("callback_group") or self.default_callback_group

            def callback(msg, _topic=topic):
                if self._active:
                    return inner(msg)
                if latched:
                    self._latched_order += 1
                    self._latched[_topic] = (self._latched_order, inner, msg, group)
                    return None
                self._refused(f"message on {_topic}")

        return self._own(super().create_subscription(msg_type, topic, callback, *args, **kwargs))

    def create_service(self, srv_type, srv_name, callback, *args, **kwargs):
        if self._creating:
            inner = callback

            def callback(request, response, _name=srv_name):
                if self._active:
                    return inner(request, response)
                message = self._refused(f"call of {_name}")
                if hasattr(response, "success"):
                    response.success = False
                if hasattr(response, "message"):
                    response.message = message
                return response

        return self._own(super().create_service(srv_type, srv_name, callback, *args, **kwargs))

    def create_timer(self, timer_period_sec, callback, *args, **kwargs):
        if self._creating and not isinstance(callback, AnyState):
            inner = callback

            def callback():
                if self._active:
                    return inner()

        return self._own(super().create_timer(timer_period_sec, callback, *args, **kwargs))

    def create_publisher(self, *args, **kwargs):
        return self._own(super().create_publisher(*args, **kwargs))

    def create_client(self, *args, **kwargs):
        return self._own(super().create_client(*args, **kwargs))
