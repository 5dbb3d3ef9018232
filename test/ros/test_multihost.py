"""The phantom graph across two network namespaces survives a link outage mid-sweep.

A short ``usx bench multihost`` (one 10 s pass at 30 Hz, the link down for 3 s from 3 s
after the start): the completion arrives, B-mode frames flow again soon after the link
returns, the frames sent during the outage are counted as lost (and none arrives while
the link is down: nothing bypasses it through shared memory), and the namespaces are
gone afterwards. The frame accounting itself is checked against a naive count first.
"""

from __future__ import annotations

import numpy as np
import pytest

from usx_ros.tools.multihost_report import Outage, frame_accounting

_PERIOD_NS = 33_333_333  # 30 Hz


def _naive_outage_loss(sent: np.ndarray, received: set[int], down_i: int, up_i: int) -> int:
    """Frames not received whose index lies in the outage's run of missing frames."""
    lo = max(i for i in range(down_i + 1) if sent[i] in received)
    hi = min(i for i in range(up_i, sent.size) if sent[i] in received)
    return sum(1 for i in range(lo, hi) if sent[i] not in received)


@pytest.mark.parametrize(
    ("down_i", "up_i", "also_lost"),
    [
        (30, 120, ()),  # only the outage
        (30, 120, (5, 200, 201)),  # and three elsewhere
        (0, 60, (150,)),  # down right after the first frame
    ],
)
def test_frame_accounting_matches_a_naive_count(down_i, up_i, also_lost) -> None:
    sent = np.arange(300, dtype=np.int64) * _PERIOD_NS + 10**18
    arrival = 100.0 + np.arange(300) / 30.0 + 0.01  # each frame 10 ms after its stamp
    gone = set(range(down_i + 1, up_i)) | set(also_lost)
    keep = np.array([i not in gone for i in range(300)])
    outage = Outage(down_t=100.0 + (down_i + 0.5) / 30.0, up_t=100.0 + (up_i - 0.5) / 30.0)

    got = frame_accounting(arrival[keep], sent[keep], 300, outage)

    received = set(sent[keep].tolist())
    assert got["frames_received"] == len(received)
    assert got["frames_lost"] == 300 - len(received)
    assert got["frames_lost_in_outage"] == _naive_outage_loss(sent, received, down_i, up_i)
    assert got["frames_lost_elsewhere"] == len(also_lost)
    assert got["frames_received_while_down"] == 0
    assert got["recovered_s"] == pytest.approx(arrival[up_i] - outage.up_t)


def test_frame_accounting_counts_a_frame_that_bypassed_the_link() -> None:
    stamps = np.arange(10, dtype=np.int64) * _PERIOD_NS
    arrival = np.array([0.0, 0.1, 0.2, 2.0, 3.5, 3.6, 3.7, 3.8, 3.9, 4.0])
    got = frame_accounting(arrival, stamps, 10, Outage(down_t=1.0, up_t=3.0))
    assert got["frames_received_while_down"] == 1
    assert got["recovered_s"] == pytest.approx(0.5)


def test_frame_accounting_rejects_mismatched_arrays() -> None:
    with pytest.raises(ValueError, match=r"expected arrival_t and stamp_ns of one shape"):
        frame_accounting(np.zeros(3), np.zeros(2, dtype=np.int64), 3, None)


@pytest.mark.ros
@pytest.mark.slow
def test_graph_across_two_namespaces_recovers_from_an_outage() -> None:
    from usx_ros.tools import netns
    from usx_ros.tools.bench_multihost import MultihostConfig, run_multihost

    reason = netns.unavailable()
    if reason is not None:
        pytest.skip(reason)
    before = netns.namespaces()
    cfg = MultihostConfig(
        sweep_s=10.0, lateral_offsets_mm=(0.0,), outage_at_s=3.0, outage_s=3.0, timeout_s=75.0
    )

    r = run_multihost(cfg)

    assert netns.namespaces() == before, "the bench left network namespaces behind"
    assert r["completed"], r
    assert r["outage_inside_sweep"], r
    assert r["outage_s"] >= 3.0, r
    assert r["recovered_s"] is not None and r["recovered_s"] <= 5.0, r
    assert r["frames_received"] + r["frames_lost"] == r["frames_sent"] == 300, r
    # a 3 s outage of a 30 Hz stream: at least 2 s of frames lost to it, none that crossed
    assert r["frames_lost_in_outage"] >= 60, r
    assert r["frames_lost"] >= r["frames_lost_in_outage"], r
    assert r["frames_received_while_down"] == 0, r
    # the frames that did arrive came over the veth (two readers: monitor and recorder)
    assert r["link_rx_bytes"] >= r["frames_received"] * 512 * 512, r


def test_bench_says_in_one_line_why_it_skipped(monkeypatch, capsys) -> None:
    import argparse

    from usx_ros.tools import bench_multihost, netns

    reason = "network namespaces need root (run as root or in a CI container with root)"
    monkeypatch.setattr(netns, "unavailable", lambda: reason)
    parser = argparse.ArgumentParser()
    bench_multihost.add_arguments(parser)

    assert bench_multihost.run(parser.parse_args([])) == {"skipped": reason}
    assert capsys.readouterr().err == f"usx bench multihost: skipped: {reason}\n"


def test_an_outage_past_the_sweep_is_refused() -> None:
    from usx_ros.tools.bench_multihost import MultihostConfig

    with pytest.raises(ValueError, match=r"the outage \(8 s \+ 3 s\) must end before the sweep"):
        MultihostConfig(sweep_s=10.0, outage_at_s=8.0).validate()
