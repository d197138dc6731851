"""The training engine: configuration, data loading, fitting, early stopping, reproducibility."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from anndata import AnnData

from transferome.training import (
    AnnDataRows,
    IndexBatchSampler,
    LossError,
    TensorRows,
    TrainingConfig,
    TrainingConfigError,
    fit_module,
)


class AutoEncoder(torch.nn.Module):
    """A tiny module following the engine's contract, with dropout to exercise randomness."""

    def __init__(self, n_genes: int = 12, hidden: int = 6, dropout: float = 0.0, seed: int = 0):
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.encoder = torch.nn.Linear(n_genes, hidden)
        self.decoder = torch.nn.Linear(hidden, n_genes)
        self.dropout = torch.nn.Dropout(dropout)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=generator) * 0.3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.dropout(torch.relu(self.encoder(x))))

    def loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        x = batch["x"]
        reco = ((self(x) - x) ** 2).mean()
        penalty = self.encoder.weight.pow(2).mean()
        return {"loss": reco + 0.01 * penalty, "reco": reco, "penalty": penalty}


def make_adata(
    n_obs: int = 96, n_genes: int = 12, seed: int = 0, *, sparse: bool = True
) -> AnnData:
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(n_obs, 3))
    values = np.maximum(latent @ rng.normal(size=(3, n_genes)), 0).astype(np.float32)
    adata = AnnData(sp.csr_matrix(values) if sparse else values)
    adata.layers["doubled"] = values * 2
    adata.obs["batch_code"] = np.arange(n_obs) % 3
    return adata


def small_config(**changes: object) -> TrainingConfig:
    return TrainingConfig(max_epochs=3, batch_size=16, lr=1e-2, accelerator="cpu").replace(
        **changes
    )


def weights(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


# ------------------------------------------------------------------ config
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_epochs", -1),
        ("batch_size", 0),
        ("lr", 0.0),
        ("weight_decay", -1e-3),
        ("early_stopping", 0),
        ("validation_fraction", 1.0),
        ("lr_step_size", 0),
        ("accelerator", "quantum"),
        ("devices", 0),
        ("devices", True),
        ("random_state", 1.5),
        ("gradient_clip", -1.0),
        ("precision", "fp8"),
    ],
)
def test_config_rejects_bad_values_naming_the_field(field: str, value: object) -> None:
    with pytest.raises(TrainingConfigError, match=field):
        TrainingConfig(**{field: value})


def test_config_round_trips_through_a_dict() -> None:
    config = TrainingConfig(max_epochs=7, early_stopping=2, precision="bf16-mixed")
    assert TrainingConfig.from_dict(config.to_dict()) == config
    with pytest.raises(TrainingConfigError, match="unknown"):
        config.replace(epochs=3)


# -------------------------------------------------------------------- data
@pytest.mark.parametrize("sparse", [True, False])
def test_anndata_rows_items_and_batches_match_the_matrix(*, sparse: bool) -> None:
    adata = make_adata(sparse=sparse)
    dense = adata.X.toarray() if sparse else adata.X
    rows = AnnDataRows(adata, obs_columns={"batch_code": adata.obs["batch_code"].to_numpy()})
    item = rows[5]
    assert item["x"].dtype == torch.float32
    assert item["x"].shape == (adata.n_vars,)
    np.testing.assert_array_equal(item["x"].numpy(), dense[5])
    assert int(item["index"]) == 5
    assert int(item["batch_code"]) == 5 % 3
    index = np.array([7, 2, 2, 40, 0])
    batch = rows[index]
    np.testing.assert_array_equal(batch["x"].numpy(), dense[index])
    np.testing.assert_array_equal(batch["index"].numpy(), index)
    assert batch["batch_code"].dtype == torch.int64


def test_anndata_rows_reads_a_layer_and_leaves_the_adata_untouched() -> None:
    adata = make_adata()
    before = adata.X.copy()
    rows = AnnDataRows(adata, layer="doubled")
    rows[np.arange(10)]["x"].mul_(0)  # batches are copies, not views of the data
    np.testing.assert_array_equal(rows[3]["x"].numpy(), adata.layers["doubled"][3])
    assert (before != adata.X).nnz == 0


def test_anndata_rows_backed_h5ad_matches_in_memory(tmp_path) -> None:
    import anndata

    adata = make_adata(n_obs=300)
    path = tmp_path / "cells.h5ad"
    adata.write_h5ad(path)
    backed = anndata.read_h5ad(path, backed="r")
    try:
        rows = AnnDataRows(backed, chunk_size=64, cache_chunks=2)
        assert rows.backed
        assert rows.chunk_size == 64
        for index in (np.array([299, 3, 150, 3]), np.arange(20, 60), np.array([0, 290, 128])):
            np.testing.assert_array_equal(rows[index]["x"].numpy(), adata.X[index].toarray())
        assert len(rows._cache) <= 2
        model = AutoEncoder()
        result = fit_module(model, rows, config=small_config(max_epochs=2, batch_size=32))
        assert len(result.history) == 2
    finally:
        backed.file.close()


@pytest.mark.parametrize("dense", [False, True])
def test_anndata_rows_of_a_view_of_an_on_disk_file_read_its_own_rows(tmp_path, dense) -> None:
    from transferome.data import read_h5ad

    adata = make_adata(n_obs=600)
    if dense:
        adata.X = adata.X.toarray()
    path = tmp_path / "cells.h5ad"
    adata.write_h5ad(path)
    on_disk = read_h5ad(path, backed=True)
    keep = np.flatnonzero(np.arange(600) % 3 != 1)
    cols = np.arange(2, adata.n_vars)
    view = on_disk[keep][:, cols]
    expected = np.asarray(adata.X[keep][:, cols].todense() if not dense else adata.X[keep][:, cols])
    rows = AnnDataRows(view, chunk_size=64, cache_chunks=2)
    assert rows.backed
    assert rows.n_vars == cols.size
    rng = np.random.default_rng(0)
    # whole chunks (contiguous rows), scattered rows read in one go, repeats, any order
    for index in (
        np.arange(30, 200),
        rng.choice(keep.size, 25, replace=False),
        np.array([7, 7, 0]),
    ):
        np.testing.assert_array_equal(rows[index]["x"].numpy(), expected[index])
    assert len(rows._cache) <= 2


def test_anndata_rows_errors_name_the_problem() -> None:
    adata = make_adata()
    with pytest.raises(Exception, match="layer 'missing'"):
        AnnDataRows(adata, layer="missing")
    with pytest.raises(Exception, match="obs_columns\\['short'\\]"):
        AnnDataRows(adata, obs_columns={"short": np.arange(3)})
    with pytest.raises(Exception, match="dtype"):
        AnnDataRows(adata, obs_columns={"label": np.array(["a"] * adata.n_obs)})
    with pytest.raises(IndexError):
        AnnDataRows(adata)[adata.n_obs]


def test_tensor_rows_checks_lengths_and_slices_batches() -> None:
    rows = TensorRows(a=torch.arange(10), b=np.ones((10, 2)))
    assert rows[np.array([1, 3])]["a"].tolist() == [1, 3]
    with pytest.raises(Exception, match="different numbers of rows"):
        TensorRows(a=torch.arange(3), b=torch.arange(4))


def test_sampler_shards_reproduce_the_single_process_batches() -> None:
    single = IndexBatchSampler(50, 8, shuffle=True, seed=3)
    shards = [
        IndexBatchSampler(50, 4, shuffle=True, seed=3, num_replicas=2, rank=r) for r in (0, 1)
    ]
    for epoch in (0, 1):
        for s in (single, *shards):
            s.set_epoch(epoch)
        merged = [np.concatenate(pair) for pair in zip(*shards, strict=True)]
        expected = list(single)
        assert len(merged) == len(expected) == len(shards[0])
        for got, want in zip(merged, expected, strict=True):
            np.testing.assert_array_equal(got, want)
    single.set_epoch(0)
    first = np.concatenate(list(single))
    single.set_epoch(1)
    assert sorted(first) == list(range(50))
    assert not np.array_equal(first, np.concatenate(list(single)))


def test_chunked_sampler_covers_every_row_once_in_local_batches() -> None:
    sampler = IndexBatchSampler(1000, 32, shuffle=True, seed=0, chunk_size=16)
    batches = list(sampler)
    assert sorted(np.concatenate(batches).tolist()) == list(range(1000))
    chunks_per_batch = [len(np.unique(b // 16)) for b in batches]
    # Rows of a batch come from one group of 4 chunks, or two where a batch straddles groups
    # (a free shuffle would touch ~25 of the 63 chunks).
    assert np.median(chunks_per_batch) <= 4
    assert max(chunks_per_batch) <= 8
    assert len({tuple(b[:4]) for b in batches}) == len(batches)


# --------------------------------------------------------------------- fit
def test_fit_lowers_the_loss_and_records_every_component() -> None:
    adata = make_adata()
    module = AutoEncoder()
    result = fit_module(
        module, AnnDataRows(adata), AnnDataRows(adata[:32]), config=small_config(max_epochs=6)
    )
    history = result.history
    assert isinstance(history, pd.DataFrame)
    assert list(history["epoch"]) == list(range(6))
    expected = {"train_loss", "val_loss", "train_reco", "val_reco", "train_penalty", "lr"}
    assert expected <= set(history.columns)
    assert history["train_loss"].iloc[-1] < history["train_loss"].iloc[0]
    assert np.isfinite(history[["train_loss", "val_loss", "seconds"]].to_numpy()).all()
    assert result.best_epoch == int(history["val_loss"].idxmin())
    assert not result.stopped_early


def test_best_weights_are_restored_and_early_stopping_stops() -> None:
    adata = make_adata()
    train, val = AnnDataRows(adata[:64]), AnnDataRows(adata[64:])
    module = AutoEncoder()
    # A huge learning rate makes the validation loss rise after the first epochs.
    config = small_config(max_epochs=30, lr=0.5, early_stopping=2)
    result = fit_module(module, train, val, config=config)
    history = result.history
    assert result.stopped_early
    assert len(history) == result.best_epoch + 3  # best epoch, then two without improvement
    module.eval()
    with torch.no_grad():
        val_loss = module.loss(val[np.arange(len(val))])["loss"].item()
    assert val_loss == pytest.approx(history["val_loss"].min(), rel=1e-5)


def test_step_lr_schedule_and_custom_optimizer() -> None:
    adata = make_adata()
    result = fit_module(
        AutoEncoder(), AnnDataRows(adata), config=small_config(max_epochs=5, lr_step_size=2)
    )
    assert result.history["lr"].tolist() == pytest.approx([1e-2, 1e-2, 5e-3, 5e-3, 2.5e-3])
    assert result.best_epoch == 4  # no validation set: the last epoch is kept

    class SGDModule(AutoEncoder):
        def configure_optimizer(self, config: TrainingConfig) -> torch.optim.Optimizer:
            return torch.optim.SGD(self.parameters(), lr=0.123)

    result = fit_module(SGDModule(), AnnDataRows(adata), config=small_config(max_epochs=1))
    assert result.history["lr"].tolist() == [0.123]


def test_plain_datasets_are_collated_item_by_item() -> None:
    adata = make_adata()
    dense = torch.from_numpy(adata.X.toarray())

    class Plain(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return len(dense)

        def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
            return {"x": dense[i]}

    via_items = AutoEncoder()
    via_batches = AutoEncoder()
    config = small_config(max_epochs=2)
    first = fit_module(via_items, Plain(), config=config)
    second = fit_module(via_batches, AnnDataRows(adata), config=config)
    np.testing.assert_allclose(first.history["train_loss"], second.history["train_loss"], rtol=1e-5)


def test_same_seed_same_weights_and_the_global_rng_is_left_alone() -> None:
    adata = make_adata()
    runs = []
    for seed in (0, 0, 1):
        module = AutoEncoder(dropout=0.3)
        torch.manual_seed(1234)
        before = torch.random.get_rng_state()
        fit_module(module, AnnDataRows(adata), config=small_config(random_state=seed))
        runs.append(weights(module))
        # The caller's global random state is what it was: training drew nothing from it.
        assert torch.equal(torch.random.get_rng_state(), before)
    for key in runs[0]:
        assert torch.equal(runs[0][key], runs[1][key])
    assert any(not torch.equal(runs[0][k], runs[2][k]) for k in runs[0])


def test_bad_modules_and_arguments_give_clear_errors() -> None:
    adata = make_adata()

    class NoDict(AutoEncoder):
        def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:  # type: ignore[override]
            return super().loss(batch)["loss"]

    with pytest.raises(LossError, match="'loss' entry"):
        fit_module(NoDict(), AnnDataRows(adata), config=small_config(max_epochs=1))
    with pytest.raises(TrainingConfigError, match="loss"):
        fit_module(torch.nn.Linear(2, 2), AnnDataRows(adata), config=small_config())
    with pytest.raises(TrainingConfigError, match="early_stopping"):
        fit_module(AutoEncoder(), AnnDataRows(adata), config=small_config(early_stopping=2))
    with pytest.raises(TrainingConfigError, match="strategy='ddp'"):
        fit_module(AutoEncoder(), AnnDataRows(adata), config=small_config(strategy="ddp_spawn"))
    with pytest.raises(TrainingConfigError, match="strategy='no_such_strategy'"):
        fit_module(
            AutoEncoder(), AnnDataRows(adata), config=small_config(strategy="no_such_strategy")
        )


def test_gradient_clipping_bounds_each_update() -> None:
    adata = make_adata(n_obs=16)

    class SGDModule(AutoEncoder):
        def configure_optimizer(self, config: TrainingConfig) -> torch.optim.Optimizer:
            return torch.optim.SGD(self.parameters(), lr=1.0)

    module = SGDModule()
    before = torch.cat([p.detach().flatten().clone() for p in module.parameters()])
    config = small_config(max_epochs=1, batch_size=16, gradient_clip=1e-3)
    fit_module(module, AnnDataRows(adata), config=config)  # one step of plain SGD
    after = torch.cat([p.detach().flatten() for p in module.parameters()])
    assert torch.linalg.vector_norm(after - before) == pytest.approx(1e-3, rel=1e-3)


def test_progress_bar_shows_the_loss(capfd) -> None:
    adata = make_adata()
    fit_module(AutoEncoder(), AnnDataRows(adata), config=small_config(max_epochs=1, progress=True))
    output = capfd.readouterr()
    text = output.err + output.out
    assert "loss" in text
    assert "it/s" in text  # the speed


def test_bf16_mixed_precision_trains_on_cpu() -> None:
    adata = make_adata()
    module = AutoEncoder()
    config = small_config(max_epochs=3, precision="bf16-mixed")
    result = fit_module(module, AnnDataRows(adata), config=config)
    assert np.isfinite(result.history["train_loss"]).all()
    assert result.history["train_loss"].iloc[-1] < result.history["train_loss"].iloc[0]
    assert all(p.dtype == torch.float32 for p in module.parameters())  # weights stay float32


def test_sampler_factory_controls_the_batches_and_sees_every_epoch() -> None:
    adata = make_adata(n_obs=40)
    calls: list[dict[str, object]] = []
    epochs: list[int] = []
    seen: list[list[int]] = []

    class FixedBatches:
        def __init__(self, n_rows: int, batch_size: int) -> None:
            self.batches = [
                np.arange(i, min(i + batch_size, n_rows)) for i in range(0, n_rows, batch_size)
            ]

        def set_epoch(self, epoch: int) -> None:
            epochs.append(epoch)

        def __iter__(self):
            return iter(self.batches[::-1])  # last rows first, every epoch

        def __len__(self) -> int:
            return len(self.batches)

    def factory(dataset, **options):
        calls.append(options)
        return FixedBatches(len(dataset), options["batch_size"])

    class Recording(AutoEncoder):
        def loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
            if self.training:
                seen.append(batch["index"].tolist())
            return super().loss(batch)

    fit_module(
        Recording(),
        AnnDataRows(adata),
        config=small_config(max_epochs=3, batch_size=16),
        sampler_factory=factory,
    )
    assert calls == [{"batch_size": 16, "shuffle": True, "seed": 0, "num_replicas": 1, "rank": 0}]
    assert epochs == [0, 1, 2]
    assert seen[:3] == [list(range(32, 40)), list(range(16, 32)), list(range(16))]
    assert len(seen) == 9
