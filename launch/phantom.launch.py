"""ros2 launch usx_ros phantom.launch.py — the whole loop on the digital phantom.

Nodes, remappings and parameters come from usx_ros.graph and config/phantom.yaml, the
same description that ``usx launch phantom`` uses where ``launch`` is not installed.
Topics and services are renamed by remapping, e.g. on a single node
``ros2 run usx_ros us_compounding --ros-args -r /us/image:=/my/image``.

``record:=DIR`` also runs bag_record (respawned like the others), which writes a new bag
DIR/NNN_YYYYMMDDTHHMMSSZ at every start, as ``usx launch phantom --record DIR`` does.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, NotEqualsSubstitution
from launch_ros.actions import Node

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
    nodes = [
        Node(
            package="usx_ros",
            executable=d.executable,
            name=d.name,
            parameters=[LaunchConfiguration("config")],
            remappings=list(d.remappings),
            arguments=["--ros-args", "--log-level", LaunchConfiguration("log_level")],
            output="screen",
            emulate_tty=True,
            # a node that exits is started again (usx launch --isolated does the same,
            # and also gives up on a parameter error or a node that keeps failing)
            respawn=True,
            respawn_delay=1.0,
        )
        for d in graph("phantom")
    ]
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
    return LaunchDescription([config, log_level, record, *nodes, recorder])
