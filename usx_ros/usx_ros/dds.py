"""DDS transport settings shared by every usx process (Fast DDS, Jazzy's default RMW).

Call :func:`configure_dds` before ``rclpy.init``: Fast DDS reads its XML profile when the
first participant of a process is created. ``config/fastdds.xml`` says why we need one.

Exposure. By default a usx graph is reachable from this host only: the profile binds UDP
to the loopback interface (discovery multicast included) and frames go over shared
memory. ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST`` alone would not do it: with that
setting rmw_fastrtps adds a UDP transport of its own, whose sockets bind to every
interface. A multi-host setup says so the ROS way, with ``ROS_STATIC_PEERS`` or
``ROS_AUTOMATIC_DISCOVERY_RANGE=SUBNET``; usx then loads ``config/fastdds_network.xml``
(UDP on every interface). The wheels' Fast DDS has no DDS Security plugins, so nothing
here authenticates or encrypts (README, "Network exposure").
"""

from __future__ import annotations

import os
from pathlib import Path

from usx_ros.graph import config_path

#: Fast DDS 2.x reads the first, 3.x the second.
PROFILE_VARS = ("FASTRTPS_DEFAULT_PROFILES_FILE", "FASTDDS_DEFAULT_PROFILES_FILE")
#: The loopback-only profile (default) and the one for a graph spread over hosts.
LOCAL_PROFILE, NETWORK_PROFILE = "fastdds", "fastdds_network"


def wants_network(environ: os._Environ | dict = os.environ) -> bool:
    """True when the user asked for discovery beyond this host (ROS 2's own variables)."""
    if environ.get("ROS_STATIC_PEERS", "").strip():
        return True
    return environ.get("ROS_AUTOMATIC_DISCOVERY_RANGE", "").strip().upper() == "SUBNET"


def configure_dds() -> Path | None:
    """Point Fast DDS at usx's profile; returns it, or None when left alone.

    The loopback-only profile unless :func:`wants_network`. Left alone when the user
    already chose a profile (either variable set) or another RMW than Fast DDS. Child
    processes inherit the setting.
    """
    if any(os.environ.get(v) for v in PROFILE_VARS):
        return None
    if os.environ.get("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp") != "rmw_fastrtps_cpp":
        return None
    profile = config_path(NETWORK_PROFILE if wants_network() else LOCAL_PROFILE, ".xml")
    for var in PROFILE_VARS:
        os.environ[var] = str(profile)
    return profile
