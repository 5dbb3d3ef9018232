"""What a node publishes, subscribes to and serves, by default name, for the docs.

Nodes use these default names directly; users rename them with standard ROS remapping
(``--ros-args -r /us/image:=/my/image``, or ``remappings=[...]`` in a launch file), not
with parameters. ``usx_ros.tools.param_docs`` lists them in docs/parameters.md.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Endpoint:
    """One topic or service of a node.

    Attributes:
        kind: ``publishes``, ``subscribes``, ``serves`` or ``calls``.
        name: default name (``~/`` = under the node's name).
        type: ROS interface type, e.g. ``sensor_msgs/msg/Image``.
        qos: profile name in ``usx_ros.qos`` (topics only).
        note: when it is used, if not always.
    """

    kind: str
    name: str
    type: str
    qos: str = ""
    note: str = ""
