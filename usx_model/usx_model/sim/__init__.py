"""Physics-aware simulators of what ultrasound and a lateral X-ray see of a spine.

- :mod:`.us_partial`: US partial point clouds by ray casting (training inputs).
- :mod:`.visibility`: how much of body / posterior elements a partial covers.
- :mod:`.xray` and :mod:`.xray_geometry`: 2.5D X-ray body points, DRR, label image and
  its inverse.
- :mod:`.probe` and :mod:`.bmode`: probe model, sweep poses and streaming B-mode frames.
- :mod:`.scene`: the shared whole-spine ray-casting scene.
"""
