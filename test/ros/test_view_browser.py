"""`usx view --serve` as a person checks it: headless Chromium opens the served viewer
during a short phantom run, and the screenshot shows the completed spine in its level
colours. The screenshot is kept as out/test/view_serve.png for a look."""

from __future__ import annotations

import io
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

pytestmark = [pytest.mark.ros, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config" / "phantom.yaml"
SHOT = ROOT / "out" / "test" / "view_serve.png"
USX = Path(sys.executable).parent / "usx"
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
# Software WebGL (SwiftShader): no GPU, no display.
BROWSER_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
    "--window-size=1280,800",
)
#: Largest per-channel difference from a level colour that still counts as that colour: the
#: spine is drawn flat in the palette's colours; this allows for the rasteriser's rounding.
COLOUR_TOLERANCE = 10
#: Pixels of each completed level's colour that make its vertebra visible (a vertebra
#: drew thousands here), not stray pixels of the same colour in the viewer's own UI.
MIN_LEVEL_PIXELS = 300


def _free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as s:
        return s.getsockname()[1]


def _first_line(proc: subprocess.Popen, timeout_s: float) -> str:
    """The first stdout line of ``proc``, waiting at most ``timeout_s``."""
    ready, _, _ = select.select([proc.stdout], [], [], timeout_s)
    return proc.stdout.readline() if ready else ""


def _stop(proc: subprocess.Popen, sig: int, timeout_s: float = 30.0) -> int:
    proc.send_signal(sig)
    try:
        return proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # its own session: children included
        return proc.wait(timeout=timeout_s)


def _browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in BROWSER_FLAGS:
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))


def _pixels(png: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def _level_pixels(img: np.ndarray, levels) -> dict[int, int]:
    """Level -> pixels within ``COLOUR_TOLERANCE`` of its colour, for ``levels``."""
    from usx_ros.tools.rerun_log import LEVEL_RGB

    rgb = img.astype(np.int16)
    return {
        lv: int((np.abs(rgb - LEVEL_RGB[lv - 1]).max(axis=-1) <= COLOUR_TOLERANCE).sum())
        for lv in levels
    }


def _shows_spine(img: np.ndarray, levels) -> bool:
    """Past the loading screen (one logo on a plain page): every level's colour is there."""
    return min(_level_pixels(img, levels).values()) >= MIN_LEVEL_PIXELS


@pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="needs the Debian packages chromium and chromium-driver, which the test "
    "setup installs (`bash scripts/setup.sh --test-tools`, run by scripts/test.sh)",
)
def test_the_served_viewer_shows_the_completed_spine(ros_node, tmp_path):
    from sensor_msgs.msg import PointCloud2

    from usx_ros.conversions import cloud_to_array
    from usx_ros.qos import RESULT_QOS
    from usx_ros.testing import spin_until

    params = yaml.safe_load(CONFIG.read_text())
    # One short pass (2 s of frames), no OpenIGTLink server; everything else as shipped.
    params["phantom"]["ros__parameters"].update(
        n_frames=60, start_delay_s=1.0, lateral_offsets_mm=[0.0]
    )
    params["igtl_bridge"]["ros__parameters"]["enabled"] = False
    cfg = tmp_path / "phantom.yaml"
    cfg.write_text(yaml.safe_dump(params))
    grpc_port, web_port = _free_port(), _free_port()
    viewer_err = tmp_path / "view.err"
    with viewer_err.open("w") as err:
        viewer = subprocess.Popen(
            [str(USX), "view", "--serve", "--port", str(grpc_port), "--web-port", str(web_port)],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            start_new_session=True,
        )
    graph = browser = None
    got: list[PointCloud2] = []
    try:
        line = _first_line(viewer, timeout_s=60.0)
        assert line, f"usx view printed no URL; stderr:\n{viewer_err.read_text()[-3000:]}"
        served = json.loads(line)
        assert served["viewer"].startswith(f"http://127.0.0.1:{web_port}/?url=")
        assert served["grpc"] == f"rerun+http://127.0.0.1:{grpc_port}/proxy"
        assert served["source"] == "live"
        browser = _browser()
        browser.get(served["viewer"])  # opened before the sweep: the view follows it live
        with (tmp_path / "graph.out").open("w") as out:
            graph = subprocess.Popen(
                [str(USX), "launch", "phantom", "--config", str(cfg)],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        ros_node.create_subscription(PointCloud2, "/usx/completed_spine", got.append, RESULT_QOS)
        done = spin_until(ros_node, lambda: bool(got) or graph.poll() is not None, 240.0)
        graph_out = (tmp_path / "graph.out").read_text
        assert done and got, f"no completed spine; the graph said:\n{graph_out()[-3000:]}"
        levels = sorted(int(v) for v in np.unique(cloud_to_array(got[-1], ("level",))["level"]))
        # The viewer app loads (a loading screen first), connects, and draws the spine.
        deadline = time.monotonic() + 90.0
        img = _pixels(browser.get_screenshot_as_png())
        while not _shows_spine(img, levels) and time.monotonic() < deadline:
            img = _pixels(browser.get_screenshot_as_png())
        SHOT.parent.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(SHOT))
    finally:
        if browser is not None:
            browser.quit()
        if graph is not None:
            _stop(graph, signal.SIGINT)
        viewer_rc = _stop(viewer, signal.SIGTERM)
    counts = _level_pixels(img, levels)
    colours = len(np.unique(img.reshape(-1, 3), axis=0))
    assert colours >= 500, f"{colours} distinct colours: a blank or loading page ({SHOT})"
    assert min(counts.values()) >= MIN_LEVEL_PIXELS, f"level pixels {counts} ({SHOT})"
    # SIGTERM ends the view cleanly: exit 0, no traceback.
    err_text = viewer_err.read_text()
    assert viewer_rc == 0 and "Traceback" not in err_text, err_text[-3000:]
