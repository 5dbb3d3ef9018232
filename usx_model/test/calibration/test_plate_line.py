"""Plate line detection against the plate simulator's exact ranges."""

import numpy as np
import pytest

from usx_model.calibration.plate_line import PlateLineParams, detect_plate_line
from usx_model.sim.plate import PlateScene, probe_over_plate
from usx_model.sim.probe import ProbeModel

PROBE = ProbeModel(shape=(256, 256), pixel_mm=0.2, width_mm=40.0)


@pytest.mark.parametrize(("height", "tilt_y"), [(20.0, 0.0), (30.0, 12.0), (35.0, -20.0)])
def test_line_lies_on_the_true_plate_to_a_tenth_of_a_pixel(height, tilt_y):
    scene = PlateScene(PROBE, seed=1)
    T = probe_over_plate(height, tilt_x_deg=5.0, tilt_y_deg=tilt_y)
    line = detect_plate_line(scene.render(T))
    assert line is not None
    ranges, _ = scene.ranges_mm(T)
    scan, _ = PROBE.pixel_map()
    u = line.uv_px[:, 0].astype(int)
    v_true = ranges[scan[0, u]] / PROBE.pixel_mm - 0.5  # row centres at (v + 0.5) px
    assert np.abs(line.uv_px[:, 1] - v_true).max() < 0.1
    # a tilt about the elevation axis slants the line: dv/du = tan(tilt) for square pixels
    assert line.slope == pytest.approx(np.tan(np.radians(tilt_y)), abs=0.01)
    assert len(u) > 0.9 * (PROBE.width_mm / PROBE.pixel_mm)


def test_no_plate_no_line():
    scene = PlateScene(PROBE, seed=1)
    beyond = probe_over_plate(80.0)  # deeper than the 51 mm image
    assert detect_plate_line(scene.render(beyond)) is None


def test_half_the_aperture_is_not_enough():
    scene = PlateScene(PROBE, seed=1)
    img = scene.render(probe_over_plate(25.0))
    img[:, 128:] = np.minimum(img[:, 128:], 20)  # half the columns lose the echo
    assert detect_plate_line(img, PlateLineParams(min_columns=0.6)) is None
    assert detect_plate_line(img, PlateLineParams(min_columns=0.4)) is not None


def test_bad_image():
    with pytest.raises(ValueError, match="uint8"):
        detect_plate_line(np.zeros((64, 64), np.float32))
