"""The node graphs of usx, described once for both launchers.

``launch/phantom.launch.py`` (``ros2 launch`` on a real Jazzy install) and
``usx launch phantom`` (this project's launcher, for wheels-only installs) both build
their processes from ``GRAPHS`` and the same parameter file, so the two cannot drift.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class NodeDescription:
    """One node of a graph.

    Attributes:
        name: node name; also its section in the parameter YAML.
        executable: console script of usx_ros (``ros2 run usx_ros <executable>``).
        target: ``module:Class`` of the rclpy node.
        remappings: ``(from, to)`` topic/service renames (standard ROS remapping: the
            nodes' topic and service names are not parameters).
        managed: a lifecycle node (``usx_ros.nodes.managed``): the launchers start it with
            ``autostart:=false`` and bring it up, configure then activate, in graph order.
    """

    name: str
    executable: str
    target: str
    remappings: tuple[tuple[str, str], ...] = ()
    managed: bool = True

    def ros_args(self, params_file: str | Path, managed_by_launcher: bool = False) -> list[str]:
        """``--ros-args`` of this node's process: parameter file, node name, remappings.

        ``managed_by_launcher``: a managed node waits unconfigured (``autostart:=false``)
        for the launcher to bring it up; otherwise it configures and activates itself.
        """
        args = ["--ros-args", "--params-file", str(params_file), "-r", f"__node:={self.name}"]
        for src, dst in self.remappings:
            args += ["-r", f"{src}:={dst}"]
        if managed_by_launcher and self.managed:
            args += ["-p", "autostart:=false"]
        return args

    @property
    def module(self) -> str:
        return self.target.split(":")[0]

    def node_class(self) -> type:
        module, cls = self.target.split(":")
        return getattr(importlib.import_module(module), cls)


_N = "usx_ros.nodes"

GRAPHS: dict[str, tuple[NodeDescription, ...]] = {
    # The whole intra-operative loop on a digital phantom: no hardware.
    "phantom": (
        NodeDescription("phantom", "phantom", "usx_ros.sim.phantom:PhantomNode", managed=False),
        NodeDescription("probe_tracker", "probe_tracker", f"{_N}.probe_tracker:ProbeTracker"),
        NodeDescription("us_compounding", "us_compounding", f"{_N}.us_compounding:UsCompounding"),
        NodeDescription("xray_ingest", "xray_ingest", f"{_N}.xray_ingest:XrayIngest"),
        NodeDescription("completion", "completion", f"{_N}.completion:CompletionNode"),
        NodeDescription("igtl_bridge", "igtl_bridge", f"{_N}.igtl_bridge:IgtlBridge"),
    ),
}


def graph(name: str) -> tuple[NodeDescription, ...]:
    """The nodes of graph ``name``; ValueError for an unknown graph."""
    if name not in GRAPHS:
        raise ValueError(f"unknown graph {name!r}; known: {sorted(GRAPHS)}")
    return GRAPHS[name]


def config_path(name: str, suffix: str = ".yaml") -> Path:
    """``<name><suffix>``: the installed share/usx_ros/config, else the source tree's config/."""
    try:
        from ament_index_python.packages import (
            PackageNotFoundError,
            get_package_share_directory,
        )

        try:
            installed = Path(get_package_share_directory("usx_ros")) / "config" / f"{name}{suffix}"
            if installed.is_file():
                return installed
        except PackageNotFoundError:
            pass
    except ImportError:  # no ament index at all: a plain source checkout
        pass
    source = Path(__file__).resolve().parents[2] / "config" / f"{name}{suffix}"
    if not source.is_file():
        raise ValueError(f"no config file {name}{suffix} installed or in {source.parent}")
    return source
