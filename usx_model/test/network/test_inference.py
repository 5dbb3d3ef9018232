"""complete(): frames, determinism, uncertainty, resampling and input validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from usx_model.network.inference import complete, sample_spread
from usx_model.network.model import USXComplete
from usx_model.network.prepare import prepare_observations, resample


@pytest.fixture
def model(tiny):
    torch.manual_seed(0)
    return USXComplete(tiny())


def clouds(seed: int = 0):
    rng = np.random.default_rng(seed)
    us = [rng.normal(size=(n, 3)) * [30, 5, 15] + [0, 40, -35 * i] for i, n in enumerate((200, 90))]
    xr = [rng.normal(size=(n, 3)) * [1, 15, 12] + [0, 0, -35 * i] for i, n in enumerate((50, 20))]
    return us, xr


def test_shapes_frame_and_determinism(model) -> None:
    us, xr = clouds()
    a = complete(us, xr, ["L1", "L2"], model, n_samples=3)
    b = complete(us, xr, ["L1", "L2"], model, n_samples=3)
    assert a.points_mm.shape == (2, model.config.n_out, 3)
    assert a.uncertainty_mm.shape == (2, model.config.n_out)
    np.testing.assert_array_equal(a.points_mm, b.points_mm)
    np.testing.assert_array_equal(a.uncertainty_mm, b.uncertainty_mm)
    assert (a.uncertainty_mm >= 0).all() and a.uncertainty_mm.max() > 0
    # Output is in the input frame: a translation of the input translates the output.
    shift = np.array([100.0, -20.0, 5.0])
    c = complete([u + shift for u in us], [x + shift for x in xr], ["L1", "L2"], model, n_samples=0)
    np.testing.assert_allclose(c.points_mm, a.points_mm + shift, atol=1e-3)
    assert c.uncertainty_mm is None


def test_array_input_and_us_only(tiny) -> None:
    torch.manual_seed(0)
    model = USXComplete(tiny("us_only"))
    us, _ = clouds()
    arr = np.stack([us[0][:90], us[1]])
    out = complete(arr, None, [1, 2], model, n_samples=0)
    assert out.points_mm.shape == (2, model.config.n_out, 3)


def test_sample_spread_matches_loop() -> None:
    g = torch.Generator().manual_seed(0)
    mean, samples = torch.randn(2, 5, 3, generator=g), torch.randn(3, 2, 7, 3, generator=g)
    got = sample_spread(mean, samples)
    for b in range(2):
        for i in range(5):
            ref = np.mean(
                [torch.cdist(mean[b, i : i + 1], samples[k, b]).min().item() for k in range(3)]
            )
            assert float(got[b, i]) == pytest.approx(ref, rel=1e-5)


def test_resample_small_cloud_repeats_every_point() -> None:
    pts = np.random.default_rng(0).normal(size=(20, 3))
    out = resample([pts], 50)[0]
    assert out.shape == (50, 3)
    np.testing.assert_array_equal(np.unique(out, axis=0), np.unique(pts, axis=0))


def test_gt_never_enters_normalisation() -> None:
    us, xr = clouds()
    obs = prepare_observations(us, xr, 64, 32, True)
    np.testing.assert_allclose(obs.normalisers[0].centre_mm, resample([us[0]], 64)[0].mean(0))
    assert obs.partial.shape == (2, 64, 3) and obs.xray.shape == (2, 32, 3)
    assert obs.partial.dtype == torch.float32


def _bad(kind: str):
    us, xr = clouds()
    if kind == "empty":
        us[1] = np.zeros((0, 3))
    elif kind == "nan":
        us[0][3, 1] = np.nan
    elif kind == "few":
        us[1] = us[1][:10]
    elif kind == "shape":
        us[0] = us[0][:, :2]
    elif kind == "xray_missing":
        xr[1] = None
    elif kind == "xray_none":
        xr = None
    elif kind == "xray_few":
        xr[0] = xr[0][:3]
    return us, xr


@pytest.mark.parametrize(
    ("kind", "levels", "match"),
    [
        ("empty", ["L1", "L2"], "L2: US cloud: empty cloud"),
        ("nan", ["L1", "L2"], "L1: US cloud: 1 points are NaN/Inf"),
        ("few", ["L1", "L2"], "L2: US cloud: expected at least 16 points, got 10"),
        ("shape", ["L1", "L2"], r"L1: US cloud: expected \(N, 3\) float points, got \(200, 2\)"),
        ("xray_missing", ["L1", "L2"], "L2: the model needs X-ray points, got None"),
        ("xray_none", ["L1", "L2"], "the model needs 2 X-ray clouds, got None"),
        ("xray_few", ["L1", "L2"], "L1: X-ray cloud: expected at least 16 points, got 3"),
        ("ok", ["L1"], "levels: expected 2 entries"),
    ],
)
def test_bad_input(model, kind: str, levels, match: str) -> None:
    us, xr = _bad(kind)
    with pytest.raises(ValueError, match=match):
        complete(us, xr, levels, model)


def test_bad_container_and_samples(model) -> None:
    with pytest.raises(ValueError, match=r"expected \(B, N, 3\) array"):
        complete(np.zeros((5, 3)), None, ["L1"], model)
    with pytest.raises(ValueError, match="us_points_mm: expected at least one vertebra"):
        complete([], [], [], model)
    with pytest.raises(ValueError, match="n_samples: expected >= 0"):
        complete(*clouds(), ["L1", "L2"], model, n_samples=-1)
