"""Ingestion of the intra-operative images: lateral X-ray and CBCT.

- :mod:`.xray`: DICOM (de-identified, magnification-corrected spacing) or PNG + JSON.
- :mod:`.deid`: DICOM PS3.15 basic-profile de-identification and pseudonyms.
- :mod:`.xray_points`, :mod:`.symmetry`, :mod:`.placement`: the per-level body label
  image -> 3D points in the robot base frame (with or without CBCT).
- :mod:`.cbct`: NIfTI / DICOM series -> LPS volume -> (posterior) bone surface.
"""
