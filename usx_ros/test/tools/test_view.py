"""usx view: a bag becomes a Rerun recording that holds the spine, frames and poses."""

from __future__ import annotations

import json

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from sensor_msgs.msg import JointState
from std_msgs.msg import Header

from usx_msgs.msg import SpineCompletion, VertebraCompletion
from usx_ros.conversions import array_to_image, points_mm_to_cloud
from usx_ros.tools.bag import BagWriter

pytestmark = pytest.mark.ros

Q_HOME = [0.0, 0.5, 0.0, -1.2, 0.0, 0.9, 0.0]


def _write_bag(path) -> np.ndarray:
    """A short sweep: 20 joint states, 4 frames, bone points, one completed spine."""
    rng = np.random.default_rng(0)
    spine = rng.uniform([500, -100, 50], [700, 100, 200], (250, 3))
    with BagWriter(path) as bag:
        for k in range(20):
            t = 10**9 + k * 10**7
            msg = JointState(name=[f"lbr_A{i}" for i in range(1, 8)], position=Q_HOME)
            msg.header.stamp = Time(sec=t // 10**9, nanosec=t % 10**9)
            bag.write("/lbr/joint_states", msg, t)
            if k % 5 == 4:
                header = Header(frame_id="us_image", stamp=msg.header.stamp)
                image = np.full((64, 48), 40 * (k // 5), np.uint8)
                bag.write("/us/image", array_to_image(image, "mono8", header), t + 1)
        base = Header(frame_id="lbr_link_0")
        bag.write("/usx/bone_points", points_mm_to_cloud(spine[:100], base), 2 * 10**9)
        levels = np.repeat(np.arange(1, 6, dtype=np.uint8), 50)
        unc = rng.uniform(0.0, 0.002, 250).astype(np.float32)
        cloud = points_mm_to_cloud(spine, base, {"level": levels, "uncertainty": unc})
        bag.write("/usx/completed_spine", cloud, 3 * 10**9)
        done = SpineCompletion(header=base)
        done.vertebrae = [
            VertebraCompletion(level=f"L{lv}", status=0, confidence=0.9) for lv in range(1, 6)
        ]
        bag.write("/usx/spine_completion", done, 3 * 10**9 + 1)
    return spine


def _entities(rrd) -> dict[str, int]:
    """Entity path -> rows of Points3D positions (or other rows) in the recording."""
    from rerun.chunk import RrdReader

    out: dict[str, int] = {}
    for chunk in RrdReader(str(rrd)).stream():
        batch = chunk.to_record_batch()
        path = str(chunk.entity_path)
        if "Points3D:positions" in batch.schema.names:
            col = batch.column("Points3D:positions")
            out[path] = out.get(path, 0) + sum(len(v) for v in col.to_pylist() if v)
        else:
            out.setdefault(path, 0)
    return out


def test_the_recording_holds_spine_frames_and_poses(tmp_path, capsys) -> None:
    from usx_model.cli.main import main

    bag = tmp_path / "bag"
    _write_bag(bag)
    rrd = tmp_path / "x.rrd"
    assert main(["view", "--bag", str(bag), "--save", str(rrd)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["poses"] == 4 and report["images"] == 1 and report["spines"] == 1
    assert report["bone_points"] == 100
    ents = _entities(rrd)
    for lv in range(1, 6):
        assert ents[f"/world/spine/L{lv}"] == 50
        assert ents[f"/world/spine_uncertainty/L{lv}"] == 50
        assert f"/status/L{lv}" in ents
    assert ents["/world/bone_points"] == 100
    assert "/world/probe" in ents and "/us/image" in ents and "/world/image_plane" in ents
    from rerun.chunk import RrdReader

    assert RrdReader(str(rrd)).blueprints(), "the recording carries the viewer's layout"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--save", "x.txt"], "--save: expected a .rrd file, got"),
        (["--bag", "/nonexistent"], "is not a rosbag2 folder"),
    ],
)
def test_bad_input_is_one_line_exit_2(tmp_path, capsys, args, message) -> None:
    from usx_model.cli.main import main

    argv = {"--bag": str(tmp_path), "--save": str(tmp_path / "x.rrd")}
    for k, v in zip(args[::2], args[1::2], strict=True):
        argv[k] = v
    rc = main(["view", *[a for kv in argv.items() for a in kv]])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and message in err and len(err.splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "expected one of --save FILE.rrd and --serve"),
        (["--save", "x.rrd", "--serve"], "expected one of --save FILE.rrd and --serve"),
        (["--save", "x.rrd"], "--save: expected --bag BAG (a live view is served, not saved)"),
        (["--serve", "--bind", "example.org"], "--bind: expected an IP address, got"),
        (["--serve", "--bag", "/nonexistent"], "is not a rosbag2 folder"),
    ],
)
def test_a_wrong_combination_is_one_line_exit_2(capsys, args, message) -> None:
    from usx_model.cli.main import main

    rc = main(["view", *args])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and message in err and len(err.splitlines()) == 1
