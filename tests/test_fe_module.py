"""The Factorized Embeddings network: split first layer, masked loss, blocks, frozen embedding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from transferome.models.fe.network import (
    FEBlocks,
    FEConfig,
    FEModule,
    LazyAdam,
    embed_samples,
    masked_mse,
    pca_embeddings,
)
from transferome.training import TrainingConfig


def _module(seed: int = 0, **kwargs: object) -> FEModule:
    config = FEConfig(
        **{"n_samples": 6, "n_genes": 9, "embedding_dim": 4, "hidden": (8, 5), **kwargs}
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return FEModule(config)


def test_split_first_layer_equals_the_concatenated_reference() -> None:
    module = _module(obs_factor_levels=(3,), var_factor_levels=(2,))
    module.var_factor_codes.copy_(torch.tensor([[j % 2] for j in range(9)]))
    sample, gene = torch.tensor([0, 3, 5]), torch.tensor([1, 2, 7, 8])
    obs_codes = torch.tensor([[0], [2], [1]])
    fast = module(sample, gene, obs_codes)
    # Reference design: one row per (sample, gene) pair, embeddings concatenated.
    weight = torch.cat([module.first_sample.weight, module.first_gene.weight], dim=1)
    rows = []
    for a, s in enumerate(sample):
        for g in gene:
            z = torch.cat(
                [
                    module.sample_embedding.weight[s],
                    module.obs_factor_embeddings[0].weight[obs_codes[a, 0]],
                    module.gene_embedding.weight[g],
                    module.var_factor_embeddings[0].weight[module.var_factor_codes[g, 0]],
                ]
            )
            h = torch.tanh(weight @ z + module.first_sample.bias)
            for layer in module.layers:
                h = torch.tanh(layer(h))
            rows.append(module.last(h))
    reference = torch.stack(rows).reshape(3, 4)
    torch.testing.assert_close(fast, reference)


def test_masked_mse_ignores_unobserved_entries() -> None:
    pred = torch.zeros(2, 3)
    target = torch.tensor([[1.0, 100.0, 1.0], [1.0, 1.0, -50.0]])
    mask = torch.tensor([[True, False, True], [True, True, False]])
    assert masked_mse(pred, target, mask).item() == pytest.approx(1.0)
    assert masked_mse(pred, target, torch.zeros_like(mask)).item() == 0.0
    assert masked_mse(pred, torch.ones(2, 3), None).item() == pytest.approx(1.0)


def test_blocks_cover_every_entry_once() -> None:
    values = np.arange(7 * 10, dtype=np.float32).reshape(7, 10)
    blocks = FEBlocks(values, None, np.zeros((7, 0)), sample_block=3, gene_block=4, seed=1)
    assert len(blocks) == 3 * 3
    seen = np.zeros_like(values)
    for i in range(len(blocks)):
        item = FEBlocks.collate([blocks[i]])
        rows, cols = item["sample"].numpy(), item["gene"].numpy()
        np.testing.assert_array_equal(item["x"].numpy(), values[np.ix_(rows, cols)])
        seen[np.ix_(rows, cols)] += 1
        assert "mask" not in item
    assert (seen == 1).all()
    with pytest.raises(ValueError, match="batch_size=1"):
        FEBlocks.collate([blocks[0], blocks[1]])


def test_config_validation_and_round_trip() -> None:
    config = FEConfig(n_samples=3, n_genes=4, obs_factor_levels=(2, 5), hidden=(7, 3))
    assert FEConfig.from_dict(config.to_dict()) == config
    assert config.flops_per_value() == 7 * 3 + 3
    with pytest.raises(ValueError, match="activation"):
        FEConfig(n_samples=3, n_genes=4, activation="sigmoid")
    with pytest.raises(ValueError, match="hidden"):
        FEConfig(n_samples=3, n_genes=4, hidden=())


def _low_rank(seed: int = 0, n: int = 24, m: int = 30) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, 2)) @ rng.normal(size=(2, m)) * 0.5 + 1.0).astype(np.float32)


def _train(module: FEModule, values: np.ndarray, mask: np.ndarray | None, steps: int) -> None:
    blocks = FEBlocks(values, mask, np.zeros((len(values), 0)), sample_block=8, gene_block=10)
    optimizer = LazyAdam(module.parameters(), lr=1e-2)
    for _ in range(steps):
        for i in range(len(blocks)):
            optimizer.zero_grad()
            module.loss(blocks[i])["loss"].backward()
            optimizer.step()


def test_training_steps_reduce_the_masked_loss() -> None:
    values = _low_rank()
    mask = np.random.default_rng(1).random(values.shape) > 0.2
    module = _module(n_samples=24, n_genes=30, hidden=(16, 8))
    full = FEBlocks(values, mask, np.zeros((24, 0)), sample_block=24, gene_block=30)[0]
    before = module.loss(full)["loss"].item()
    _train(module, values, mask, steps=60)
    after = module.loss(full)["loss"].item()
    assert after < 0.2 * before


def test_embed_samples_freezes_the_network_and_fits_new_rows() -> None:
    values = _low_rank(n=24)
    module = _module(n_samples=20, n_genes=30, hidden=(16, 8))
    _train(module, values[:20], None, steps=80)
    state = {k: v.clone() for k, v in module.state_dict().items()}
    new = values[20:]
    z = embed_samples(module, new, None, np.zeros((4, 0)), epochs=150, lr=5e-2)
    for key, value in module.state_dict().items():
        torch.testing.assert_close(value, state[key])  # nothing of the network moved
    assert all(p.requires_grad for p in module.parameters())
    with torch.no_grad():
        pred = module.head(
            module.sample_side(torch.as_tensor(z)), module.gene_side(torch.arange(30))
        ).numpy()
        start = module.sample_embedding.weight.mean(0, keepdim=True).expand(4, -1)
        base = module.head(module.sample_side(start), module.gene_side(torch.arange(30))).numpy()
    assert np.mean((pred - new) ** 2) < 0.5 * np.mean((base - new) ** 2)


def test_lazy_adam_matches_adam_when_every_row_is_used() -> None:
    torch.manual_seed(0)
    dense = torch.nn.Embedding(5, 3)
    sparse = torch.nn.Embedding(5, 3, sparse=True)
    sparse.weight.data.copy_(dense.weight.data)
    reference = torch.optim.Adam(dense.parameters(), lr=0.1, weight_decay=0.01)
    lazy = LazyAdam(sparse.parameters(), lr=0.1, weight_decay=0.01)
    rows = torch.tensor([0, 1, 2, 3, 4, 2])
    for step in range(4):
        target = torch.full((6, 3), float(step))
        for table, optimizer in ((dense, reference), (sparse, lazy)):
            optimizer.zero_grad()
            ((table(rows) - target) ** 2).sum().backward()
            optimizer.step()
    assert sparse.weight.grad.is_sparse
    torch.testing.assert_close(sparse.weight.data, dense.weight.data)


def test_lazy_adam_leaves_unused_rows_alone() -> None:
    table = torch.nn.Embedding(6, 2, sparse=True)
    before = table.weight.detach().clone()
    optimizer = LazyAdam(table.parameters(), lr=0.1, weight_decay=0.1)
    for _ in range(3):
        optimizer.zero_grad()
        table(torch.tensor([1, 4])).sum().backward()
        optimizer.step()
    moved = (table.weight.detach() != before).any(dim=1).tolist()
    assert moved == [False, True, False, False, True, False]


def test_pca_embeddings_reconstruct_a_low_rank_matrix() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 2)) @ rng.normal(size=(2, 12)) + rng.normal(size=12)
    samples, genes = pca_embeddings(x, None, 5, seed=0)
    assert samples.shape == (30, 5)
    assert genes.shape == (12, 5)
    assert samples.dtype == np.float32
    assert genes.dtype == np.float32
    # The first two columns carry the data: their product is the centred matrix up to scale.
    product = samples[:, :2].astype(float) @ genes[:, :2].T
    centred = x - x.mean(axis=0)
    assert abs(np.corrcoef(product.ravel(), centred.ravel())[0, 1]) > 0.999
    assert np.sqrt(np.mean(samples[:, :2] ** 2)) == pytest.approx(1.0, rel=1e-4)
    assert np.abs(samples[:, 2:]).max() < 1.0  # filler dimensions stay small
    # Unobserved entries are ignored: any value there gives the same embeddings.
    mask = rng.random(x.shape) > 0.2
    a = pca_embeddings(np.where(mask, x, 0.0), mask, 5, seed=0)
    b = pca_embeddings(np.where(mask, x, 1e6), mask, 5, seed=0)
    np.testing.assert_array_equal(a[0], b[0])
    # A constant matrix has no component: every column is filler.
    flat, _ = pca_embeddings(np.ones((4, 3)), None, 2, seed=1)
    assert np.abs(flat).max() < 1.0


def test_embedding_tables_get_their_own_learning_rate() -> None:
    module = _module()
    module.embedding_lr = 0.5
    optimizer = module.configure_optimizer(TrainingConfig(lr=1e-3))
    groups = {len(g["params"]): g["lr"] for g in optimizer.param_groups}
    tables = {id(module.sample_embedding.weight), id(module.gene_embedding.weight)}
    table_group = next(g for g in optimizer.param_groups if id(g["params"][0]) in tables)
    assert {id(p) for p in table_group["params"]} == tables
    assert table_group["lr"] == 0.5
    assert sorted(groups.values()) == [1e-3, 0.5]
    n_params = sum(len(g["params"]) for g in optimizer.param_groups)
    assert n_params == len(list(module.parameters()))
    module.embedding_lr = None
    optimizer = module.configure_optimizer(TrainingConfig(lr=1e-3))
    assert [g["lr"] for g in optimizer.param_groups] == [1e-3, 1e-3]
