"""The UGE network and its gene descriptions on tiny tensors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from anndata import AnnData

from transferome.data.schema import Schema
from transferome.errors import DataValidationError
from transferome.models.uge.genes import (
    align_columns,
    describe_genes,
    descriptions_through_map,
    relative_values,
    top_by_variance,
)
from transferome.models.uge.network import UGEConfig, UGENetwork, ecs_loss


def _network(n_classes: int = 3, **changes) -> UGENetwork:
    config = UGEConfig(
        n_genes=12, n_features=5, d_model=16, n_layers=1, n_heads=2, d_ff=32, n_classes=n_classes
    )
    if changes:
        config = UGEConfig(**{**config.__dict__, **changes})
    generator = torch.Generator().manual_seed(0)
    return UGENetwork(config, torch.randn(12, 5, generator=generator))


def _batch(n: int = 6) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    tokens = torch.stack([torch.randperm(12, generator=generator)[:4] for _ in range(n)])
    return {
        "tokens": tokens,
        "values": torch.rand(n, 4, generator=generator),
        "decode_genes": torch.arange(12).expand(n, 12),
        "targets": torch.rand(n, 12, generator=generator),
        "decode_mask": torch.ones(n, 12, dtype=torch.bool),
        "label": torch.tensor([0, 1, 2, -1, -1, 0])[:n],
    }


def test_loss_components_are_finite_and_backpropagate():
    net = _network()
    out = net.loss(_batch())
    assert {"loss", "reconstruction", "ecs", "residual", "classification"} <= set(out)
    assert all(torch.isfinite(v) for v in out.values())
    out["loss"].backward()
    assert net.gene_net[0].weight.grad is not None
    assert net.classifier.weight.grad.abs().sum() > 0


def test_decode_shared_and_per_sample_genes_agree():
    net = _network().eval()
    z = torch.randn(3, 16)
    genes = torch.tensor([4, 1, 7])
    shared = net.decode(z, genes)
    per_sample = net.decode(z, genes.expand(3, 3))
    assert shared.shape == (3, 3)
    torch.testing.assert_close(shared, per_sample)


def test_new_descriptions_embed_without_residual():
    net = _network().eval()
    with torch.no_grad():
        net.residual.weight.fill_(0.5)
        table = net.gene_table()
        fresh = net.gene_table(net.descriptions)
    torch.testing.assert_close(table - fresh, torch.full_like(table, 0.5))


def test_encoder_depends_on_values_and_is_permutation_invariant():
    net = _network(dropout=0.0).eval()
    batch = _batch(2)
    with torch.no_grad():
        z = net.encode(batch["tokens"], batch["values"])
        order = torch.tensor([2, 0, 3, 1])
        z_perm = net.encode(batch["tokens"][:, order], batch["values"][:, order])
        z_other = net.encode(batch["tokens"], batch["values"] * 0.1)
    torch.testing.assert_close(z, z_perm, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(z, z_other)


def test_ecs_loss_rewards_separated_similarities():
    identical = torch.ones(4, 3)
    assert ecs_loss(torch.ones(1, 3), 0.6) == 0
    # cos = 1 everywhere -> 1 - (1 - 0.6)^2
    assert float(ecs_loss(identical, 0.6)) == pytest.approx(1 - 0.4**2)
    orthogonal = torch.eye(3)
    assert float(ecs_loss(orthogonal, 0.6)) == pytest.approx(1 - 0.6**2)


def test_mismatched_descriptions_are_rejected():
    with pytest.raises(ValueError, match="descriptions have shape"):
        UGENetwork(UGEConfig(n_genes=3, n_features=2), torch.zeros(3, 4))


def _atlas() -> AnnData:
    rows = [(c, p) for c in ("liver", "brain") for p in ("control", "drug") for _ in range(3)]
    obs = pd.DataFrame(
        rows, columns=["context", "perturbation"], index=[f"s{i}" for i in range(12)]
    )
    x = np.zeros((12, 3), dtype=np.float32)
    x[:, 0] = [1, 1, 1, 3, 3, 3, 2, 2, 2, 2, 2, 2]  # drug raises gene a in liver only
    x[:, 1] = [5] * 6 + [1] * 6  # liver-specific gene b
    x[:, 2] = np.arange(12)
    return AnnData(X=x, obs=obs, var=pd.DataFrame(index=["a", "b", "c"]))


def test_describe_genes_by_hand():
    desc = describe_genes(_atlas())
    assert list(desc.columns) == [
        "profile|brain",
        "profile|liver",
        "level",
        "reactome|brain|drug",
        "reactome|liver|drug",
    ]
    assert desc.loc["a", "reactome|liver|drug"] == pytest.approx(2.0)
    assert desc.loc["a", "reactome|brain|drug"] == pytest.approx(0.0)
    assert desc.loc["b", "profile|liver"] == pytest.approx(2.0)
    assert desc.loc["b", "level"] == pytest.approx(3.0)
    only_profile = describe_genes(_atlas(), kind="profile")
    assert list(only_profile.columns) == ["profile|brain", "profile|liver", "level"]


def test_describe_genes_errors_name_the_problem():
    adata = _atlas()
    adata.obs["perturbation"] = "control"
    with pytest.raises(DataValidationError, match="needs perturbed observations"):
        describe_genes(adata, kind="reactome")
    with pytest.raises(DataValidationError, match="'tissue'"):
        describe_genes(_atlas(), schema=Schema(context_key="tissue"))


def test_descriptions_through_map_average_partners():
    source = pd.DataFrame({"f": [1.0, 3.0, 10.0]}, index=["A", "B", "C"])
    gene_map = pd.DataFrame({"src": ["A", "B", "C"], "dst": ["x", "x", "y"], "w": [1, 1, 0]})
    out = descriptions_through_map(
        source,
        gene_map,
        ["x", "y", "z"],
        source_column="src",
        target_column="dst",
        weight_column="w",
    )
    assert out["f"].tolist() == [2.0, 0.0, 0.0]
    with pytest.raises(DataValidationError, match="'nope'"):
        descriptions_through_map(source, gene_map, ["x"], source_column="nope", target_column="dst")


def test_token_helpers():
    values = np.array([[0.0, 2.0, 4.0], [0.0, 0.0, 0.0], [1.0, 0.0, 4.0]], dtype=np.float32)
    assert top_by_variance(values.var(axis=0), 2).tolist() == [1, 2]
    assert top_by_variance(values.var(axis=0), 10).tolist() == [0, 1, 2]
    assert top_by_variance(np.array([1.0, 3.0, 3.0]), 1).tolist() == [1]  # the first on ties
    rel = relative_values(values)
    assert rel[0].tolist() == [0.0, 0.5, 1.0]
    assert rel[1].tolist() == [0.0, 0.0, 0.0]
    a = pd.DataFrame(columns=["x", "y", "z"])
    b = pd.DataFrame(columns=["z", "x"])
    assert align_columns({"m": a, "r": b}) == ["x", "z"]
    with pytest.raises(DataValidationError, match="share no column"):
        align_columns({"m": a, "r": pd.DataFrame(columns=["q"])})
