"""The default transfer predictor ``stacked``: planted tasks, intervals, provenance, files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from anndata import AnnData

from transferome.benchmark import run_task
from transferome.data.schema import Schema
from transferome.errors import DataValidationError
from transferome.models import get_model
from transferome.models.stacked.estimator import BASE_PREDICTORS, StackedTransfer


def _atlas(seed: int = 0, n_genes: int = 120, noise: float = 0.15) -> tuple[AnnData, dict]:
    """Contexts of two kinds (their controls and responses differ by kind), each with a
    gene bias shared by all its perturbations; three cells per group."""
    rng = np.random.default_rng(seed)
    kinds = {k: rng.normal(size=n_genes) for k in "xy"}
    responses = {(k, p): rng.normal(size=n_genes) for k in "xy" for p in ("p0", "p1", "p2")}
    rows, obs, truth = [], [], {}
    for i in range(8):
        kind = "xy"[i % 2]
        context = f"{kind}{i}"
        control = 6 + kinds[kind] + 0.3 * rng.normal(size=n_genes)
        bias = 0.5 * rng.normal(size=n_genes)
        means = {"control": control}
        for p in ("p0", "p1", "p2"):
            means[p] = control + responses[(kind, p)] + bias
            truth[(context, p)] = responses[(kind, p)] + bias
        for p, mean in means.items():
            for _ in range(3):
                rows.append(mean + noise * rng.normal(size=n_genes))
                obs.append((context, p))
    frame = pd.DataFrame(obs, columns=["context", "perturbation"])
    frame.index = [f"o{i}" for i in range(len(frame))]
    adata = AnnData(
        np.asarray(rows, dtype=np.float32),
        obs=frame,
        var=pd.DataFrame(index=[f"g{i}" for i in range(n_genes)]),
    )
    return adata, truth


def _without(adata: AnnData, context: str, perturbation: str) -> AnnData:
    held = (adata.obs["context"] == context) & (adata.obs["perturbation"] == perturbation)
    return adata[~held.to_numpy()].copy()


def test_stacked_beats_every_baseline_on_a_planted_task() -> None:
    adata, _ = _atlas()
    result = run_task(
        "transfer",
        adata,
        schema=Schema(),
        models=["additive", "similar", "collaborative", "stacked"],
        task_options={"perturbations": ["p1"]},
    )
    summary = result.summary.set_index(["model", "metric"])["mean"]
    stacked = summary[("stacked", "pearson_delta")]
    for baseline in ("additive", "similar", "collaborative"):
        assert stacked > summary[(baseline, "pearson_delta")] + 0.02
    assert stacked > 0.9


def test_provenance_names_the_alike_sources_and_the_stack() -> None:
    adata, _ = _atlas(1)
    train = _without(adata, "x0", "p1")
    model = StackedTransfer().fit(train, schema=Schema())
    prediction = model.predict(train, [("x0", "p1")])
    table = prediction.uns["provenance"]
    sources = table[table["kind"] == "source_context"]
    same_kind = sources[sources["name"].str.startswith("x")]["weight"].sum()
    assert same_kind > 0.7 * sources["weight"].sum()
    stack = table[table["kind"] == "base_predictor"].set_index("name")["weight"]
    assert list(stack.index) == list(BASE_PREDICTORS)
    np.testing.assert_allclose(stack.to_numpy(), model.coefficients_)
    neighbours = table[table["kind"] == "neighbour"]
    assert set(neighbours["name"]) <= {"p0", "p2"}
    assert model.base_errors_["stacked"] < model.base_errors_["mean"]


def test_interval_coverage_on_held_out_groups() -> None:
    adata, _ = _atlas(2, n_genes=200)
    covered = []
    for context, perturbation in [("x0", "p1"), ("y1", "p0"), ("x2", "p2"), ("y3", "p1")]:
        train = _without(adata, context, perturbation)
        model = StackedTransfer(interval=0.8).fit(train, schema=Schema())
        out = model.predict(train, [(context, perturbation)])
        observed = adata[
            (
                (adata.obs["context"] == context) & (adata.obs["perturbation"] == perturbation)
            ).to_numpy()
        ].X.mean(axis=0)
        assert np.all(out.layers["lower"][0] <= out.X[0] + 1e-6)
        assert np.all(out.layers["upper"][0] >= out.X[0] - 1e-6)
        inside = (observed >= out.layers["lower"][0]) & (observed <= out.layers["upper"][0])
        covered.append(inside.mean())
        assert out.uns["interval"] == 0.8
    assert abs(np.mean(covered) - 0.8) < 0.1


def test_a_prediction_from_one_source_has_a_wider_interval() -> None:
    # every context's response is the perturbation's shared change plus as large a part of
    # its own: the spread over the sources is what the interval must carry
    rng = np.random.default_rng(5)
    n_genes, contexts = 150, [f"c{i}" for i in range(8)]
    shared = {p: rng.normal(size=n_genes) for p in ("p0", "p1", "p2", "p3")}
    own = rng.uniform(0.1, 2.0, size=n_genes)  # how much of a gene's response is the context's
    rows, obs = [], []
    for context in contexts:
        control = 6 + 0.2 * rng.normal(size=n_genes)
        for p, base in [("control", None), *shared.items()]:
            if p == "p3" and context not in ("c0", "c1"):
                continue  # p3: measured in c1 only, besides the target c0
            mean = control if base is None else control + base + own * rng.normal(size=n_genes)
            for _ in range(3):
                rows.append(mean + 0.1 * rng.normal(size=n_genes))
                obs.append((context, p))
    frame = pd.DataFrame(obs, columns=["context", "perturbation"])
    frame.index = [f"o{i}" for i in range(len(frame))]
    adata = AnnData(np.asarray(rows, dtype=np.float32), obs=frame)
    adata.var_names = [f"g{i}" for i in range(n_genes)]
    train = _without(_without(adata, "c0", "p0"), "c0", "p3")
    out = StackedTransfer().fit(train, schema=Schema()).predict(train, [("c0", "p0"), ("c0", "p3")])
    half = (out.layers["upper"] - out.layers["lower"]) / 2
    # from one source (p3) the prediction is no surer than from seven (p0)
    assert half[1].mean() > half[0].mean()


def test_spread_of_few_sources_is_shrunk_towards_the_pooled_one() -> None:
    from transferome.models.stacked._spread import source_spread

    pooled = np.array([1.0, 2.0])
    # one source: nothing is known of the spread but the pooled one, widened by sqrt(2)
    one = source_spread(np.array([[0.5, -1.0]]), pooled)
    np.testing.assert_allclose(one, pooled * np.sqrt(2.0))
    # many sources: their own spread dominates
    rows = np.random.default_rng(0).normal(0, 0.1, size=(400, 2))
    many = source_spread(rows, pooled)
    assert np.all(many < 0.2)


def test_save_load_gives_identical_predictions(tmp_path) -> None:
    adata, _ = _atlas(3)
    train = _without(adata, "y1", "p2")
    model = StackedTransfer().fit(train, schema=Schema())
    folder = model.save(tmp_path / "stacked")
    assert sorted(p.name for p in folder.iterdir()) == ["model.json", "weights.safetensors"]
    again = StackedTransfer.load(folder)
    first = model.predict(train, [("y1", "p2"), ("x0", "p1+p2")])
    second = again.predict(train, [("y1", "p2"), ("x0", "p1+p2")])
    np.testing.assert_array_equal(first.X, second.X)
    np.testing.assert_array_equal(first.layers["upper"], second.layers["upper"])
    pd.testing.assert_frame_equal(first.uns["provenance"], second.uns["provenance"])


def test_signature_data_with_gaps() -> None:
    rng = np.random.default_rng(4)
    n = 80
    rows, obs = [], []
    for c in ["a", "b", "c", "d"]:
        bias = rng.normal(size=n)
        for p in ["p0", "p1", "p2", "p3"]:
            if (c, p) == ("d", "p3"):
                continue
            change = np.sin(np.arange(n) * (1 + int(p[1]))) + bias
            change[rng.random(n) < 0.1] = np.nan
            rows.append(change)
            obs.append((c, p))
    frame = pd.DataFrame(
        obs, columns=["context", "perturbation"], index=[f"s{i}" for i in range(len(obs))]
    )
    adata = AnnData(
        np.asarray(rows, np.float32), obs=frame, var=pd.DataFrame(index=[f"g{i}" for i in range(n)])
    )
    result = run_task(
        "transfer", adata, schema=Schema(), values="delta", models=["additive", "stacked"]
    )
    summary = result.summary.set_index(["model", "metric"])["mean"]
    assert np.isfinite(summary[("stacked", "pearson_delta")])
    assert summary[("stacked", "pearson_delta")] > summary[("additive", "pearson_delta")]


def test_across_species_through_a_gene_map() -> None:
    adata, _ = _atlas(5)
    mouse = adata.copy()
    mouse.var_names = [f"m_{g}" for g in adata.var_names]
    rat = adata[(adata.obs["context"].isin(["x0", "y1"])).to_numpy()].copy()
    rat = rat[
        (rat.obs["perturbation"] != "p1").to_numpy() | (rat.obs["context"] != "x0").to_numpy()
    ]
    gene_map = pd.DataFrame({"source_gene": mouse.var_names, "target_gene": adata.var_names})
    model = StackedTransfer().fit(rat.copy(), schema=Schema(), source=mouse, gene_map=gene_map)
    assert any(c.startswith("source:") for c in model.tensor_.contexts)
    out = model.predict(rat, [("x0", "p1")])
    sources = out.uns["provenance"]
    sources = sources[sources["kind"] == "source_context"]
    assert sources.sort_values("weight").iloc[-1]["name"].startswith("source:x")


def test_clear_errors() -> None:
    adata, _ = _atlas(6)
    with pytest.raises(DataValidationError, match="interval"):
        StackedTransfer(interval=1.5).fit(adata, schema=Schema())
    model = StackedTransfer().fit(adata, schema=Schema())
    with pytest.raises(DataValidationError, match="not seen"):
        model.predict(adata, [("x0", "unknown")])


def test_registered_as_stacked() -> None:
    assert get_model("stacked") is StackedTransfer


def test_cli_fit_defaults_to_stacked_and_predict_keeps_intervals(tmp_path) -> None:
    import anndata as ad

    from transferome.cli import main

    adata, _ = _atlas(7)
    train = _without(adata, "x0", "p1")
    train.write_h5ad(tmp_path / "train.h5ad")
    assert main(["fit", str(tmp_path / "train.h5ad"), "--out", str(tmp_path / "model")]) == 0
    code = main(
        [
            "predict",
            str(tmp_path / "model"),
            str(tmp_path / "train.h5ad"),
            "--target",
            "x0:p1",
            "--out",
            str(tmp_path / "pred.h5ad"),
        ]
    )
    assert code == 0
    written = ad.read_h5ad(tmp_path / "pred.h5ad")
    predicted = written[written.obs["predicted"].to_numpy()]
    assert np.all(predicted.layers["lower"] <= predicted.X + 1e-6)
    assert np.all(predicted.layers["upper"] >= predicted.X - 1e-6)
    assert "provenance" in written.uns
    model = StackedTransfer.load(tmp_path / "model")
    np.testing.assert_allclose(predicted.X[0], model.predict(train, [("x0", "p1")]).X[0])
