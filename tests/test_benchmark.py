"""The harness and the benchmark command; one Kang group recomputed by hand with numpy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from anndata import AnnData

from tests.conftest import make_counts_adata
from transferome.benchmark import TASKS, run_task
from transferome.cli import main
from transferome.data import read
from transferome.data.schema import Schema
from transferome.errors import TransferomeError


def _planted(perturbations=("control", "a", "b", "a+b")) -> AnnData:
    adata = make_counts_adata(n_per_group=4, n_genes=15, perturbations=perturbations, seed=7)
    for single, genes in (("a", [0, 1]), ("b", [2, 3])):
        rows = adata.obs["perturbation"].str.contains(single, regex=False).to_numpy()
        adata.X[np.ix_(rows, genes)] *= 4.0
    adata.X = np.log1p(adata.X)
    return adata


def test_transfer_and_combination_tasks() -> None:
    assert {"transfer", "combination"} <= set(TASKS)
    adata = _planted()
    result = run_task("transfer", adata, schema=Schema(), models=["control", "additive"])
    assert len(result.results["split"].unique()) == 9  # 3 perturbations x 3 contexts
    summary = result.summary.set_index(["model", "metric"])
    assert summary.loc[("additive", "mse"), "mean"] < summary.loc[("control", "mse"), "mean"]
    assert summary.loc[("control", "pearson_delta"), "n_nan"] == 9
    assert "| pearson_delta ↑ |" in result.to_markdown()

    combo = run_task("combination", adata, schema=Schema(), models=["control", "additive"])
    assert set(combo.results["perturbation"]) == {"a+b"}
    scores = combo.summary.set_index(["model", "metric"])["mean"]
    assert scores[("additive", "deg_direction")] > scores[("control", "deg_direction")]
    with pytest.raises(TransferomeError, match="unknown benchmark task"):
        run_task("nope", adata, schema=Schema(), models=["control"])


def test_explicit_splits_labels_skipped_models_and_kept_fits() -> None:
    from transferome.benchmark import get_task
    from transferome.models.baselines.means import AdditiveBaseline, LinearBaseline

    adata = _planted(perturbations=("control", "a", "b"))
    splits = get_task("transfer").make_splits(adata, schema=Schema(), seed=0)[:2]
    steps: list[str] = []
    result = run_task(
        "transfer",
        adata,
        schema=Schema(),
        models={
            "additive": AdditiveBaseline(),
            "rank 0": LinearBaseline(ranks=(0,), penalties=(1.0,)),
            "broken": LinearBaseline(ranks=(-1,)),
        },
        splits=splits,
        on_error="skip",
        keep_models=True,
        on_step=steps.append,
    )
    assert set(result.results["split"]) == {s.name for s in splits}
    assert set(result.results["model"]) == {"additive", "rank 0", "ceiling"}
    assert "ranks" in result.skipped["broken"]
    assert set(result.predictions) == set(result.fitted) == {"additive", "rank 0"}
    assert result.predictions["additive"].n_obs == sum(len(s.held_out) for s in splits)
    assert isinstance(result.fitted["rank 0"], LinearBaseline)
    assert steps[:3] == [f"{splits[0].name}: {m}" for m in ("additive", "rank 0", "broken")]
    with pytest.raises(TransferomeError, match="ranks"):
        run_task("transfer", adata, models={"broken": LinearBaseline(ranks=(-1,))})
    with pytest.raises(TransferomeError, match="not both"):
        run_task("transfer", adata, models=["additive"], splits=splits, task_options={"seed": 1})


def test_variants_predict_one_fit_under_several_settings() -> None:
    from transferome.models import XTransfer

    adata = _planted(perturbations=("control", "a", "b"))
    splits = get_task_splits(adata)
    params = {**XTransfer.fast_params, "max_epochs": 2}
    # the variant with the defaults comes last: the other's changes must not leak into it
    kinds = {"anchored": {"prediction": "anchored", "matching": "mean"}, "decoded": {}}
    result = run_task(
        "transfer",
        adata,
        models={"xtransfer": "xtransfer"},
        model_params={"xtransfer": params},
        splits=splits,
        variants={"xtransfer": kinds},
        keep_models=True,
        ceiling=False,
    )
    assert set(result.results["model"]) == {"decoded", "anchored"}
    assert result.fitted["xtransfer"].get_params() == XTransfer(**params).get_params()
    # each variant equals a model fitted with that setting
    for name, changes in kinds.items():
        alone = run_task(
            "transfer",
            adata,
            models={name: XTransfer(**params, **changes)},
            splits=splits,
            ceiling=False,
        )
        pd.testing.assert_frame_equal(
            result.results[result.results["model"] == name].reset_index(drop=True),
            alone.results.reset_index(drop=True),
        )
    assert (result.timings.groupby("split")["fit_s"].nunique() == 1).all()
    with pytest.raises(TransferomeError, match="not among the models"):
        run_task("transfer", adata, models=["additive"], splits=splits, variants={"x": {}})
    with pytest.raises(TransferomeError, match="not hyperparameters"):
        run_task(
            "transfer",
            adata,
            models=["additive"],
            splits=splits,
            variants={"additive": {"v": {"q": 1}}},
        )
    with pytest.raises(TransferomeError, match="distinct"):
        run_task(
            "transfer",
            adata,
            models=["additive", "control"],
            splits=splits,
            variants={"additive": {"control": {}}},
        )


def test_the_data_are_validated_once(monkeypatch) -> None:
    import transferome.benchmark._run as run_module
    import transferome.data.schema as schema_module

    calls: list[int] = []
    validate = schema_module.validate

    def counted(adata, *args, **kwargs):
        calls.append(adata.n_obs)
        return validate(adata, *args, **kwargs)

    monkeypatch.setattr(schema_module, "validate", counted)  # what the fits would call
    monkeypatch.setattr(run_module, "validate", counted)
    adata = _planted(perturbations=("control", "a", "b"))
    splits = get_task_splits(adata)
    models = ["control", "additive", "linear", "similar", "collaborative", "stacked"]
    run_task("transfer", adata, models=models, splits=splits, ceiling=False)
    # the boundary's scan only: every fit on every split trusts its description
    assert calls == [adata.n_obs]


def get_task_splits(adata: AnnData) -> list:
    from transferome.benchmark import get_task

    return get_task("transfer").make_splits(adata, schema=Schema(), seed=0)[:3]


def test_delta_values_use_zero_controls() -> None:
    rng = np.random.default_rng(0)
    rows = [(c, p) for c in ("x", "y", "z") for p in ("d1", "d2")]
    obs = pd.DataFrame(rows, columns=["line", "drug"], index=[f"s{i}" for i in range(6)])
    shift = {"d1": rng.normal(size=10), "d2": rng.normal(size=10)}
    values = np.vstack([shift[p] + 0.1 * rng.normal(size=10) for _, p in rows])
    adata = AnnData(values.astype(np.float32), obs=obs)
    schema = Schema(context_key="line", perturbation_key="drug")
    with pytest.raises(TransferomeError):
        run_task("transfer", adata, schema=schema, models=["additive"])
    result = run_task("transfer", adata, schema=schema, models=["additive"], values="delta")
    table = result.results.query("model == 'additive'")
    table = table.set_index(["context", "perturbation", "metric"])["value"]
    # with zero controls the prediction is the mean of the other lines' signatures
    own = values[0]
    pred = values[[2, 4]].mean(axis=0)
    assert table[("x", "d1", "mse")] == pytest.approx(np.mean((pred - own) ** 2), rel=1e-5)
    assert table[("x", "d1", "pearson_delta")] == pytest.approx(
        np.corrcoef(pred, own)[0, 1], rel=1e-5
    )


def test_kang_additive_group_by_hand(shared_data) -> None:
    kang = read(shared_data / "kang_pbmc_scgen_valid.h5ad")
    keep = kang.obs["cell_type"].isin(["B", "NK", "CD8T"]).to_numpy()
    small = kang[keep, :300].copy()
    schema = Schema(context_key="cell_type", perturbation_key="condition", control="control")
    result = run_task("transfer", small, schema=schema, models=["additive"], n_degs=20)
    got = result.results.query("context == 'B' and model == 'additive'").set_index("metric")
    got = got["value"]

    x = small.X.toarray().astype(np.float64)
    cell = small.obs["cell_type"].to_numpy()
    cond = small.obs["condition"].to_numpy()

    def mean(c: str, k: str) -> np.ndarray:
        return x[(cell == c) & (cond == k)].mean(axis=0)

    control = mean("B", "control")
    shift = np.mean([mean(c, "stimulated") - mean(c, "control") for c in ("NK", "CD8T")], 0)
    pred, true = (control + shift).astype(np.float32).astype(np.float64), mean("B", "stimulated")
    degs = np.argsort(-np.abs(true - control), kind="stable")[:20]
    r2 = 1 - np.sum((true - pred) ** 2) / np.sum((true - true.mean()) ** 2)
    dt, dp = true - control, pred - control
    assert got["r2"] == pytest.approx(r2, rel=1e-5)
    assert got["pearson"] == pytest.approx(np.corrcoef(true, pred)[0, 1], rel=1e-5)
    assert got["pearson_delta"] == pytest.approx(np.corrcoef(dt, dp)[0, 1], rel=1e-4)
    assert got["pearson_delta_deg"] == pytest.approx(
        np.corrcoef(dt[degs], dp[degs])[0, 1], rel=1e-4
    )
    assert got["deg_direction"] == pytest.approx(np.mean(np.sign(dt[degs]) == np.sign(dp[degs])))
    assert got["mse"] == pytest.approx(np.mean((true - pred) ** 2), rel=1e-4)


def test_benchmark_command_writes_tables(tmp_path, capsys) -> None:
    data = tmp_path / "data.h5ad"
    _planted(("control", "a", "b")).write_h5ad(data)
    out = tmp_path / "out"
    code = main(
        [
            "-q",
            "benchmark",
            "transfer",
            "--data",
            str(data),
            "--models",
            "control,additive",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    results = pd.read_csv(out / "results.csv")
    assert set(results["model"]) == {"control", "additive", "ceiling"}
    assert set(pd.read_csv(out / "summary.csv").columns) >= {"model", "metric", "mean", "median"}
    assert "| r2 ↑ |" in (out / "summary.md").read_text()
    assert "| r2 ↑ |" in capsys.readouterr().out
    assert (
        main(["benchmark", "transfer", "--data", str(data), "--models", "nope", "--out", str(out)])
        == 2
    )
