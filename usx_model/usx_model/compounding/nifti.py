"""Write and read compounded volumes as NIfTI-1.

The NIfTI world frame is nominally RAS, but a compounded volume lives in the robot base
frame (``lbr_link_0``), which is not anatomical. We store the grid's voxel -> base-frame
affine (mm) unchanged as the sform and qform, with code 2 ("aligned": a frame aligned to
something other than the scanner), units mm, and say so in the header description.
Viewers will therefore show base-frame x, y, z as if they were R, A, S.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from usx_model.compounding.insert import CompoundingResult
from usx_model.compounding.volume import VolumeGrid

DESCRIPTION = "usx compounding; world = robot base frame lbr_link_0 in mm, NOT RAS"
_ALIGNED = 2


def save_volume_nifti(path: str | Path, data: np.ndarray, grid: VolumeGrid) -> Path:
    """Write a (nx, ny, nz) volume with the grid's voxel -> base-frame affine.

    Args:
        path: ``.nii`` or ``.nii.gz``.
        data: (nx, ny, nz) array shaped like ``grid.shape`` (value, coverage, ...).
        grid: its grid.

    Returns:
        The path written.
    """
    data = np.asarray(data)
    if data.shape != grid.shape:
        raise ValueError(f"expected data of the grid's shape {grid.shape}, got {data.shape}")
    path = Path(path)
    if not (path.name.endswith(".nii") or path.name.endswith(".nii.gz")):
        raise ValueError(f"expected a .nii or .nii.gz path, got {path}")
    image = nib.Nifti1Image(data, grid.affine)
    image.set_sform(grid.affine, code=_ALIGNED)
    image.set_qform(grid.affine, code=_ALIGNED)
    image.header.set_xyzt_units(xyz="mm")
    image.header["descrip"] = DESCRIPTION.encode("ascii")[:79]
    nib.save(image, path)
    return path


def save_compounding_nifti(out_dir: str | Path, result: CompoundingResult) -> tuple[Path, Path]:
    """Write a sweep's ``volume.nii.gz`` (value, float32) and ``coverage.nii.gz`` (pixels per
    voxel, as float32) into ``out_dir`` (created if missing; existing files replaced).

    Returns:
        The two paths written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    volume = save_volume_nifti(out / "volume.nii.gz", result.value, result.grid)
    coverage = result.coverage.astype(np.float32)
    return volume, save_volume_nifti(out / "coverage.nii.gz", coverage, result.grid)


def load_volume_nifti(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a NIfTI volume; return ``(data, affine)`` with the affine voxel -> world mm."""
    image = nib.load(Path(path))
    return np.asarray(image.dataobj), image.affine
