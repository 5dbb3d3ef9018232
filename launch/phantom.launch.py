"""ros2 launch usx_ros phantom.launch.py — the whole loop on the digital phantom.

Nodes, remappings and parameters come from usx_ros.graph and config/phantom.yaml, the
same description that ``usx launch phantom`` uses where ``launch`` is not installed.
Topics and services are renamed by remapping, e.g. on a single node
``ros2 run usx_ros us_compounding --ros-args -r /us/image:=/my/image``.

The product nodes are lifecycle nodes (``usx_ros.nodes.managed``): they start with
``autostart: false`` and this file brings them up in graph order, as ``usx launch`` does:
the first is configured when its process starts, each is activated once configured, and
the next is configured once the one before it is active. A node that respawns is
configured again when its new process starts.

``record:=DIR`` also runs bag_record (respawned like the others), which writes a new bag
DIR/NNN_YYYYMMDDTHHMMSSZ at every start, as ``usx launch phantom --record DIR`` does.
"""

from launch import LaunchDescription
from launch.actions import (
    DeclareLaunchArgument,
    EmitEvent,
    OpaqueFunction,
    RegisterEventHandler,
)
from launch.conditions import IfCondition
from launch.event_handlers import OnProcessStart
from launch.events import matches_action
from launch.substitutions import LaunchConfiguration, NotEqualsSubstitution
from launch_ros.actions import LifecycleNode, Node
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from lifecycle_msgs.msg import Transition

from usx_ros.graph import config_path, graph


def generate_launch_description() -> LaunchDescription:
    config = DeclareLaunchArgument(
        "config",
        default_value=str(config_path("phantom")),
        description="parameter YAML for every node of the graph",
    )
    log_level = DeclareLaunchArgument(
        "log_level",
        default_value="info",
        choices=["debug", "info", "warn", "error"],
        description="ROS log level of every node",
    )
    record = DeclareLaunchArgument(
        "record",
        default_value="",
        description="folder for bags of the graph's streams (a new bag per recorder start); "
        "empty: no recording",
    )
    nodes, bring_up, previous = [], [], None  # previous: the last managed node
    for d in graph("phantom"):
        common = dict(
            package="usx_ros",
            executable=d.executable,
            name=d.name,
            remappings=list(d.remappings),
            arguments=["--ros-args", "--log-level", LaunchConfiguration("log_level")],
            output="screen",
            emulate_tty=True,
            # a node that exits is started again (usx launch --isolated does the same,
            # and also gives up on a parameter error or a node that keeps failing)
            respawn=True,
            respawn_delay=1.0,
        )
        if not d.managed:
            nodes.append(Node(parameters=[LaunchConfiguration("config")], **common))
            continue
        node = LifecycleNode(
            namespace="",
            parameters=[LaunchConfiguration("config"), {"autostart": False}],
            **common,
        )
        bring_up += _bring_up(node, previous)
        nodes.append(node)
        previous = node
    recorder = Node(
        package="usx_ros",
        executable="bag_record",
        name="bag_record",
        parameters=[LaunchConfiguration("config"), {"bag_dir": LaunchConfiguration("record")}],
        arguments=["--ros-args", "--log-level", LaunchConfiguration("log_level")],
        output="screen",
        emulate_tty=True,
        respawn=True,
        respawn_delay=1.0,
        condition=IfCondition(NotEqualsSubstitution(LaunchConfiguration("record"), "")),
    )
    return LaunchDescription([config, log_level, record, *bring_up, *nodes, recorder])


def _change_state(node: LifecycleNode, transition: int) -> EmitEvent:
    return EmitEvent(
        event=ChangeState(lifecycle_node_matcher=matches_action(node), transition_id=transition)
    )


def _bring_up(node: LifecycleNode, previous: LifecycleNode | None) -> list:
    """Event handlers that configure ``node`` in order and activate it once configured.

    Configured when ``previous`` (the managed node before it) is active, or when its own
    process starts if it is the first; a respawned process is configured as it starts.
    """
    starts = {"n": 0, "previous_active": 0}
    configure = _change_state(node, Transition.TRANSITION_CONFIGURE)

    def on_start(event, context) -> list:
        starts["n"] += 1
        return [configure] if previous is None or starts["n"] > 1 else []

    def on_previous_active(context) -> list:
        # only the first time: after a respawn of the previous node this one is up already
        starts["previous_active"] += 1
        return [configure] if starts["previous_active"] == 1 else []

    handlers = [
        RegisterEventHandler(OnProcessStart(target_action=node, on_start=on_start)),
        # configured (not deactivated by an operator): activate
        RegisterEventHandler(
            OnStateTransition(
                target_lifecycle_node=node,
                start_state="configuring",
                goal_state="inactive",
                entities=[_change_state(node, Transition.TRANSITION_ACTIVATE)],
            )
        ),
    ]
    if previous is not None:
        handlers.append(
            RegisterEventHandler(
                OnStateTransition(
                    target_lifecycle_node=previous,
                    start_state="activating",
                    goal_state="active",
                    entities=[OpaqueFunction(function=on_previous_active)],
                )
            )
        )
    return handlers
