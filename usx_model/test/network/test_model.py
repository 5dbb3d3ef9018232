"""Shapes, variants, gradients and determinism of USXComplete."""

from __future__ import annotations

import pytest
import torch

from usx_model.network.config import CompletionConfig, Variant, compact_config, paper_config
from usx_model.network.loss import completion_loss
from usx_model.network.model import USXComplete, count_parameters


def make_batch(cfg: CompletionConfig, b: int = 2, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {
        "partial": torch.randn(b, cfg.n_partial, 3, generator=g) * 0.2,
        "xray": torch.randn(b, cfg.n_xray, 3, generator=g) * 0.2,
        "gt": torch.randn(b, 100, 3, generator=g) * 0.2,
    }


@pytest.mark.parametrize("variant", list(Variant))
def test_shapes_every_variant(tiny, variant: Variant) -> None:
    cfg = tiny(variant)
    torch.manual_seed(0)
    model = USXComplete(cfg)
    batch = make_batch(cfg)
    if not variant.uses_xray:
        del batch["xray"]  # the US-only model must not need it
    out = model.train()(batch)
    n1 = cfg.n_coarse + cfg.n_partial + (cfg.n_xray if variant.late_fusion else 0)
    assert out["n_paths"] == 2
    assert out["coarse_raw"].shape == (4, cfg.n_coarse, 3)
    assert out["coarse_high"].shape == (4, n1, 3)
    assert out["fine"].shape == (4, cfg.n_out, 3)
    assert out["p_mu"].shape == out["q_sigma"].shape == (2, cfg.z_dim)
    out = model.eval()(batch)
    assert out["n_paths"] == 1 and out["fine"].shape == (2, cfg.n_out, 3)
    assert "p_mu" not in out
    # Training without GT (prior_path: false): one path, against the fixed N(0, I) prior.
    out = model.train()({k: v for k, v in batch.items() if k != "gt"})
    assert out["n_paths"] == 1 and out["fine"].shape == (2, cfg.n_out, 3)
    assert torch.equal(out["p_mu"], torch.zeros(2, cfg.z_dim))
    assert torch.equal(out["p_sigma"], torch.ones(2, cfg.z_dim))


@pytest.mark.parametrize(
    ("variant", "has_xray_encoder", "sources"),
    [("full", True, 3), ("us_only", False, 2), ("ef_only", True, 2), ("lf_only", False, 3)],
)
def test_variant_parameters(tiny, variant: str, has_xray_encoder: bool, sources: int) -> None:
    model = USXComplete(tiny(variant))
    names = list(model.state_dict())
    assert any("encoder_xray" in n for n in names) == has_xray_encoder
    assert any("fusion" in n for n in names) == has_xray_encoder
    assert model.renet.units[0].proj.in_features == 3 + sources


def test_gradient_reaches_both_encoders(tiny) -> None:
    cfg = tiny("full")
    torch.manual_seed(0)
    model = USXComplete(cfg).train()
    batch = make_batch(cfg)
    total, _ = completion_loss(model(batch), batch, epoch=10)
    total.backward()
    for enc in (model.coarse.encoder_us, model.coarse.encoder_xray):
        assert float(enc.conv1.weight.grad.abs().sum()) > 0
    assert float(model.renet.units[0].proj.weight.grad.abs().sum()) > 0


def test_eval_is_deterministic_and_training_samples(tiny) -> None:
    cfg = tiny()
    torch.manual_seed(0)
    model = USXComplete(cfg)
    batch = make_batch(cfg)
    with torch.no_grad():
        a, b = model.eval()(batch)["fine"], model(batch)["fine"]
        assert torch.equal(a, b)
        c, d = model.train()({**batch, "gt": None})["fine"], model(batch)["fine"][:2]
        assert not torch.allclose(c, d)


@pytest.mark.parametrize(
    ("variant", "xray_reaches_decoder"),
    [("full", True), ("ef_only", True), ("lf_only", False), ("us_only", False)],
)
def test_xray_reaches_coarse_decoder_without_z(tiny, variant: str, xray_reaches_decoder) -> None:
    """The reference's decoder code fixed (docs/model.md): with z held fixed, early fusion
    still changes coarse_raw."""
    cfg = tiny(variant)
    torch.manual_seed(0)
    model = USXComplete(cfg).eval()
    batch = make_batch(cfg)
    other = {**batch, "xray": make_batch(cfg, seed=1)["xray"]}
    z = torch.zeros(2, cfg.z_dim)
    with torch.no_grad():
        a = model.coarse.decode(model.coarse.encode(batch["partial"], batch["xray"])[0], z)
        b = model.coarse.decode(model.coarse.encode(other["partial"], other["xray"])[0], z)
    assert torch.allclose(a, b) != xray_reaches_decoder


def test_sample_differs_but_mean_unchanged(tiny) -> None:
    cfg = tiny()
    torch.manual_seed(0)
    model = USXComplete(cfg).eval()
    batch = make_batch(cfg)
    with torch.no_grad():
        mean = model(batch)["fine"]
        s1 = model.sample(batch, 3, torch.Generator().manual_seed(1))
        s2 = model.sample(batch, 3, torch.Generator().manual_seed(1))
        assert s1.shape == (3, 2, cfg.n_out, 3)
        assert torch.equal(s1, s2)
        assert not torch.allclose(s1[0], s1[1])
        assert torch.equal(model(batch)["fine"], mean)


@pytest.mark.parametrize("variant", [Variant.FULL, Variant.US_ONLY])
@pytest.mark.parametrize("k", [0, 1, 3])
def test_predict_is_forward_and_sample_in_one_batch(tiny, variant: Variant, k: int) -> None:
    cfg = tiny(variant)
    torch.manual_seed(0)
    model = USXComplete(cfg).eval()
    batch = make_batch(cfg, b=3)
    with torch.no_grad():
        mean, samples = model.predict(batch, k, torch.Generator().manual_seed(7))
        # K + 1 decodings in one batch: the kernels may sum in another order (1 ulp seen)
        torch.testing.assert_close(mean, model(batch)["fine"], rtol=0, atol=1e-6)
        if k == 0:
            assert samples is None
            assert torch.equal(mean, model(batch)["fine"])  # the same batch: bit for bit
        else:
            ref = model.sample(batch, k, torch.Generator().manual_seed(7))
            torch.testing.assert_close(samples, ref, rtol=0, atol=1e-6)
            assert not torch.allclose(samples[0], mean, atol=1e-3)  # samples are not the mean
        with pytest.raises(ValueError, match="n_samples: expected >= 0, got -1"):
            model.predict(batch, -1)


def test_parameter_counts() -> None:
    compact = count_parameters(USXComplete(compact_config()))
    assert 2.0e6 < compact < 3.0e6
    assert count_parameters(USXComplete(compact_config("us_only"))) < compact
    assert 25e6 < count_parameters(USXComplete(paper_config())) < 29e6


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda b: b.pop("partial"), "missing 'partial'"),
        (lambda b: b.pop("xray"), "variant 'full' needs 'xray' points"),
        (
            lambda b: b.update(partial=torch.zeros(2, 10, 3)),
            r"expected \(B, 64, 3\) float points, got \(2, 10, 3\)",
        ),
        (lambda b: b.update(xray=torch.zeros(3, 32, 3)), "expected batch size 2, got 3"),
        (
            lambda b: b["partial"].__setitem__((0, 0, 0), float("nan")),
            "expected finite float points",
        ),
    ],
    ids=["no_partial", "no_xray", "wrong_np", "batch_mismatch", "nan"],
)
def test_bad_batch(tiny, edit, match) -> None:
    cfg = tiny()
    model = USXComplete(cfg).eval()
    batch = make_batch(cfg)
    edit(batch)
    with pytest.raises(ValueError, match=match):
        model(batch)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"renet_widths": (32, 64, 96, 256)}, "each doubling"),
        ({"renet_widths": (16, 32, 64, 128)}, "multiple of 32"),
        ({"renet_points": (16, 24, 8)}, "3 decreasing counts"),
        ({"n_out": 1000}, "exceeds the RENet input size"),
        ({"dropout": 1.0}, "dropout"),
        ({"up_ratio": 5}, "up_ratio: expected a divisor of n_out=96"),
        ({"up_ratio": 0}, "up_ratio: expected a divisor"),
        ({"variant": "both"}, "'both' is not a valid Variant"),
    ],
)
def test_bad_config(tiny, kw, match) -> None:
    with pytest.raises(ValueError, match=match):
        tiny(**kw)


def test_config_dict_round_trip(tiny) -> None:
    cfg = tiny("lf_only")
    assert CompletionConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match=r"unknown keys \['bogus'\]"):
        CompletionConfig.from_dict({**cfg.to_dict(), "bogus": 1})


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu(tiny) -> None:
    cfg = tiny()
    torch.manual_seed(0)
    model = USXComplete(cfg).eval()
    batch = make_batch(cfg)
    with torch.no_grad():
        cpu = model(batch)["coarse_raw"]
        gpu = model.cuda()({k: v.cuda() for k, v in batch.items()})["coarse_raw"]
    torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-4, rtol=1e-4)


def test_local_folding_children_surround_their_centre() -> None:
    from usx_model.network.renet import LocalFolding

    fold = LocalFolding(in_dim=5, ratio=4)
    xyz = torch.randn(2, 7, 3)
    feat = torch.randn(2, 7, 5)
    with torch.no_grad():
        fold.mlp[-1].weight.zero_()
        fold.mlp[-1].bias.copy_(torch.tensor([0.1, 0.0, 0.0]))
    out = fold(xyz, feat)
    assert out.shape == (2, 28, 3)
    # Zero weights: every child is its centre plus the bias, children adjacent per centre.
    want = (xyz + torch.tensor([0.1, 0.0, 0.0]))[:, :, None, :].expand(-1, -1, 4, -1)
    torch.testing.assert_close(out, want.reshape(2, 28, 3))
    assert torch.unique(fold.grid, dim=0).shape == (4, 2)


def test_folding_sets_output_count(tiny) -> None:
    for ratio in (1, 2, 4):
        cfg = tiny(n_out=96, up_ratio=ratio)
        model = USXComplete(cfg).eval()
        out = model(make_batch(cfg))
        assert out["fine"].shape == (2, 96, 3)
        assert (model.folding is None) == (ratio == 1)


def test_a_vertebras_samples_do_not_depend_on_its_batch(tiny) -> None:
    """The same draws for every vertebra: alone, second of two, or with the order swapped,
    a vertebra decodes the same samples (up to float rounding in larger batches)."""
    cfg = tiny()
    torch.manual_seed(0)
    model = USXComplete(cfg).eval()
    batch = make_batch(cfg, b=2)
    alone = {k: v[1:2] for k, v in batch.items() if k != "gt"}
    swapped = {k: v.flip(0) for k, v in batch.items() if k != "gt"}
    with torch.no_grad():
        both = model.sample(batch, 2, torch.Generator().manual_seed(5))
        one = model.sample(alone, 2, torch.Generator().manual_seed(5))
        flipped = model.sample(swapped, 2, torch.Generator().manual_seed(5))
    torch.testing.assert_close(both[:, 1], one[:, 0], rtol=0, atol=1e-5)
    torch.testing.assert_close(both[:, 1], flipped[:, 0], rtol=0, atol=1e-5)
    assert not torch.allclose(both[0, 1], both[1, 1], atol=1e-3)  # two different draws
