"""The shared vocabulary of every usx_model layer; imports no other usx package.

- :mod:`.transforms`: 4x4 rigid transforms ``T_parent_child`` (mm) and their checks.
- :mod:`.xray_geometry`: a C-arm shot (source, flat detector), projection and inverse.
- :mod:`.parts`: levels L1..L5 and the anatomical part codes of a vertebra.
- :mod:`.crop`: the per-vertebra crop the completion network was trained on.
- :mod:`.points`: point-cloud validation and voxel thinning.
"""
