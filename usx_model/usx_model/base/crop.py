"""The per-vertebra crop the completion network was trained on.

Training partials are every bone point in a fixed box around the vertebra centroid
(neighbours included), so the live completion must cut the same box: the simulator
(``usx_model.sim.us_partial``) and the spine completer (``usx_model.completion.spine``)
both read it from here.
"""

from __future__ import annotations

#: Full size (x, y, z) of the crop box around a vertebra centroid, mm, anatomical LPS axes.
CROP_SIZE_MM: tuple[float, float, float] = (110.0, 100.0, 64.0)
