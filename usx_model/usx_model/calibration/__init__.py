"""Probe calibration from a recorded sweep: the plate line in each frame
(:mod:`.plate_line`), the spatial calibration image -> flange (:mod:`.spatial`) and the
temporal offset images -> joint states (:mod:`.temporal`)."""
