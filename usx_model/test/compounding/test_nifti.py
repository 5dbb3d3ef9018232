"""NIfTI output keeps the voxel -> base-frame affine."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from nibabel.affines import apply_affine

from usx_model.compounding.insert import CompoundingResult
from usx_model.compounding.nifti import (
    load_volume_nifti,
    save_compounding_nifti,
    save_volume_nifti,
)
from usx_model.compounding.volume import VolumeGrid


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_round_trip(tmp_path, suffix):
    grid = VolumeGrid((100.0, -50.0, 20.0), (0.5, 0.75, 1.25), (4, 3, 2))
    data = np.arange(24, dtype=np.float32).reshape(grid.shape)
    path = save_volume_nifti(tmp_path / f"vol{suffix}", data, grid)
    loaded, affine = load_volume_nifti(path)
    np.testing.assert_array_equal(loaded, data)
    ijk = np.array([[0, 0, 0], [3, 2, 1], [1, 1, 1]])
    expected = [[100, -50, 20], [101.5, -48.5, 21.25], [100.5, -49.25, 21.25]]
    np.testing.assert_allclose(apply_affine(affine, ijk), expected)
    np.testing.assert_allclose(apply_affine(affine, ijk), grid.index_to_world(ijk))
    header = nib.load(path).header
    assert int(header["sform_code"]) == 2 and int(header["qform_code"]) == 2
    assert b"lbr_link_0" in header["descrip"].item()
    assert header.get_xyzt_units()[0] == "mm"


def test_validation(tmp_path):
    grid = VolumeGrid((0, 0, 0), (1, 1, 1), (2, 2, 2))
    with pytest.raises(ValueError, match=r"grid's shape \(2, 2, 2\), got \(2, 2\)"):
        save_volume_nifti(tmp_path / "a.nii", np.zeros((2, 2)), grid)
    with pytest.raises(ValueError, match=r"\.nii or \.nii\.gz path"):
        save_volume_nifti(tmp_path / "a.nrrd", np.zeros((2, 2, 2)), grid)


def test_a_sweep_writes_volume_and_coverage(tmp_path):
    grid = VolumeGrid((0.0, 0.0, 0.0), (1.0, 1.0, 1.0), (2, 2, 2))
    value = np.linspace(0, 1, 8, dtype=np.float32).reshape(grid.shape)
    coverage = np.arange(8, dtype=np.uint32).reshape(grid.shape)
    result = CompoundingResult(value, coverage, grid, frames_inserted=1, pixels_inserted=28)
    out = tmp_path / "new" / "dir"
    paths = save_compounding_nifti(out, result)
    assert paths == (out / "volume.nii.gz", out / "coverage.nii.gz")
    np.testing.assert_array_equal(load_volume_nifti(paths[0])[0], value)
    loaded, _ = load_volume_nifti(paths[1])
    assert loaded.dtype == np.float32
    np.testing.assert_array_equal(loaded, coverage)
