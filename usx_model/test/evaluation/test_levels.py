"""evaluation.levels: a VerSe spine with its bodies labelled for the chain."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np

from usx_model.base.parts import Part
from usx_model.evaluation.levels import verse_spine_with_bodies
from usx_model.metrics.vertebra import vertebra_metrics
from usx_model.sim.scene import sample_surface


def _verse_like(tmp_path):
    """Five stacked boxes labelled 20..24 (L1 on top), RAS voxels of 1 mm, and centroids."""
    vol = np.zeros((40, 40, 150), np.uint8)
    ctd = [{"direction": ["R", "A", "S"]}]
    for k, label in enumerate(range(24, 19, -1)):  # L5 lowest
        z0 = 10 + 27 * k
        vol[8:32, 6:34, z0 : z0 + 22] = label
        ctd.append({"label": label, "X": 19.5, "Y": 19.5, "Z": z0 + 10.5})
    mask = tmp_path / "v_seg-vert_msk.nii.gz"
    nib.save(nib.Nifti1Image(vol, np.eye(4)), str(mask))
    path = tmp_path / "v_ctd.json"
    path.write_text(json.dumps(ctd))
    return str(mask), str(path)


def test_every_vertex_carries_a_part_code_the_scores_accept(tmp_path):
    spine = verse_spine_with_bodies(*_verse_like(tmp_path))
    assert spine.levels == [1, 2, 3, 4, 5]
    for vm in spine.vertebrae.values():
        codes = set(np.unique(vm.part).tolist())
        assert codes == {int(Part.BODY), int(Part.LAMINA)}  # a body in front, an arch behind
        v = np.asarray(vm.vertices_mm)
        assert v[vm.part == Part.BODY, 1].max() < v[vm.part == Part.LAMINA, 1].min() + 1e-6
        # what `usx pipeline --verse` scores with: the truth's parts must be valid codes
        gt, part = sample_surface(vm, 2000, 0)
        m = vertebra_metrics(gt, gt, 1.0, emd_points=None, gt_part=part)
        assert m["cd_l1_mm"] == 0.0
