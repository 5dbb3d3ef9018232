"""A tracked sweep end to end: joint states -> FK -> poses -> frames in the volume."""

from __future__ import annotations

import numpy as np

from usx_model.base.transforms import transform_from_xyz_rpy
from usx_model.compounding.insert import Compounder
from usx_model.compounding.points import mask_to_base_points
from usx_model.compounding.sweep import SweepCompounder
from usx_model.compounding.volume import VolumeGrid
from usx_model.tracking.calibration import ImageCalibration, ProbeCalibration, base_pixel_transform
from usx_model.tracking.iiwa import forward_kinematics
from usx_model.tracking.interpolation import PoseBuffer

MS = 1_000_000


def test_sweep_places_frames_like_direct_insertion_and_counts_drops():
    q = np.deg2rad([[a, 90, 0, 0, 0, 90, 0] for a in np.linspace(-2, 2, 5)])
    T_base_ee = forward_kinematics(q)  # flange pointing down over x = 820 mm
    cal = ProbeCalibration(
        ImageCalibration.centred_on_face(16, (0.5, 0.5)),
        transform_from_xyz_rpy([0, 0, 150], [0, 0, 0]),
    )
    grid = VolumeGrid.from_bounds([805, -40, 70], [835, 40, 90], 1.0)
    sweep = SweepCompounder(grid, cal, (16, 16), pose_buffer=PoseBuffer(tolerance_s=0.02))
    for i, T in enumerate(T_base_ee):
        assert sweep.add_pose(i * 10 * MS, T) is None
    assert sweep.add_pose(5 * MS, T_base_ee[0]) is not None  # out of order
    image = np.arange(256, dtype=np.float32).reshape(16, 16)
    outcome = sweep.add_frame(20 * MS, image)  # exactly on the third pose
    assert outcome.inserted and outcome.pixels_inserted == 256
    np.testing.assert_allclose(outcome.T_base_pixel, base_pixel_transform(T_base_ee[2], cal))
    dropped = sweep.add_frame(100 * MS, image)
    assert not dropped.inserted and dropped.reason.value == "no_pose"
    assert sweep.drop_counts == {"no_pose": 1, "out_of_order": 1, "invalid_pose": 0}
    direct = Compounder(grid, (16, 16))
    direct.insert(image, base_pixel_transform(T_base_ee[2], cal))
    np.testing.assert_array_equal(sweep.result().value, direct.result().value)
    # top-row pixel at column 8: 0.25 mm lateral (flange x) of the face centre, which
    # sits 150 mm out along the flange z axis (straight down here); the row-0 centre lies
    # half a pixel (0.25 mm) deeper than the face
    point = mask_to_base_points(_face(), outcome.T_base_pixel)[0]
    T = T_base_ee[2]
    np.testing.assert_allclose(point, T[:3, 3] + T[:3, :3] @ [0.25, 0, 150.25], atol=1e-9)
    np.testing.assert_allclose(T[:3, 2], [0, 0, -1], atol=1e-9)


def _face() -> np.ndarray:
    mask = np.zeros((16, 16), dtype=bool)
    mask[0, 8] = True  # column 8 is 0.5 px (0.25 mm) right of the face centre at 7.5
    return mask
