"""What one ``usx bench faults`` run does: which nodes it kills, when, how fast the phantom
sweeps. ROS-free, so that ``usx --help`` builds the bench's options without rclpy.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Every restartable node of the recording phantom graph (the phantom is the patient).
DEFAULT_NODES = ("probe_tracker", "us_compounding", "xray_ingest", "completion", "bag_record")


@dataclass(frozen=True)
class FaultsConfig:
    """One faults run.

    Attributes:
        nodes: killed in this order, one kill each.
        sweep_speed_mm_s: the phantom's probe speed (10 in config/phantom.yaml; faster
            sweeps make the run short, every sweep still covers L1..L5).
        loop_pause_s: the phantom's pause between sweeps, s.
        lateral_offsets_mm: the phantom's passes per sweep (None: as in phantom.yaml).
        kill_at: kill this fraction of a sweep's duration (the first sweep's, measured)
            after a sweep's start; ignored when ``kill_after_s`` is set.
        kill_after_s: kill this long after a sweep's start, s (no baseline sweep needed).
        startup_timeout_s: longest wait for the graph's first sweep, s.
        step_timeout_s: longest wait for one kill's recovery and next sweep, s.
    """

    nodes: tuple[str, ...] = DEFAULT_NODES
    sweep_speed_mm_s: float = 30.0
    loop_pause_s: float = 1.0
    lateral_offsets_mm: tuple[float, ...] | None = None
    kill_at: float = 0.5
    kill_after_s: float | None = None
    startup_timeout_s: float = 240.0
    step_timeout_s: float = 180.0

    def __post_init__(self) -> None:
        unknown = set(self.nodes) - set(DEFAULT_NODES)
        if unknown or not self.nodes:
            raise ValueError(f"expected nodes among {list(DEFAULT_NODES)}, got {list(self.nodes)}")
        if not 0.0 < self.kill_at < 1.0:
            raise ValueError(
                f"expected 0 < kill_at < 1 (a point inside a sweep), got {self.kill_at}"
            )
        if self.kill_after_s is not None and self.kill_after_s <= 0:
            raise ValueError(f"expected kill_after_s > 0, got {self.kill_after_s}")

    def overrides(self) -> dict[str, dict]:
        phantom = {
            "loop": True,
            "loop_pause_s": self.loop_pause_s,
            "sweep_speed_mm_s": self.sweep_speed_mm_s,
        }
        if self.lateral_offsets_mm is not None:
            phantom["lateral_offsets_mm"] = list(self.lateral_offsets_mm)
        # no OpenIGTLink server: its port is the machine's, and another graph may hold it
        return {"phantom": phantom, "igtl_bridge": {"enabled": False}}
