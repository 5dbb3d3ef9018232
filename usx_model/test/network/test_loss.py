"""The training loss against a manual recomputation; schedules."""

from __future__ import annotations

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from usx_model.network.coarse import Gaussian
from usx_model.network.coarse import kl_divergence as our_kl
from usx_model.network.loss import LossSchedule, compact_schedule, completion_loss, paper_schedule
from usx_model.network.model import USXComplete
from usx_model.ops.chamfer import chamfer_distance


@pytest.mark.parametrize(
    ("epoch", "alpha", "beta"),
    [(0, 0.01, 20.0), (4, 0.01, 20.0), (5, 0.1, 20.0), (29, 0.5, 20.0), (30, 1.0, 20.0)],
)
def test_paper_schedule(epoch: int, alpha: float, beta: float) -> None:
    s = paper_schedule()
    assert s.alpha(epoch) == alpha and s.beta(epoch) == beta


@pytest.mark.parametrize(
    ("epoch", "alpha", "beta"), [(0, 0.01, 10.0), (1, 0.1, 20.0), (3, 0.5, 20.0), (4, 1.0, 20.0)]
)
def test_compact_schedule(epoch: int, alpha: float, beta: float) -> None:
    s = compact_schedule()
    assert s.alpha(epoch) == alpha and s.beta(epoch) == beta


def test_bad_schedule() -> None:
    with pytest.raises(ValueError, match="alpha_values: expected 3 values"):
        LossSchedule(alpha_epochs=(1, 2), alpha_values=(0.1,))


def test_kl_matches_torch() -> None:
    g = torch.Generator().manual_seed(0)
    p = Gaussian(torch.randn(3, 5, generator=g), torch.rand(3, 5, generator=g) + 0.1)
    q = Gaussian(torch.randn(3, 5, generator=g), torch.rand(3, 5, generator=g) + 0.1)
    ref = kl_divergence(Normal(p.mu, p.sigma), Normal(q.mu, q.sigma)).mean()
    torch.testing.assert_close(our_kl(p, q), ref)


def test_total_matches_manual(tiny) -> None:
    cfg = tiny()
    torch.manual_seed(0)
    model = USXComplete(cfg).train()
    batch = {
        "partial": torch.randn(2, cfg.n_partial, 3) * 0.2,
        "xray": torch.randn(2, cfg.n_xray, 3) * 0.2,
        "gt": torch.randn(2, 80, 3) * 0.2,
    }
    out = model(batch)
    total, parts = completion_loss(out, batch, epoch=7)  # α = 0.1, β = 20
    gt2 = batch["gt"].repeat(2, 1, 1)
    cd = {
        k: chamfer_distance(out[k], gt2).cd_p.mean() for k in ("coarse_raw", "coarse_high", "fine")
    }
    p = Normal(out["p_mu"], out["p_sigma"])
    kl_rec = kl_divergence(Normal(torch.zeros_like(out["p_mu"]), 1.0), p).mean()
    kl_g = kl_divergence(
        Normal(out["p_mu"].detach(), out["p_sigma"].detach()), Normal(out["q_mu"], out["q_sigma"])
    ).mean()
    manual = (
        10 * cd["coarse_raw"] + 0.5 * cd["coarse_high"] + 1.1 * cd["fine"] + 20 * (kl_rec + kl_g)
    )
    torch.testing.assert_close(total, manual)
    assert parts["alpha"] == 0.1 and parts["total"] == pytest.approx(
        float(manual.detach()), rel=1e-5
    )
    assert parts["kl_g"] == pytest.approx(float(kl_g.detach()), rel=1e-5)


def test_posterior_only_kl_is_against_the_standard_normal(tiny) -> None:
    cfg = tiny()
    torch.manual_seed(0)
    model = USXComplete(cfg).train()
    obs = {
        "partial": torch.randn(2, cfg.n_partial, 3) * 0.2,
        "xray": torch.randn(2, cfg.n_xray, 3) * 0.2,
    }
    out = model(obs)  # no GT: the posterior path alone
    _, parts = completion_loss(out, {**obs, "gt": torch.randn(2, 80, 3) * 0.2}, epoch=7)
    ref = kl_divergence(Normal(0.0, 1.0), Normal(out["q_mu"], out["q_sigma"])).mean()
    assert parts["kl_rec"] == 0.0
    assert parts["kl_g"] == pytest.approx(float(ref.detach()), rel=1e-5) and parts["kl_g"] > 0


def test_eval_outputs_have_no_kl(tiny) -> None:
    cfg = tiny()
    model = USXComplete(cfg).eval()
    batch = {
        "partial": torch.randn(1, 64, 3),
        "xray": torch.randn(1, 32, 3),
        "gt": torch.randn(1, 50, 3),
    }
    _, parts = completion_loss(model(batch), batch, epoch=0)
    assert parts["kl_rec"] == 0.0 and parts["kl_g"] == 0.0


def test_missing_gt(tiny) -> None:
    model = USXComplete(tiny()).eval()
    batch = {"partial": torch.randn(1, 64, 3), "xray": torch.randn(1, 32, 3)}
    with pytest.raises(ValueError, match="the loss needs 'gt'"):
        completion_loss(model(batch), batch, epoch=0)
