"""X-ray placement (stage 2): labels cut with the registered plane; no torch imported."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
from scipy.spatial.transform import Rotation

from usx_model.base.transforms import make_transform
from usx_model.completion.xray_placement import XrayObservation, place_xray
from usx_model.ingest.xray import device_geometry


def test_registered_depth_puts_every_level_on_the_plane_normal_to_the_beam() -> None:
    geom = device_geometry((20, 30), 0.5, 1000.0, 700.0)
    label = np.zeros((20, 30), np.uint8)
    label[2:5, 3:9] = 1
    label[10:14, 20:25] = 2
    T = make_transform(Rotation.from_euler("z", 30, degrees=True).as_matrix(), [5.0, -2.0, 40.0])
    point = T[:3, :3] @ [6.0, 1.0, 2.0] + T[:3, 3]
    xray = XrayObservation(label=label, geometry=geom, T_base_xray=T, plane_point_mm=point)
    out = place_xray(np.zeros((10, 3)), xray)  # the US points are not used with a depth
    assert sorted(out) == [1, 2] and len(out[1]) == 18 and len(out[2]) == 20
    beam = T[:3, :3] @ geom.normal
    for lv, pts in out.items():
        # independent check: on the plane, and back onto their own pixels
        np.testing.assert_allclose((pts - point) @ beam, 0.0, atol=1e-9)
        rc = geom.project((pts - T[:3, 3]) @ T[:3, :3])
        rows, cols = np.nonzero(label == lv)
        np.testing.assert_allclose(rc, np.column_stack([rows, cols]), atol=1e-6)


def test_the_x_ray_stage_does_not_load_the_network() -> None:
    code = "import sys, usx_model.completion.xray_placement; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
