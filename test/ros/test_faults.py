"""Crash and restart: a recorder and a processing node killed with SIGKILL mid-sweep come
back, the next sweep completes, and every bag reads to the end (``usx bench faults``)."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.ros, pytest.mark.slow]


def test_killed_nodes_recover_and_the_recording_goes_on(ros_context, tmp_path):
    from usx_ros.tools.faults import run_faults
    from usx_ros.tools.faults_config import FaultsConfig

    # Short sweeps (one pass, fast) and a fixed kill point: no baseline sweep to wait for.
    cfg = FaultsConfig(
        nodes=("probe_tracker", "bag_record"),
        sweep_speed_mm_s=40.0,
        lateral_offsets_mm=(0.0,),
        kill_after_s=2.0,
        startup_timeout_s=60.0,
        step_timeout_s=45.0,
    )
    report = run_faults(cfg, tmp_path, ros_context)

    for name in cfg.nodes:
        r = report["nodes"][name]
        assert r["recovered"], (name, r)
        assert r["cut_sweep"]["killed_s_into_sweep"] >= 2.0, (name, r)
        assert not r["cut_sweep"]["ended_before_kill"], (name, r)
        assert r["next_sweep_completed"], (name, r)
        assert r["bag_readable"], (name, r)
        assert f"node {name} exited with code -9" in r["launcher_line"]
    assert report["nodes"]["probe_tracker"]["messages_lost_before_kill"] == 0
    recorder = report["nodes"]["bag_record"]
    assert recorder["new_bag"] != recorder["recorder_at_kill"]["bag"]
    bags = report["bags"]
    assert len(bags) == 2 and report["all_bags_readable"], bags
    assert [b["reindexed"] for b in bags.values()] == [True, False]  # the killed recorder's
