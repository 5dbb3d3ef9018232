"""CBCT ingestion: NIfTI RAS -> LPS, DICOM series sorting/affine, bone surface, bad input."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from usx_model.ingest.cbct import (
    CbctVolume,
    bone_surface,
    read_cbct_dicom_series,
    read_cbct_nifti,
)

RADIUS_MM = 10.0


def _sphere_volume(shape=(32, 32, 32), spacing=1.0, centre=(16.0, 16.0, 16.0)) -> np.ndarray:
    idx = np.indices(shape).reshape(3, -1).T * spacing
    d = np.linalg.norm(idx - np.asarray(centre) * spacing, axis=1).reshape(shape)
    return np.where(d <= RADIUS_MM, 1000.0, 0.0).astype(np.float32)


def test_nifti_ras_to_lps(tmp_path):
    affine = np.array([[1.0, 0, 0, -20], [0, 1.0, 0, 5], [0, 0, 2.0, 7], [0, 0, 0, 1]])
    data = np.zeros((4, 5, 6), np.int16)
    data[1, 2, 3] = 3
    path = str(tmp_path / "v.nii.gz")
    nib.save(nib.Nifti1Image(data, affine), path)
    vol = read_cbct_nifti(path, is_label=True)
    assert vol.data.shape == (4, 5, 6) and vol.is_label
    # voxel (1, 2, 3): RAS (-19, 7, 13) -> LPS (19, -7, 13)
    np.testing.assert_allclose(vol.T_lps_voxel @ [1, 2, 3, 1], [19, -7, 13, 1])
    np.testing.assert_allclose(vol.spacing_mm, [1, 1, 2])


def _write_series(tmp_path, volume: np.ndarray, order, spacing=(0.5, 0.8), dk=1.5, drop=None):
    """Axial slices (identity orientation) of volume[i, j, k] -> files in ``order``."""
    paths = []
    for k in order:
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = pydicom.Dataset()
        ds.file_meta = meta
        ds.PatientName = "Doe^Jane"
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [-10.0, 20.0, 100.0 + dk * k]
        ds.PixelSpacing = list(spacing)  # row spacing, column spacing
        ds.RescaleSlope, ds.RescaleIntercept = 2, -1000
        plane = volume[:, :, k].T.astype(np.uint16)  # rows = j, cols = i
        ds.Rows, ds.Columns = plane.shape
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
        ds.PixelRepresentation, ds.SamplesPerPixel = 0, 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.PixelData = plane.tobytes()
        if drop:
            delattr(ds, drop)
        p = str(tmp_path / f"s{len(paths):02d}.dcm")
        ds.save_as(p, enforce_file_format=True)
        paths.append(p)
    return paths


def test_dicom_series_sorted_and_affine(tmp_path):
    vol = np.arange(3 * 4 * 5, dtype=np.uint16).reshape(3, 4, 5)
    read = read_cbct_dicom_series(_write_series(tmp_path, vol, [3, 0, 4, 1, 2]))
    np.testing.assert_allclose(read.data, vol * 2.0 - 1000)
    # i along the row cosine (x) by the column spacing 0.8, j along y by 0.5, k by 1.5
    np.testing.assert_allclose(read.T_lps_voxel @ [2, 3, 4, 1], [-10 + 1.6, 20 + 1.5, 106, 1])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"drop": "ImagePositionPatient"}, r"lacks \['ImagePositionPatient'\]"),
        ({"order": [0, 0, 1]}, "duplicate slice positions"),
        ({"order": [0, 1, 3]}, "non-uniform slice spacing"),
    ],
)
def test_bad_series(tmp_path, kwargs, match):
    vol = np.zeros((3, 4, 5), np.uint16)
    args = {"order": [0, 1, 2], **kwargs}
    with pytest.raises(ValueError, match=match):
        read_cbct_dicom_series(_write_series(tmp_path, vol, **args))


def test_series_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="DICOM series directory not found"):
        read_cbct_dicom_series(str(tmp_path / "none"))


@pytest.mark.parametrize("flip", [False, True])
def test_bone_surface_sphere(flip):
    T = np.diag([-1.0 if flip else 1.0, 1.0, 1.0, 1.0])
    vol = CbctVolume(_sphere_volume(), T)
    centre = T[:3, :3] @ np.array([16.0, 16.0, 16.0])
    full = bone_surface(vol, threshold_hu=500, posterior_only=False)
    r = np.linalg.norm(full.points_mm - centre, axis=1)
    assert np.all(np.abs(r - RADIUS_MM) < 0.8)
    # outward normals point away from the centre, whatever the affine's handedness
    radial = (full.points_mm - centre) / r[:, None]
    assert np.mean(np.sum(radial * full.normals, axis=1)) > 0.95
    post = bone_surface(vol, threshold_hu=500, ray_spacing_mm=0.5, tilts_deg=(0.0,))
    assert np.all(post.points_mm[:, 1] > centre[1] - 1.0)  # only the posterior half (+y)
    assert np.all(post.normals[:, 1] > 0) and len(post.points_mm) > 100
    # a probe rocking by +-25 deg also sees the flanks down to sin(25 deg) below the equator
    rocked = bone_surface(vol, threshold_hu=500, ray_spacing_mm=0.5)
    low = centre[1] - RADIUS_MM * np.sin(np.radians(25.0)) - 1.0
    assert np.all(rocked.points_mm[:, 1] > low) and len(rocked.points_mm) > len(post.points_mm)


def test_bone_surface_label_volume():
    vol = CbctVolume(_sphere_volume() > 0, np.eye(4), is_label=True)
    pts = bone_surface(vol, posterior_only=False).points_mm
    r = np.linalg.norm(pts - 16.0, axis=1)
    assert np.all(np.abs(r - RADIUS_MM) < 1.0)


@pytest.mark.parametrize(
    ("vol", "kwargs", "match"),
    [
        (CbctVolume(np.zeros((8, 8, 8), np.float32), np.eye(4)), {}, "no bone surface"),
        (CbctVolume(_sphere_volume(), np.eye(4)), {"towards_probe_lps": (0, 0, 0)}, "non-zero"),
    ],
)
def test_bad_surface(vol, kwargs, match):
    with pytest.raises(ValueError, match=match):
        bone_surface(vol, **kwargs)


def test_missing_nifti(tmp_path):
    with pytest.raises(FileNotFoundError, match="CBCT NIfTI not found"):
        read_cbct_nifti(str(tmp_path / "x.nii.gz"))
