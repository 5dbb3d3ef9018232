"""usx bench faults: the run's configuration is checked before anything is launched
(the run itself: test/ros/test_faults.py)."""

from __future__ import annotations

import pytest

from usx_ros.tools.faults_config import DEFAULT_NODES, FaultsConfig


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"nodes": ("phantom",)}, r"expected nodes among \['probe_tracker'.*got \['phantom'\]"),
        ({"nodes": ()}, r"expected nodes among .*got \[\]"),
        ({"kill_at": 1.0}, r"expected 0 < kill_at < 1 \(a point inside a sweep\), got 1.0"),
        ({"kill_at": 0.0}, r"expected 0 < kill_at < 1 .*got 0.0"),
        ({"kill_after_s": -1.0}, r"expected kill_after_s > 0, got -1.0"),
    ],
)
def test_bad_config_is_refused(kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        FaultsConfig(**kwargs)


def test_overlay_loops_the_phantom_and_turns_the_igtl_server_off() -> None:
    o = FaultsConfig(sweep_speed_mm_s=40.0, lateral_offsets_mm=(0.0,)).overrides()
    assert o["phantom"] == {
        "loop": True,
        "loop_pause_s": 1.0,
        "sweep_speed_mm_s": 40.0,
        "lateral_offsets_mm": [0.0],
    }
    assert o["igtl_bridge"] == {"enabled": False}
    assert FaultsConfig().nodes == DEFAULT_NODES and DEFAULT_NODES[-1] == "bag_record"
