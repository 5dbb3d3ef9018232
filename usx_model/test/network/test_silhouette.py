"""The X-ray silhouette feature: beam direction, projection, invariance along the beam."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from usx_model.network.config import Variant
from usx_model.network.model import USXComplete
from usx_model.network.silhouette import SilhouetteEncoder, beam_directions, project_along
from usx_model.train.config import TrainConfig


def planar_xray(normal: np.ndarray, n: int = 200, seed: int = 0) -> torch.Tensor:
    """(1, n, 3) points of an ellipse-filled patch on the plane through (0.1, 0.2, 0.3)
    whose normal is ``normal``."""
    rng = np.random.default_rng(seed)
    normal = normal / np.linalg.norm(normal)
    u = np.cross(normal, [0.0, 0.0, 1.0] if abs(normal[2]) < 0.9 else [1.0, 0.0, 0.0])
    u /= np.linalg.norm(u)
    v = np.cross(normal, u)
    a, b = rng.uniform(-1, 1, (2, n))
    pts = 0.6 * a[:, None] * u + 0.4 * b[:, None] * v + [0.1, 0.2, 0.3]
    return torch.from_numpy(pts[None]).float()


@pytest.mark.parametrize(
    "normal",
    [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.3, -0.2, 0.9], [-1.0, 1.0, 1.0]],
    ids=["x", "y", "oblique", "diagonal"],
)
def test_beam_direction_is_the_plane_normal(normal) -> None:
    want = np.asarray(normal) / np.linalg.norm(normal)
    got = beam_directions(planar_xray(np.asarray(normal)))[0].numpy()
    assert abs(abs(float(got @ want)) - 1.0) < 1e-5  # sign is arbitrary
    assert abs(np.linalg.norm(got) - 1.0) < 1e-5


def test_projection_lands_on_the_plane_and_is_idempotent() -> None:
    normal = torch.tensor([[0.0, 0.6, 0.8]])
    pts = torch.randn(1, 50, 3)
    proj = project_along(pts, normal)
    assert torch.allclose(proj @ normal[0], torch.zeros(1, 50), atol=1e-6)
    assert torch.allclose(project_along(proj, normal), proj, atol=1e-6)
    # only the component along the normal goes: in-plane coordinates are kept
    in_plane = torch.tensor([1.0, 0.0, 0.0])
    assert torch.allclose(proj @ in_plane, pts @ in_plane, atol=1e-6)


def test_feature_ignores_position_along_the_beam_only() -> None:
    torch.manual_seed(0)
    enc = SilhouetteEncoder(out_dim=8, k=6)
    normal = Rotation.from_euler("xyz", [10, 20, 30], degrees=True).apply([1.0, 0.0, 0.0])
    xray = planar_xray(normal)
    pts = torch.randn(1, 40, 3) * 0.5
    beam = torch.from_numpy(normal).float()
    base = enc(pts, xray)
    assert base.shape == (1, 40, 8)
    # a point moved along the beam is the same ray through the patient: same feature
    shifted = pts + torch.linspace(-2, 2, 40)[None, :, None] * beam
    assert torch.allclose(enc(shifted, xray), base, atol=1e-5)
    # a point moved across the beam sees another part of the silhouette
    across = project_along(torch.randn(1, 40, 3), beam[None])
    moved = pts + 0.3 * across / across.norm(dim=2, keepdim=True)
    assert (enc(moved, xray) - base).abs().amax(dim=2).gt(1e-3).all()


def test_xray_point_order_changes_nothing() -> None:
    torch.manual_seed(1)
    enc = SilhouetteEncoder(out_dim=4, k=4)
    xray = planar_xray(np.array([1.0, 0.0, 0.0]))
    pts = torch.randn(2, 30, 3)
    a = enc(pts, xray.expand(2, -1, -1))
    b = enc(pts, xray.flip(1).expand(2, -1, -1))  # another point order, same plane
    assert torch.allclose(a, b, atol=1e-6)


def test_model_with_silhouette(tiny) -> None:
    cfg = tiny("full", silhouette_dim=6)
    assert cfg.n_point_features == 3 + 6
    torch.manual_seed(0)
    model = USXComplete(cfg).eval()
    assert model.renet.units[0].proj.in_features == 3 + 3 + 6
    g = torch.Generator().manual_seed(0)
    batch = {
        "partial": torch.randn(2, cfg.n_partial, 3, generator=g) * 0.2,
        "xray": torch.cat(
            [torch.zeros(2, cfg.n_xray, 1), torch.randn(2, cfg.n_xray, 2, generator=g) * 0.3], 2
        ),
    }
    fine = model(batch)["fine"]
    assert fine.shape == (2, cfg.n_out, 3)
    # the silhouette encoder receives gradient through the refinement
    model.train()(batch)["fine"].square().mean().backward()
    assert model.silhouette.mlp[0].weight.grad.abs().sum() > 0


@pytest.mark.parametrize(
    ("variant", "kw", "match"),
    [
        ("us_only", {"silhouette_dim": 8}, "variant 'us_only' gives RENet no X-ray"),
        ("ef_only", {"silhouette_dim": 8}, "variant 'ef_only' gives RENet no X-ray"),
        ("full", {"silhouette_dim": -1}, "silhouette_dim: expected >= 0, got -1"),
    ],
)
def test_bad_silhouette_config(tiny, variant, kw, match) -> None:
    with pytest.raises(ValueError, match=match):
        tiny(variant, **kw)


def test_config_dict_keeps_old_files_identical(tiny) -> None:
    off = tiny("full")
    assert "silhouette_dim" not in off.to_dict()  # same dict as before the field existed
    on = tiny("lf_only", silhouette_dim=4)
    assert on.to_dict()["silhouette_dim"] == 4
    assert type(off).from_dict(on.to_dict()) == on
    assert type(off).from_dict(off.to_dict()) == off


@pytest.mark.parametrize(
    ("variant", "want"),
    [(Variant.FULL, 16), (Variant.LF_ONLY, 16), (Variant.EF_ONLY, 0), (Variant.US_ONLY, 0)],
)
def test_one_train_file_serves_every_variant(variant, want) -> None:
    cfg = TrainConfig(data="x.h5", variant=variant.value, model={"silhouette_dim": 16})
    net = cfg.network_config()
    assert net.silhouette_dim == want
    if want == 0:
        # the baseline's network is exactly the one trained without the setting
        assert net == TrainConfig(data="x.h5", variant=variant.value).network_config()
