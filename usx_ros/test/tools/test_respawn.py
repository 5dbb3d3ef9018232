"""The launcher's restart policy, ROS-free."""

from __future__ import annotations

import pytest

from usx_ros.tools.respawn import RespawnPolicy


@pytest.mark.parametrize("code", [0, 1, -9, 247])
def test_any_exit_is_restarted_and_reported(code: int) -> None:
    v = RespawnPolicy().on_exit("probe_tracker", code, started_s=0.0, now_s=30.0)
    assert v.restart and v.delay_s == 1.0
    assert v.message == (
        f"node probe_tracker exited with code {code} after 30.0 s; restarting in 1 s (1/5)"
    )


def test_a_parameter_error_at_startup_is_fatal_later_not() -> None:
    policy = RespawnPolicy()
    v = policy.on_exit("completion", 2, started_s=0.0, now_s=3.0)
    assert not v.restart and v.message.endswith("invalid parameters, not restarted")
    assert policy.on_exit("completion", 2, started_s=0.0, now_s=30.0).restart


def test_the_restart_budget_is_per_node_and_per_window() -> None:
    policy = RespawnPolicy(max_restarts=3, window_s=60.0)
    times = [20.0, 30.0, 40.0]
    assert all(policy.on_exit("a", 1, t - 15.0, t).restart for t in times)
    v = policy.on_exit("a", 1, 35.0, 50.0)
    assert not v.restart and v.message.endswith("restarted 3 times in 60 s, giving up")
    assert policy.on_exit("b", 1, 35.0, 50.0).restart  # another node has its own budget
    # once the first restarts leave the window, the node may restart again
    assert policy.on_exit("a", 1, 80.0, 95.0).restart


@pytest.mark.parametrize(
    "kwargs", [{"delay_s": -1.0}, {"max_restarts": -1}, {"window_s": 0.0}, {"startup_s": -2.0}]
)
def test_bad_settings_are_refused(kwargs) -> None:
    with pytest.raises(ValueError, match="expected delay_s >= 0, max_restarts >= 0"):
        RespawnPolicy(**kwargs)
