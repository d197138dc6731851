"""On-disk data are streamed, never loaded: a backed file goes through validation, the group means,
every mean-based model, the scores and the noise ceiling a block of rows at a time, the reads are
bounded, a second pass over the same groups reads nothing, and the results are those of the same
data in memory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anndata
import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from anndata import AnnData
from anndata._core.sparse_dataset import BaseCompressedSparseDataset

import transferome.data._stream as stream
from transferome.benchmark import run_task
from transferome.data import read_h5ad, validate
from transferome.data._backed import in_memory, is_backed, lazy
from transferome.data._values import _GroupValues
from transferome.data.aggregate import code_means, control_means, group_means
from transferome.data.schema import Schema, detect_value_type, value_type_of
from transferome.datasets import simulate
from transferome.errors import DataValidationError
from transferome.models import get_model
from transferome.models.fe import data as fe_data
from transferome.training.data import DEFAULT_CHUNK_SIZE

CHUNK = 64
MODELS = ["control", "additive", "linear", "similar", "collaborative", "stacked"]


@pytest.fixture(scope="module")
def cells() -> AnnData:
    adata = simulate("single_cell", seed=3, n_genes=150, cells_per_group=12).adatas["human"]
    del adata.layers["counts"]
    return adata


@pytest.fixture(scope="module", params=["sparse", "dense"])
def stored(cells: AnnData, request, tmp_path_factory) -> tuple[AnnData, Path]:
    memory = cells.copy()
    if request.param == "dense":
        memory.X = memory.X.toarray()
    path = tmp_path_factory.mktemp("stream") / f"{request.param}.h5ad"
    memory.write_h5ad(path)
    return memory, path


class Reads:
    """Rows read from on-disk matrices, one entry per read; loading a matrix whole fails."""

    def __init__(self, monkeypatch) -> None:
        self.rows: list[int] = []
        sparse_get = BaseCompressedSparseDataset.__getitem__
        dense_get = h5py.Dataset.__getitem__
        reads = self

        def count(index, n_rows: int) -> int:
            first = index[0] if isinstance(index, tuple) else index
            if isinstance(first, slice):
                return len(range(*first.indices(n_rows)))
            if first is Ellipsis:
                return n_rows
            return int(np.size(first))

        def sparse(self, index):
            reads.rows.append(count(index, self.shape[0]))
            return sparse_get(self, index)

        def dense(self, index):
            if self.ndim == 2:
                reads.rows.append(count(index, self.shape[0]))
            return dense_get(self, index)

        def whole(self, *args, **kwargs):
            raise AssertionError("an on-disk matrix was loaded whole")

        monkeypatch.setattr(BaseCompressedSparseDataset, "__getitem__", sparse)
        monkeypatch.setattr(BaseCompressedSparseDataset, "to_memory", whole)
        monkeypatch.setattr(h5py.Dataset, "__getitem__", dense)
        monkeypatch.setattr(h5py.Dataset, "__array__", whole)
        monkeypatch.setattr(stream, "CHUNK_ROWS", CHUNK)

    @property
    def total(self) -> int:
        return sum(self.rows)


@pytest.fixture
def backed(stored) -> Iterator[AnnData]:
    _, path = stored
    stream.clear_cache()
    adata = read_h5ad(path, backed=True)
    yield adata
    stream.clear_cache()


def test_reader_keeps_x_and_layers_on_disk(cells: AnnData, tmp_path: Path) -> None:
    with_layer = cells.copy()
    with_layer.layers["counts"] = with_layer.X.copy()
    path = tmp_path / "layer.h5ad"
    with_layer.write_h5ad(path)
    adata = read_h5ad(path, backed=True)
    assert is_backed(adata)
    assert stream.on_disk(adata.X)
    assert stream.on_disk(adata.layers["counts"])
    pd.testing.assert_frame_equal(adata.obs, cells.obs)
    loaded = in_memory(adata, what="test")
    assert not is_backed(loaded)
    np.testing.assert_array_equal(loaded.layers["counts"].toarray(), cells.X.toarray())


def test_run_task_streams_a_backed_file(stored, backed, monkeypatch) -> None:
    memory, _ = stored
    options = {"models": MODELS, "task_options": {"max_splits": 4}}
    expected = run_task("transfer", memory, **options)
    reads = Reads(monkeypatch)
    got = run_task("transfer", backed, **options)
    pd.testing.assert_frame_equal(got.results, expected.results, check_exact=False, rtol=1e-9)
    assert reads.rows, "nothing was read from the file"
    assert max(reads.rows) <= CHUNK
    # one pass for the group statistics, and the held-out groups' rows again for the ceiling
    assert reads.total <= 2 * backed.n_obs
    assert is_backed(backed)


def test_second_pass_over_the_same_groups_reads_nothing(backed, monkeypatch) -> None:
    reads = Reads(monkeypatch)
    first = validate(backed)
    after_validation = reads.total
    assert after_validation == backed.n_obs
    assert validate(backed) == first
    means = group_means(backed, schema=first.schema)
    model = get_model("additive")().fit(backed[backed.obs["context"] != "A549"])
    model.predict(backed, [("A549", "drug_01")])
    assert reads.total == after_validation
    assert means.shape == (len(first.group_counts), backed.n_vars)


def test_group_means_of_views_match_memory(stored, backed) -> None:
    memory, _ = stored
    schema = Schema()
    keep = np.flatnonzero(memory.obs["perturbation"].isin(["control", "drug_02", "drug_05"]))
    rng = np.random.default_rng(0)
    partial = np.sort(rng.choice(memory.n_obs, memory.n_obs // 3, replace=False))
    for rows in (keep, partial, keep[::-1]):
        view = lazy(backed)[rows]
        pd.testing.assert_frame_equal(
            group_means(view, schema=schema), group_means(memory[rows], schema=schema)
        )
        pd.testing.assert_frame_equal(
            control_means(view[:, 10:60], schema=schema),
            control_means(memory[rows][:, 10:60], schema=schema),
        )


def test_iter_row_blocks_reads_each_wanted_row_once(stored, backed) -> None:
    memory, _ = stored
    dense = memory.X.toarray() if sp.issparse(memory.X) else memory.X
    rng = np.random.default_rng(1)
    scattered = rng.choice(memory.n_obs, 20, replace=False)  # read row by row
    for rows in (None, scattered, np.arange(5, memory.n_obs, 2)):
        seen = []
        for positions, block in stream.iter_row_blocks(backed, rows=rows, chunk_rows=CHUNK):
            block = block.toarray() if sp.issparse(block) else block
            np.testing.assert_array_equal(block, dense[positions])
            seen.extend(positions.tolist())
        wanted = range(memory.n_obs) if rows is None else rows
        assert sorted(seen) == sorted(wanted)
    repeated = np.concatenate([scattered, scattered[:5]])  # scattered rows, some twice
    np.testing.assert_array_equal(
        np.asarray(sp.csr_matrix(stream.read_rows(backed, repeated)).toarray()), dense[repeated]
    )


def test_row_stats_leave_nan_out_like_code_means(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(300, 40)).astype(np.float32)
    x[rng.random(x.shape) < 0.1] = np.nan
    x[:, 3] = np.nan  # a gene nobody measured
    codes = rng.integers(-1, 5, size=300)
    path = tmp_path / "nan.h5ad"
    AnnData(X=x).write_h5ad(path)
    on_disk = read_h5ad(path, backed=True)
    stats = stream.row_stats(on_disk, codes, 5)
    np.testing.assert_allclose(np.vstack([s.means for s in stats]), code_means(x, codes, 5))
    assert [s.n_rows for s in stats] == [int((codes == g).sum()) for g in range(5)]
    assert all(s.values.n_nan == int(np.isnan(x[codes == g]).sum()) for g, s in enumerate(stats))


@pytest.mark.parametrize(
    ("values", "options", "message"),
    [
        (np.array([[1.0, np.nan]]), {}, "1 NaN and 0 infinite"),
        (np.array([[1.0, np.inf]]), {"allow_nan": True}, "0 NaN and 1 infinite"),
        (np.array([[1.0, -2.5]]), {}, "1 negative entries .minimum -2.5"),
        (np.array([[True, False]]), {}, "must be numbers, found dtype bool"),
    ],
)
def test_value_checks_from_summaries_match_the_scan(values, options, message) -> None:
    summary = stream.ValueSummary.of(values.reshape(-1))
    for check in (
        lambda: detect_value_type(values, **options),
        lambda: value_type_of(summary, **options),
    ):
        with pytest.raises(DataValidationError, match=message):
            check()


def test_value_summaries_merge_as_one_scan() -> None:
    rng = np.random.default_rng(4)
    parts = [rng.poisson(3, 50).astype(np.float32), np.log1p(rng.random(50)).astype(np.float32)]
    merged = stream.ValueSummary.of(parts[0]).merge(stream.ValueSummary.of(parts[1]))
    assert merged == stream.ValueSummary.of(np.concatenate(parts))
    assert value_type_of(stream.ValueSummary.of(parts[0])) == "counts"
    assert value_type_of(merged) == "log"


def test_anndata_backed_file_and_its_views(stored) -> None:
    memory, path = stored
    opened = anndata.read_h5ad(path, backed="r")
    try:
        half = opened[: opened.n_obs // 2]
        schema = Schema()
        # anndata cannot view a view of a backed AnnData; control_means needs no subset
        pd.testing.assert_frame_equal(
            control_means(half, schema=schema),
            control_means(memory[: memory.n_obs // 2], schema=schema),
        )
        assert lazy(half)[:10].n_obs == 10
        assert opened.isbacked
    finally:
        opened.file.close()


def _cli_file(cells: AnnData, tmp_path: Path) -> Path:
    path = tmp_path / "cells.h5ad"
    cells.write_h5ad(path)
    return path


def test_cli_commands_read_a_backed_file_as_in_memory(cells, tmp_path, capsys, monkeypatch) -> None:
    from transferome.cli import main

    path = str(_cli_file(cells, tmp_path))
    for command in (["validate", path], ["info", path]):
        assert main(command) == 0
        expected = capsys.readouterr().out
        assert main([*command, "--backed"]) == 0
        assert capsys.readouterr().out == expected
    bench = ["benchmark", "transfer", "--data", path, "--models", "additive,similar,stacked"]
    bench += ["--max-splits", "3"]
    assert main([*bench, "--out", str(tmp_path / "memory")]) == 0
    stream.clear_cache()
    reads = Reads(monkeypatch)
    assert main([*bench, "--backed", "--out", str(tmp_path / "backed")]) == 0
    assert reads.rows
    assert max(reads.rows) <= CHUNK
    monkeypatch.undo()
    got = pd.read_csv(tmp_path / "backed" / "results.csv")
    expected = pd.read_csv(tmp_path / "memory" / "results.csv")
    pd.testing.assert_frame_equal(got, expected, check_exact=False, rtol=1e-9)
    for backed in (False, True):
        flag = ["--backed"] if backed else []
        folder = str(tmp_path / f"model_{backed}")
        assert main(["fit", path, "--out", folder, *flag]) == 0
        out = str(tmp_path / f"pred_{backed}.h5ad")
        assert main(["predict", folder, path, "--target", "A549:drug_03", "--out", out, *flag]) == 0
    capsys.readouterr()
    got, expected = (
        anndata.read_h5ad(tmp_path / "pred_True.h5ad"),
        anndata.read_h5ad(tmp_path / "pred_False.h5ad"),
    )
    np.testing.assert_allclose(np.asarray(got.X), np.asarray(expected.X), rtol=1e-6)
    pd.testing.assert_frame_equal(got.obs, expected.obs)


def test_cli_backed_applies_to_h5ad_only(cells, tmp_path, capsys) -> None:
    from transferome.cli import main
    from transferome.data import write_gct

    path = tmp_path / "cells.gct"
    write_gct(cells[:40, :20].copy(), path)
    assert main(["validate", str(path), "--backed"]) == 2
    assert "--backed applies to .h5ad input, not gct" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("xtransfer", {"max_epochs": 2, "batch_size": 128, "early_stopping": None}),
        ("uge", {"max_epochs": 2, "batch_size": 64}),
    ],
)
def test_neural_models_read_a_backed_file_in_blocks(stored, backed, monkeypatch, name, params):
    """XTransfer and UGE read their training batches from the file (UGE its gene statistics
    and encodings a block of rows at a time) and fit as in memory."""
    memory, _ = stored
    cls = get_model(name)
    targets = [("A549", "drug_02"), ("K562", "drug_05")]
    expected = cls(**{**cls.fast_params, **params}).fit(memory).predict(memory, targets)
    reads = Reads(monkeypatch)
    got = cls(**{**cls.fast_params, **params}).fit(backed).predict(backed, targets)
    assert reads.rows
    # the training rows read chunks of their own size (cached), the rest CHUNK rows at most
    assert max(reads.rows) <= max(CHUNK, DEFAULT_CHUNK_SIZE)
    assert reads.total < 30 * backed.n_obs
    np.testing.assert_allclose(np.asarray(got.X), np.asarray(expected.X), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("sparse", [True, False])
def test_group_value_summaries_equal_one_scan_of_each_group(sparse) -> None:
    rng = np.random.default_rng(5)
    x = rng.poisson(2.0, size=(120, 30)).astype(np.float32)
    x[rng.random(x.shape) < 0.05] = -1.5
    x[rng.random(x.shape) < 0.05] = np.nan
    x[3, 4] = np.inf
    x[rng.random(x.shape) < 0.1] += 0.25
    x[7] = 0.0  # an empty row of a sparse matrix
    groups = rng.integers(0, 4, size=120)
    block = sp.csr_matrix(x) if sparse else x
    accumulated = _GroupValues(4)
    for start in range(0, 120, 50):  # in blocks, as a scan reads them
        part = block[start : start + 50]
        accumulated.add(part, groups[start : start + 50])
    for g in range(4):
        rows = block[groups == g]
        values = rows.data if sparse else rows.reshape(-1)
        assert accumulated.summary(g) == stream.ValueSummary.of(values)


FE_PARAMS = {"max_epochs": 3, "batch_size": 60, "gene_block": 100}


def _fe_fit(adata, *, mask=None, **params):
    cls = get_model("fe")
    return cls(**{**cls.fast_params, **FE_PARAMS, **params}).fit(adata, mask=mask)


def test_fe_trains_from_a_backed_file_a_chunk_of_rows_at_a_time(stored, backed, monkeypatch):
    """The training blocks come from chunks of rows read once per epoch, never the whole
    matrix; the fit is as good as in memory (the blocks are drawn differently)."""
    memory, _ = stored
    monkeypatch.setattr(fe_data, "CHUNK_ROWS", 256)
    targets = [("A549", "drug_02"), ("K562", "drug_05")]
    expected_model = _fe_fit(memory)
    reads = Reads(monkeypatch)
    model = _fe_fit(backed)
    got = model.predict(backed, targets)
    assert max(reads.rows) <= 256
    # the PCA start (the drawn rows, then a projection of all) and one read per epoch
    assert reads.total <= (2 + FE_PARAMS["max_epochs"]) * backed.n_obs
    monkeypatch.undo()
    expected = expected_model.predict(memory, targets)
    loss, expected_loss = (m.history_["train_loss"].iloc[-1] for m in (model, expected_model))
    assert loss < 1.15 * expected_loss
    assert np.corrcoef(np.ravel(got.X), np.ravel(expected.X))[0, 1] > 0.97
    assert model.sample_embeddings_.index.tolist() == list(memory.obs_names)


def test_fe_stored_start_is_the_pca_of_the_matrix(stored, backed, monkeypatch) -> None:
    from transferome.models.fe.network import pca_embeddings

    memory, _ = stored
    values = np.asarray(memory.X.toarray() if sp.issparse(memory.X) else memory.X)
    (samples, genes), mean = fe_data.stored_start(
        backed, layer=None, mask_layer=None, dim=8, pca=True, seed=0
    )
    want_samples, want_genes = pca_embeddings(values, None, 8, seed=0)
    np.testing.assert_allclose(samples, want_samples, atol=2e-4)
    np.testing.assert_allclose(genes, want_genes, atol=2e-4)
    assert mean == pytest.approx(values.mean(), rel=1e-6)
    # from a sample of the rows: the same subspace (leading components agree in direction)
    monkeypatch.setattr(fe_data, "PCA_ROWS", 400)
    (drawn_samples, drawn_genes), _ = fe_data.stored_start(
        backed, layer=None, mask_layer=None, dim=8, pca=True, seed=0
    )
    for k in range(2):
        cosine = drawn_genes[:, k] @ want_genes[:, k]
        cosine /= np.linalg.norm(drawn_genes[:, k]) * np.linalg.norm(want_genes[:, k])
        assert abs(cosine) > 0.97
        assert abs(np.corrcoef(drawn_samples[:, k], want_samples[:, k])[0, 1]) > 0.97


@pytest.mark.parametrize("held", [None, (0.3, "train"), (0.3, "val")])
def test_stored_blocks_cover_every_observed_entry_once(tmp_path, held) -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(203, 17)).astype(np.float32)
    x[rng.random(x.shape) < 0.1] = np.nan
    path = tmp_path / "nan.h5ad"
    AnnData(x).write_h5ad(path)
    adata = read_h5ad(path, backed=True)
    blocks = fe_data.StoredBlocks(
        adata,
        layer=None,
        mask_layer=None,
        obs_factors=np.arange(203)[:, None],
        sample_block=10,
        gene_block=5,
        held=held,
        chunk_rows=64,
        stripe_rows=8,
    )
    seen = np.zeros(x.shape, dtype=int)
    used = np.zeros(x.shape, dtype=bool)
    for i in range(len(blocks)):
        item = blocks.collate([blocks[i]])
        rows, cols = item["sample"].numpy(), item["gene"].numpy()
        np.testing.assert_array_equal(item["obs_factors"][:, 0].numpy(), rows)
        seen[np.ix_(rows, cols)] += 1
        observed = item["mask"].numpy() if "mask" in item else np.ones((len(rows), len(cols)), bool)
        used[np.ix_(rows, cols)] = observed
        block = x[np.ix_(rows, cols)]
        np.testing.assert_array_equal(item["x"].numpy()[observed], block[observed])
    assert (seen == 1).all()  # every entry in exactly one block
    finite = np.isfinite(x)
    assert not (used & ~finite).any()
    if held is None:
        np.testing.assert_array_equal(used, finite)
    else:
        share = used.sum() / finite.sum()
        assert share == pytest.approx(0.7 if held[1] == "train" else 0.3, abs=0.05)
    if held is not None and held[1] == "train":  # the train and val parts split the entries
        other = fe_data.StoredBlocks(
            adata,
            layer=None,
            mask_layer=None,
            obs_factors=np.zeros((203, 0)),
            sample_block=10,
            gene_block=5,
            held=(0.3, "val"),
            chunk_rows=64,
            stripe_rows=8,
        )
        val = np.zeros(x.shape, dtype=bool)
        for i in range(len(other)):
            item = other[i]
            if "mask" in item:
                val[np.ix_(item["sample"].numpy(), item["gene"].numpy())] = item["mask"].numpy()
        np.testing.assert_array_equal(val | used, finite)
        assert not (val & used).any()


def test_fe_streams_with_a_mask_layer_and_early_stopping(cells, tmp_path) -> None:
    adata = cells[:, :60].copy()
    adata.X = adata.X.toarray()
    hidden = np.random.default_rng(0).random(adata.shape) < 0.2
    adata.layers["observed"] = ~hidden
    adata.X[hidden] = 1e6  # never read: the mask leaves them out
    path = tmp_path / "masked.h5ad"
    adata.write_h5ad(path)
    backed = read_h5ad(path, backed=True)
    model = _fe_fit(backed, mask="observed", early_stopping=5, max_epochs=4)
    assert model.history_["val_loss"].notna().all()
    assert model.history_["train_loss"].iloc[-1] < 10
    assert np.isfinite(model.sample_embeddings_.to_numpy()).all()
    with pytest.raises(DataValidationError, match="mask layer 'nope' not found"):
        _fe_fit(backed, mask="nope")


@pytest.mark.parametrize("sparse", [True, False])
def test_column_moments_streamed_in_blocks_equal_numpy(tmp_path, monkeypatch, sparse) -> None:
    from transferome.data.aggregate import column_moments

    rng = np.random.default_rng(4)
    x = (1e4 + rng.normal(size=(300, 9))).astype(np.float32)  # a large mean
    x[:, 3] = 0.0
    adata = AnnData(sp.csr_matrix(x) if sparse else x)
    path = tmp_path / "moments.h5ad"
    adata.write_h5ad(path)
    want = x.astype(np.float64)
    reads = Reads(monkeypatch)  # blocks of CHUNK rows
    for source in (adata, read_h5ad(path, backed=True)):
        mean, variance = column_moments(source)
        np.testing.assert_allclose(mean, want.mean(axis=0), rtol=1e-12)
        np.testing.assert_allclose(variance, want.var(axis=0), rtol=1e-9, atol=1e-12)
        mean, variance = column_moments(source, columns=np.array([5, 1]))
        np.testing.assert_allclose(variance, want[:, [5, 1]].var(axis=0), rtol=1e-9)
    assert max(reads.rows) <= CHUNK


def test_uge_rows_read_from_a_file_equal_those_in_memory(stored, backed) -> None:
    from transferome.models.uge.data import SpeciesBlock, UGERows, token_statistics

    memory, _ = stored
    tokens, decode = np.array([0, 5, 7]), np.array([1, 2, 3, 9])
    batches = []
    for adata in (memory, backed):
        half = adata.n_obs // 2
        blocks = [
            SpeciesBlock(s, part, None, tokens, decode[: 4 - k])
            for k, (s, part) in enumerate((("a", adata[:half]), ("b", adata[half:])))
        ]
        n = {"a": half, "b": adata.n_obs - half}
        rows = UGERows(
            blocks,
            {"a": 0, "b": adata.n_vars},
            labels={s: np.arange(k) for s, k in n.items()},
            external={s: np.zeros(k) for s, k in n.items()},
            scaling={b.species: token_statistics(b.adata, tokens) for b in blocks},
            rows=np.arange(0, adata.n_obs, 3),
        )
        batches.append(rows[np.array([0, len(rows) - 1, 5, 2])])
    for key, value in batches[0].items():
        np.testing.assert_allclose(batches[1][key].numpy(), value.numpy(), rtol=1e-6)
    got = batches[0]
    assert got["species"].tolist() == [0, 1, 0, 0]
    assert got["decode_mask"].sum(axis=1).tolist() == [4, 3, 4, 4]  # padded to one width
    assert got["tokens"][1].tolist() == (tokens + memory.n_vars).tolist()
