"""Two processes exchange a usx_msgs/SpineCompletion carrying PointCloud2 payloads.

The publisher runs in a subprocess (its own DDS participant); this process subscribes
with transient-local durability, so it also proves late joining works.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.ros

HERE = Path(__file__).parent


def _publisher_module():
    spec = importlib.util.spec_from_file_location("spine_publisher", HERE / "spine_publisher.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _receive_from_subprocess(ros_node, corrupt_byte: int | None):
    from usx_msgs.msg import SpineCompletion
    from usx_ros.testing import spin_until

    pub_mod = _publisher_module()
    topic = f"/usx_test/spine_{uuid.uuid4().hex[:8]}"
    cmd = [sys.executable, str(HERE / "spine_publisher.py"), "--topic", topic, "--seed", "7"]
    if corrupt_byte is not None:
        cmd += ["--corrupt-byte", str(corrupt_byte)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    received = []
    ros_node.create_subscription(SpineCompletion, topic, received.append, pub_mod.RESULT_QOS)
    try:
        ok = spin_until(ros_node, lambda: bool(received) or proc.poll() is not None, timeout_s=30.0)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert ok and received, (
        f"no message within 30 s; publisher rc={proc.returncode} stderr={err[-2000:]}"
    )
    return received[0], pub_mod.make_spine_completion(7, 2048)


def _payload_equal(got, want) -> bool:
    from usx_ros.conversions import cloud_to_array

    if [v.level for v in got.vertebrae] != [v.level for v in want.vertebrae]:
        return False
    for g, w in zip(got.vertebrae, want.vertebrae, strict=True):
        if bytes(g.cloud.data) != bytes(w.cloud.data) or g.cloud.fields != w.cloud.fields:
            return False
        ga, wa = cloud_to_array(g.cloud), cloud_to_array(w.cloud)
        if ga.tobytes() != wa.tobytes():
            return False
    return got.model_id == want.model_id and got.header == want.header


def test_spine_completion_crosses_processes_bit_for_bit(ros_node):
    from usx_ros.conversions import cloud_to_array

    got, want = _receive_from_subprocess(ros_node, corrupt_byte=None)
    assert _payload_equal(got, want)
    arr = cloud_to_array(got.vertebrae[2].cloud)
    assert arr.dtype.names == ("x", "y", "z", "uncertainty", "level")
    assert np.all(arr["level"] == 3)
    assert got.header.frame_id == "lbr_link_0"
    assert got.latency.nanosec == 250_000_000


def test_corrupted_payload_is_detected(ros_node):
    got, want = _receive_from_subprocess(ros_node, corrupt_byte=5)
    assert not _payload_equal(got, want)
