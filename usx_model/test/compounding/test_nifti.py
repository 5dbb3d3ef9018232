"""NIfTI output keeps the voxel -> base-frame affine."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from nibabel.affines import apply_affine

from usx_model.compounding.nifti import load_volume_nifti, save_volume_nifti
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
