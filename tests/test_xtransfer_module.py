"""XTransferCDR network: each loss on hand-computed tensors, switches and the forward pass."""

from __future__ import annotations

import math

import pytest
import torch

from transferome.models.xtransfer.network import (
    XTransferConfig,
    XTransferModule,
    cross_loss,
    orth_loss,
    pair_mse,
    reco_control_loss,
    reco_loss,
    sim_loss,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def test_orth_loss_by_hand():
    s = torch.tensor([[1.0, 0.0], [1.0, 2.0]])
    p = torch.tensor([[0.0, 3.0], [2.0, 1.0]])
    # dot products 0 and 4 -> mean of squares (0 + 16) / 2
    assert orth_loss(s, p).item() == pytest.approx(8.0)


def test_sim_loss_by_hand():
    s_a = torch.tensor([[0.0, 0.0]])
    s_b = torch.tensor([[math.log(3.0), 0.0]])
    # softmax(s_a) = (1/2, 1/2), softmax(s_b) = (3/4, 1/4); KL(b || a)
    expected = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    assert sim_loss(s_a, s_b).item() == pytest.approx(expected, rel=1e-6)
    assert sim_loss(s_b, s_b).item() == pytest.approx(0.0, abs=1e-7)
    # averaged over the batch, not summed
    both = sim_loss(torch.cat([s_a, s_b]), torch.cat([s_b, s_b]))
    assert both.item() == pytest.approx(expected / 2, rel=1e-5)


def test_reconstruction_losses_by_hand():
    pred_a = torch.tensor([[1.0, 2.0]])
    x_a = torch.tensor([[0.0, 0.0]])
    pred_b = torch.tensor([[3.0, 3.0]])
    x_b = torch.tensor([[3.0, 1.0]])
    # (1 + 4) / 2 + (0 + 4) / 2
    for fn in (pair_mse, reco_control_loss, reco_loss, cross_loss):
        assert fn(pred_a, x_a, pred_b, x_b).item() == pytest.approx(4.5)


def _batch(n=6, g=10, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return {k: torch.rand(n, g, generator=gen) for k in ("x_a", "x_b", "control_a", "control_b")}


def test_loss_components_and_total():
    torch.manual_seed(0)
    cfg = XTransferConfig(n_genes=10, hidden=(8,), latent_dim=4, dropout=0.0, w_sim=2.0)
    module = XTransferModule(cfg).eval()
    out = module.loss(_batch())
    assert set(out) == {"loss", "sim", "orth", "reco_control", "reco", "cross"}
    manual = 2.0 * out["sim"] + out["orth"] + out["reco_control"] + out["reco"] + out["cross"]
    assert out["loss"].item() == pytest.approx(manual.item(), rel=1e-6)
    # in eval mode the components match the named functions on the decoded profiles
    fwd = module(_batch())
    x = _batch()
    assert out["cross"].item() == pytest.approx(
        cross_loss(fwd["d_ba"], x["x_a"], fwd["d_ab"], x["x_b"]).item(), rel=1e-6
    )
    assert out["orth"].item() == pytest.approx(
        (orth_loss(fwd["s_a"], fwd["p_a"]) + orth_loss(fwd["s_b"], fwd["p_b"])).item(), rel=1e-6
    )


@pytest.mark.parametrize("off", ["w_sim", "w_orth", "w_cross", "w_reco_control"])
def test_switched_off_terms_are_zero_and_have_no_gradient(off):
    cfg = XTransferConfig(n_genes=10, hidden=(8,), latent_dim=4, **{off: 0.0})
    module = XTransferModule(cfg)
    out = module.loss(_batch())
    assert out[off[2:]].item() == 0.0
    out["loss"].backward()
    assert all(torch.isfinite(p.grad).all() for p in module.parameters() if p.grad is not None)


def test_noise_only_in_training_and_shapes():
    cfg = XTransferConfig(
        n_genes=10, hidden=(16, 8), latent_dim=4, n_residual=2, input_noise=0.5, latent_noise=0.5
    )
    module = XTransferModule(cfg).eval()
    x = torch.rand(5, 10)
    s1, p1 = module.encode(x)
    s2, p2 = module.encode(x)
    assert s1.shape == (5, 4)
    assert torch.equal(s1, s2)
    assert torch.equal(p1, p2)
    assert (s1 >= 0).all()  # ReLU latents
    assert module.predict_from_latents(s1, p1).shape == (5, 10)
    module.train()
    assert not torch.equal(module.encode(x)[0], module.encode(x)[0])
    assert sum(isinstance(m, torch.nn.Module) for m in module.encoder_s) >= 10


def test_training_steps_lower_the_loss():
    torch.manual_seed(0)
    cfg = XTransferConfig(n_genes=10, hidden=(32,), latent_dim=8, dropout=0.0)
    module = XTransferModule(cfg)
    batch = _batch(n=32)
    opt = torch.optim.Adam(module.parameters(), lr=1e-2)
    first = module.loss(batch)["loss"].item()
    for _ in range(100):
        opt.zero_grad()
        loss = module.loss(batch)["loss"]
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * first


def test_config_round_trip_and_validation():
    cfg = XTransferConfig(n_genes=7, hidden=(5, 3), w_orth=0.0)
    assert XTransferConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="dropout"):
        XTransferConfig(n_genes=7, dropout=1.5)
    with pytest.raises(ValueError, match="w_cross"):
        XTransferConfig(n_genes=7, w_cross=-1.0)
