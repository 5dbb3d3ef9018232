"""The stack's QoS profiles (docs/architecture.md, runtime graph).

Sensor streams are best-effort keep-last: a late frame is worth less than the next one.
Results are reliable + transient-local so that RViz or a late subscriber still gets the
latest completion (set RViz displays' durability to Transient Local).
"""

from __future__ import annotations

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

SENSOR_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=30,
    reliability=ReliabilityPolicy.BEST_EFFORT,
    durability=DurabilityPolicy.VOLATILE,
)

#: Poses and joint states: small, frequent, and every one matters for interpolation.
STATE_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=1000,  # 10 s of 100 Hz joint states: a lagging subscriber catches up, loses none
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.VOLATILE,
)

RESULT_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=1,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)

#: A stream of snapshots that each replace the last (a sweep's bone points so far): reliable,
#: volatile (a late subscriber waits for the next one), one deep (a busy reader skips to it).
LIVE_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=1,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.VOLATILE,
)

#: /diagnostics, as ROS diagnostic tools (diagnostic_aggregator, rqt_robot_monitor) read it:
#: reliable, volatile, a short queue; each report replaces the previous one.
DIAGNOSTICS_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=10,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.VOLATILE,
)
