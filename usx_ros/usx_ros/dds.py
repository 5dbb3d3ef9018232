"""DDS transport settings shared by every usx process (Fast DDS, Jazzy's default RMW).

Call :func:`configure_dds` before ``rclpy.init``: Fast DDS reads its XML profile when the
first participant of a process is created. ``config/fastdds.xml`` says why we need one.
"""

from __future__ import annotations

import os
from pathlib import Path

from usx_ros.graph import config_path

#: Fast DDS 2.x reads the first, 3.x the second.
PROFILE_VARS = ("FASTRTPS_DEFAULT_PROFILES_FILE", "FASTDDS_DEFAULT_PROFILES_FILE")


def configure_dds() -> Path | None:
    """Point Fast DDS at usx's profile; returns it, or None when left alone.

    Left alone when the user already chose a profile (either variable set) or another
    RMW than Fast DDS. Child processes inherit the setting.
    """
    if any(os.environ.get(v) for v in PROFILE_VARS):
        return None
    if os.environ.get("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp") != "rmw_fastrtps_cpp":
        return None
    profile = config_path("fastdds", ".xml")
    for var in PROFILE_VARS:
        os.environ[var] = str(profile)
    return profile
