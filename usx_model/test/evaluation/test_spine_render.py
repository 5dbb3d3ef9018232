"""The demo picture: a 3D view beside the lateral and axial ones, the levels' colours in it."""

from __future__ import annotations

import matplotlib.image as mpimg
import numpy as np

from usx_model.evaluation.spine_report import LEVEL_COLOURS, render_spine


def test_picture_has_three_panels_and_every_level_colour(tmp_path) -> None:
    rng = np.random.default_rng(0)
    completed = {lv: rng.normal([0, 0, 40 * (3 - lv)], 8, (400, 3)) for lv in range(1, 6)}
    path = render_spine(tmp_path / "s.png", np.eye(3), completed, rng.normal(0, 5, (200, 3)))
    img = mpimg.imread(path)[:, :, :3]
    assert img.shape[:2] == (700, 1800)
    third = img.shape[1] // 3
    for colour in LEVEL_COLOURS:
        rgb = np.array([int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)])
        hit = np.all(np.abs(img - rgb) < 0.08, axis=2)
        # each level is drawn in the 3D panel and in the two 2D panels
        assert hit[:, :third].sum() > 20 and hit[:, third:].sum() > 20, colour
