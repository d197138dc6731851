"""Cases found by users on real data, each on tiny synthetic AnnData built here."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from anndata import AnnData

from transferome.models.baselines.means import AdditiveBaseline, LinearBaseline
from transferome.models.xtransfer import XTransfer
from transferome.models.xtransfer._pairs import anchor_weight

FAST = {**XTransfer.fast_params, "max_epochs": 3}


pytestmark = pytest.mark.usefixtures("one_thread")


def _donor_data(
    *,
    contexts=("d0", "d1", "d2", "d3"),
    perturbations=("a", "b", "a+b"),
    n_cells=6,
    n_genes=12,
    drop=(),
    seed=0,
) -> AnnData:
    """Log-like data in which each context responds with its own gain (donors differ)."""
    rng = np.random.default_rng(seed)
    effect = {"a": np.zeros(n_genes), "b": np.zeros(n_genes)}
    effect["a"][:4] = 1.5
    effect["b"][4:8] = -0.7
    rows, values = [], []
    for k, context in enumerate(contexts):
        base = rng.uniform(1.0, 3.0, n_genes)
        gain = 0.5 + 0.5 * k
        for perturbation in ("control", *perturbations):
            if (context, perturbation) in drop:
                continue
            parts = [] if perturbation == "control" else perturbation.split("+")
            mean = base + gain * sum((effect[p] for p in parts), np.zeros(n_genes))
            values.append(np.clip(mean + rng.normal(0, 0.1, (n_cells, n_genes)), 0, None))
            rows += [(context, perturbation)] * n_cells
    obs = pd.DataFrame(rows, columns=["context", "perturbation"])
    obs.index = [f"cell{i}" for i in range(len(obs))]
    return AnnData(
        X=np.vstack(values).astype(np.float32),
        obs=obs,
        var=pd.DataFrame(index=[f"g{j}" for j in range(n_genes)]),
    )


def _mean(adata: AnnData, context: str, perturbation: str) -> np.ndarray:
    obs = adata.obs
    mask = ((obs["context"] == context) & (obs["perturbation"] == perturbation)).to_numpy()
    return np.asarray(adata.X[mask], dtype=np.float64).mean(axis=0)


def _latents(model: XTransfer, adata: AnnData, mask: np.ndarray):
    with torch.no_grad():
        return model.module_.encode(torch.from_numpy(np.asarray(adata.X[mask])))


# -- 1. a combination measured in other contexts is transferred ---------------------------------
def test_xtransfer_transfers_a_measured_combination() -> None:
    adata = _donor_data(drop=(("d0", "a+b"),))
    model = XTransfer(**FAST, matching="mean").fit(adata)
    obs = adata.obs
    controls = ((obs.context == "d0") & (obs.perturbation == "control")).to_numpy()
    s, _ = _latents(model, adata, controls)
    elsewhere = ((obs.perturbation == "a+b") & (obs.context != "d0")).to_numpy()
    _, p = _latents(model, adata, elsewhere)
    p_mean = p.mean(0, keepdim=True)
    expected = model.module_.predict_from_latents(s, p_mean.expand_as(s)).mean(0).numpy()
    np.testing.assert_allclose(
        model.predict(adata, [("d0", "a+b")]).X[0], expected, rtol=1e-4, atol=1e-5
    )
    # written in another order, it is the same measured combination
    np.testing.assert_allclose(
        model.predict(adata, [("d0", "b+a")]).X[0], expected, rtol=1e-4, atol=1e-5
    )

    # anchored: the observed changes of a+b in the other donors, not control_plus_delta
    anchored = XTransfer(**FAST, matching="mean", prediction="anchored").fit(adata)

    def decoded_delta(context: str) -> np.ndarray:
        mask = ((obs.context == context) & (obs.perturbation == "control")).to_numpy()
        s_c, _ = _latents(anchored, adata, mask)
        _, p_c = _latents(anchored, adata, elsewhere)
        p_c = p_c.mean(0, keepdim=True).expand_as(s_c)
        with_p = anchored.module_.predict_from_latents(s_c, p_c).mean(0)
        without = anchored.module_.predict_from_latents(s_c, torch.zeros_like(s_c)).mean(0)
        return (with_p - without).numpy()

    sources = ["d1", "d2", "d3"]
    observed = np.array([_mean(adata, c, "a+b") - _mean(adata, c, "control") for c in sources])
    decoded = np.array([decoded_delta(c) for c in sources])
    weight = anchor_weight(observed, decoded)
    want = (
        _mean(adata, "d0", "control")
        + observed.mean(axis=0)
        + weight * (decoded_delta("d0") - decoded.mean(axis=0))
    )
    np.testing.assert_allclose(
        anchored.predict(adata, [("d0", "a+b")]).X[0], want, rtol=1e-4, atol=1e-4
    )


def test_xtransfer_builds_an_unmeasured_combination_from_singles() -> None:
    adata = _donor_data(perturbations=("a", "b"))
    model = XTransfer(**FAST, matching="mean").fit(adata)
    obs = adata.obs
    controls = ((obs.context == "d0") & (obs.perturbation == "control")).to_numpy()
    s, _ = _latents(model, adata, controls)
    _, p_a = _latents(model, adata, (obs.perturbation == "a").to_numpy())
    _, p_b = _latents(model, adata, (obs.perturbation == "b").to_numpy())
    combo = (p_a.mean(0, keepdim=True) + p_b.mean(0, keepdim=True)).expand_as(s)
    expected = model.module_.predict_from_latents(s, combo).mean(0).numpy()
    np.testing.assert_allclose(
        model.predict(adata, [("d0", "a+b")]).X[0], expected, rtol=1e-4, atol=1e-5
    )


# -- 2. the combination baseline adds the target's own singles ----------------------------------
def test_additive_combination_uses_the_targets_own_singles(tmp_path) -> None:
    # a+b measured nowhere; b not measured in d3
    adata = _donor_data(perturbations=("a", "b"), drop=(("d3", "b"),))
    model = AdditiveBaseline().fit(adata)
    contexts = ["d0", "d1", "d2", "d3"]

    def change(context: str, perturbation: str) -> np.ndarray:
        return _mean(adata, context, perturbation) - _mean(adata, context, "control")

    mean_b = np.mean([change(c, "b") for c in ("d0", "d1", "d2")], axis=0)
    pred = model.predict(adata, [("d0", "a+b"), ("d3", "a+b")]).X
    own = _mean(adata, "d0", "control") + change("d0", "a") + change("d0", "b")
    np.testing.assert_allclose(pred[0], own, rtol=1e-5, atol=1e-5)
    # the single d3 did not measure comes from the other contexts
    fallback = _mean(adata, "d3", "control") + change("d3", "a") + mean_b
    np.testing.assert_allclose(pred[1], fallback, rtol=1e-5, atol=1e-5)
    # a single is still transferred from the mean over contexts
    mean_a = np.mean([change(c, "a") for c in contexts], axis=0)
    np.testing.assert_allclose(
        model.predict(adata, [("d0", "a")]).X[0],
        _mean(adata, "d0", "control") + mean_a,
        rtol=1e-5,
        atol=1e-5,
    )
    loaded = AdditiveBaseline.load(model.save(tmp_path / "additive"))
    np.testing.assert_array_equal(loaded.predict(adata, [("d0", "a+b"), ("d3", "a+b")]).X, pred)


def test_additive_transfers_a_measured_combination() -> None:
    adata = _donor_data(drop=(("d0", "a+b"),))
    model = AdditiveBaseline().fit(adata)
    shift = np.mean(
        [_mean(adata, c, "a+b") - _mean(adata, c, "control") for c in ("d1", "d2", "d3")], 0
    )
    np.testing.assert_allclose(
        model.predict(adata, [("d0", "b+a")]).X[0],
        _mean(adata, "d0", "control") + shift,
        rtol=1e-5,
        atol=1e-5,
    )


# -- 3. predict + evaluate score what benchmark scores --------------------------------------------
def _negative_going(seed: int = 0) -> AnnData:
    """Log-like data whose additive prediction for (d0, b) is negative on genes 0-3."""
    rng = np.random.default_rng(seed)
    rows, values = [], []
    for context in ("d0", "d1", "d2"):
        base = np.full(10, 2.0)
        base[:4] = 0.1 if context == "d0" else 2.0
        for perturbation in ("control", "b"):
            mean = base.copy()
            if perturbation == "b":
                mean[:4] -= 1.5 if context != "d0" else 0.05
                mean[6:] += 1.0
            values.append(np.clip(mean + rng.normal(0, 0.05, (5, 10)), 0, None))
            rows += [(context, perturbation)] * 5
    obs = pd.DataFrame(rows, columns=["context", "perturbation"])
    obs.index = [f"cell{i}" for i in range(len(obs))]
    return AnnData(
        X=np.vstack(values).astype(np.float32),
        obs=obs,
        var=pd.DataFrame(index=[f"g{j}" for j in range(10)]),
    )


def test_predict_and_evaluate_score_what_benchmark_scores(tmp_path) -> None:
    import anndata as ad

    from transferome.benchmark import run_task
    from transferome.cli import main

    adata = _negative_going()
    result = run_task("transfer", adata, models=["additive"])
    ours = result.results.query("model == 'additive' and context == 'd0' and perturbation == 'b'")
    ours = ours.set_index("metric")["value"]

    held = ((adata.obs.context == "d0") & (adata.obs.perturbation == "b")).to_numpy()
    train, full = tmp_path / "train.h5ad", tmp_path / "full.h5ad"
    adata[~held].copy().write_h5ad(train)
    adata.write_h5ad(full)
    model = tmp_path / "model"
    assert main(["-q", "fit", str(train), "--model", "additive", "--out", str(model)]) == 0
    pred = tmp_path / "pred.h5ad"
    predict = ["-q", "predict", str(model), str(train), "--target", "d0:b"]
    assert main([*predict, "--out", str(pred)]) == 0
    layout = ad.read_h5ad(pred)
    assert float(np.min(layout.X)) < 0.0  # the prediction is written as it was made
    metrics = tmp_path / "metrics.csv"
    assert main(["-q", "evaluate", str(pred), str(full), "--out", str(metrics)]) == 0
    theirs = pd.read_csv(metrics).set_index("metric")["value"]
    for metric in ("r2", "pearson_delta", "mse", "r2_deg", "deg_direction"):
        assert theirs[metric] == pytest.approx(ours[metric], rel=1e-5, abs=1e-7), metric

    clipped = tmp_path / "clipped.h5ad"
    assert main([*predict, "--clip-negative", "--out", str(clipped)]) == 0
    assert float(np.min(ad.read_h5ad(clipped).X)) >= 0.0


# -- 4. counts and fractional counts are normalised, the same way everywhere -------------------
def _counts_data(seed: int = 0) -> AnnData:
    """Raw counts with a planted response, library sizes differing between observations."""
    from tests.conftest import make_counts_adata

    adata = make_counts_adata(n_per_group=4, n_genes=15, perturbations=("control", "a"), seed=seed)
    rng = np.random.default_rng(seed)
    rows = (adata.obs["perturbation"] == "a").to_numpy()
    adata.X[np.ix_(rows, [0, 1, 2])] *= 6
    adata.X = (adata.X * rng.integers(1, 40, size=(adata.n_obs, 1))).astype(np.float32)
    return adata


def test_prepare_values_detects_and_normalises(caplog) -> None:
    import logging

    from transferome.data import prepare_values
    from transferome.errors import DataValidationError

    counts = _counts_data()
    logged = np.log1p(counts.X / counts.X.sum(axis=1, keepdims=True) * 1e4)
    with caplog.at_level(logging.WARNING, logger="transferome"):
        prepared = prepare_values(counts, where="counts.h5ad")
    assert prepared.values == "log"
    assert prepared.normalised
    np.testing.assert_allclose(prepared.adata.X, logged, rtol=1e-5)
    np.testing.assert_array_equal(prepared.adata.layers["counts"], counts.X)
    assert "counts.h5ad: X holds raw counts" in caplog.text
    assert "counts" not in counts.layers  # the input is left alone

    # fractional counts (salmon NumReads) are normalised like counts, not only logged
    fractional = counts.copy()
    fractional.X = (counts.X * 1.37).astype(np.float32)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="transferome"):
        prepared = prepare_values(fractional)
    np.testing.assert_allclose(prepared.adata.X, logged, rtol=1e-5)
    assert "fractional counts" in caplog.text

    # log-normalised values are kept, silently; the user can say otherwise
    caplog.clear()
    log = prepare_values(prepared.adata)
    assert log.adata is prepared.adata
    assert not log.normalised
    assert not caplog.text
    assert prepare_values(counts, "log").adata.X is counts.X
    forced = prepare_values(prepared.adata, "counts")
    assert forced.normalised
    signed = counts.copy()
    signed.X = signed.X - 50.0
    with pytest.raises(DataValidationError, match="values='delta'"):
        prepare_values(signed)
    assert prepare_values(signed, "delta").values == "delta"
    with pytest.raises(DataValidationError, match="values must be one of"):
        prepare_values(counts, "raw")


def test_commands_normalise_counts_like_the_library(tmp_path, capsys) -> None:
    from transferome.benchmark import run_task
    from transferome.cli import main
    from transferome.data import prepare_values

    counts = _counts_data()
    path = tmp_path / "counts.h5ad"
    counts.write_h5ad(path)
    out = tmp_path / "bench"
    args = ["benchmark", "transfer", "--data", str(path), "--models", "additive"]
    assert main([*args, "--out", str(out)]) == 0
    # the project's log lines go to the console (standard output when not a terminal)
    said = " ".join("".join(capsys.readouterr()).split())
    assert "WARNING" in said
    assert "X holds raw counts (non-negative integers); normalised them" in said
    got = pd.read_csv(out / "results.csv").query("model == 'additive'")
    expected = run_task("transfer", prepare_values(counts).adata, models=["additive"]).results
    expected = expected.query("model == 'additive'")
    np.testing.assert_allclose(got["value"].to_numpy(), expected["value"].to_numpy(), rtol=1e-5)

    # --values log: used as they are (the scores differ)
    out_log = tmp_path / "bench_log"
    assert main([*args, "--values", "log", "--out", str(out_log)]) == 0
    raw = pd.read_csv(out_log / "results.csv").query("model == 'additive'")
    assert not np.allclose(raw["value"].to_numpy(), got["value"].to_numpy(), equal_nan=True)

    # fit and predict normalise the same way: the prediction is on the log scale
    held = ((counts.obs.context == "liver") & (counts.obs.perturbation == "a")).to_numpy()
    train = tmp_path / "train.h5ad"
    counts[~held].copy().write_h5ad(train)
    model = tmp_path / "model"
    assert main(["fit", str(train), "--model", "additive", "--out", str(model)]) == 0
    assert "X holds raw counts" in " ".join("".join(capsys.readouterr()).split())
    pred = tmp_path / "pred.h5ad"
    predict = ["predict", str(model), str(train), "--target", "liver:a", "--out", str(pred)]
    assert main(predict) == 0
    import anndata as ad

    assert float(np.max(ad.read_h5ad(pred).X)) < 15.0
    metrics = tmp_path / "metrics.csv"
    assert main(["evaluate", str(pred), str(path), "--out", str(metrics)]) == 0
    theirs = pd.read_csv(metrics).set_index("metric")["value"]
    ours = got.query("context == 'liver' and perturbation == 'a'").set_index("metric")["value"]
    assert theirs["pearson_delta"] == pytest.approx(ours["pearson_delta"], rel=1e-5)


def test_run_normalises_counts_as_the_commands_do(tmp_path) -> None:
    from transferome.data import prepare_values
    from transferome.data.schema import Schema
    from transferome.pipeline import ConfigError, default_config, validate_config
    from transferome.pipeline._data import load_data

    counts = _counts_data()
    path = tmp_path / "counts.h5ad"
    counts.write_h5ad(path)
    data = load_data({"path": str(path), "reader": {}}, Schema())
    (loaded,) = data.adatas.values()
    np.testing.assert_allclose(loaded.X, prepare_values(counts).adata.X, rtol=1e-6)
    kept = load_data({"path": str(path), "values": "log", "reader": {}}, Schema())
    np.testing.assert_array_equal(next(iter(kept.adatas.values())).X, counts.X)
    raw = {**default_config(quick=True), "data": {"path": str(path), "values": "delta"}}
    with pytest.raises(ConfigError, match=r"data\.values"):
        validate_config(raw, base=tmp_path)


# -- 5. what a transfer split holds out ----------------------------------------------------------
def test_context_holdout_holds_out_a_whole_context() -> None:
    from transferome.benchmark import get_task
    from transferome.data.schema import Schema

    adata = _donor_data(perturbations=("a", "b", "a+b"), drop=(("d1", "a+b"), ("d2", "a+b")))
    make = get_task("transfer").make_splits
    groups = make(adata, schema=Schema(), seed=0)
    assert groups[0].name == "d0|a"
    assert len(groups) == 4 + 4 + 2  # a and b in 4 donors, a+b in d0 and d3
    obs = adata.obs
    splits = make(adata, schema=Schema(), seed=0, holdout="context")
    assert [s.name for s in splits] == ["context d0", "context d1", "context d2", "context d3"]
    d1 = splits[1]
    assert d1.held_out == (("d1", "a"), ("d1", "b"))
    train = obs.iloc[d1.train]
    # nothing perturbed of d1 stays in training; its controls do
    assert set(train.loc[train.context == "d1", "perturbation"]) == {"control"}
    assert d1.kept_controls == {"d1": 6}
    # a group whose perturbation no other context measured is left out, not scored
    only_d0 = _donor_data(
        perturbations=("a", "b", "a+b"), drop=(("d1", "a+b"), ("d2", "a+b"), ("d3", "a+b"))
    )
    d0 = make(only_d0, schema=Schema(), seed=0, holdout="context")[0]
    assert ("d0", "a+b") not in d0.held_out
    kept = only_d0.obs.iloc[np.concatenate([d0.train, d0.test])]
    assert not ((kept.context == "d0") & (kept.perturbation == "a+b")).any()

    chosen = make(adata, schema=Schema(), seed=0, contexts=["d2"], perturbations=["b"])
    assert [s.name for s in chosen] == ["d2|b"]
    sampled = make(adata, schema=Schema(), seed=3, max_splits=3)
    assert len(sampled) == 3
    assert [s.name for s in sampled] == [
        s.name for s in make(adata, schema=Schema(), seed=3, max_splits=3)
    ]
    assert {s.name for s in sampled} < {s.name for s in groups}
    from transferome.errors import DataValidationError

    with pytest.raises(DataValidationError, match="holdout must be one of"):
        make(adata, schema=Schema(), seed=0, holdout="donor")
    with pytest.raises(DataValidationError, match="'d9'"):
        make(adata, schema=Schema(), seed=0, contexts=["d9"])


def test_run_task_and_command_say_which_holdout(tmp_path, capsys) -> None:
    from transferome.benchmark import run_task
    from transferome.cli import main

    adata = _donor_data(perturbations=("a", "b"))
    result = run_task("transfer", adata, models=["additive"], task_options={"holdout": "context"})
    assert result.holdout == "context"
    assert set(result.results["split"]) == {f"context d{i}" for i in range(4)}
    assert "Held out (context): each split holds out every perturbed group" in (
        result.report_markdown()
    )
    assert run_task("transfer", adata, models=["additive"]).holdout == "group"

    path = tmp_path / "donors.h5ad"
    adata.write_h5ad(path)
    out = tmp_path / "out"
    args = ["benchmark", "transfer", "--data", str(path), "--models", "control,additive"]
    options = ["--holdout", "context", "--contexts", "d1,d2", "--max-splits", "1"]
    assert main(["-q", *args, *options, "--out", str(out)]) == 0
    results = pd.read_csv(out / "results.csv")
    assert results["split"].nunique() == 1
    assert results["split"].iloc[0] in {"context d1", "context d2"}
    summary = (out / "summary.md").read_text()
    assert "Held out (context)" in summary
    capsys.readouterr()
    assert main(["-q", *args, "--perturbations", "b", "--out", str(tmp_path / "b")]) == 0
    assert set(pd.read_csv(tmp_path / "b" / "results.csv")["perturbation"]) == {"b"}
    assert "Held out (group)" in (tmp_path / "b" / "summary.md").read_text()
    bad = ["benchmark", "combination", "--data", str(path), "--holdout", "context"]
    assert main([*bad, "--out", str(tmp_path / "c")]) == 2
    assert "only the transfer task" in capsys.readouterr().err


# -- 6. options nothing uses are refused ----------------------------------------------------------
@pytest.mark.parametrize(
    ("command", "option"),
    [
        ("benchmark", "--dose-key"),
        ("benchmark", "--time-key"),
        ("benchmark", "--sample-key"),
        ("fit", "--dose-key"),
        ("fit", "--sample-key"),
        ("evaluate", "--sample-key"),
        ("map-genes", "--dose-key"),
        ("suggest", "--dose-key"),
    ],
)
def test_unused_key_options_are_refused(tmp_path, capsys, command, option) -> None:
    from transferome.cli import main

    path = tmp_path / "data.h5ad"
    _donor_data(perturbations=("a",)).write_h5ad(path)
    out = str(tmp_path / "out")
    argv = {
        "benchmark": ["benchmark", "transfer", "--data", str(path), "--out", out],
        "fit": ["fit", str(path), "--model", "additive", "--out", out],
        "evaluate": ["evaluate", str(path), str(path), "--out", out],
        "map-genes": ["map-genes", str(path), str(path), "--out", out],
        "suggest": ["suggest", str(path), "--out", out],
    }[command]
    assert main([*argv, option, "donor"]) == 2
    err = capsys.readouterr().err
    assert f"error: {option}: no model or task of `transferome {command}` uses" in err
    assert not (tmp_path / "out").exists()


def test_sample_key_still_used_where_it_is() -> None:
    from transferome.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(
        ["map-genes", "a.h5ad", "b.h5ad", "--out", "m.csv", "--sample-key", "donor"]
    )
    assert args.sample_key == "donor"  # reactomes average each donor first
    choices = parser._subparsers._group_actions[0].choices
    help_text = choices["benchmark"].format_help()
    assert "--dose-key" in help_text  # the dose tasks read it
    assert "--sample-key" not in help_text
    assert "--dose-key" not in choices["fit"].format_help()


# -- 7. friction ---------------------------------------------------------------------------------
def test_benchmark_reports_progress_timings_and_perturbations(tmp_path, capsys, caplog) -> None:
    import logging

    from transferome.benchmark import run_task
    from transferome.cli import main

    adata = _donor_data(perturbations=("a", "b"))
    with caplog.at_level(logging.INFO, logger="transferome"):
        result = run_task("transfer", adata, models=["control", "additive"])
    assert "split 1/8 (d0|a): fitting control" in caplog.text
    assert "split 8/8 (d3|b): fitting additive" in caplog.text
    table = result.per_perturbation()
    assert list(table.index) == ["a", "b"]
    assert table.loc["a", "n_groups"] == 4
    expected = result.results.query(
        "model == 'additive' and perturbation == 'b' and metric == 'pearson_delta'"
    )["value"].mean()
    assert table.loc["b", "additive"] == pytest.approx(expected)

    path = tmp_path / "donors.h5ad"
    adata.write_h5ad(path)
    out = tmp_path / "out"
    args = ["benchmark", "transfer", "--data", str(path), "--models", "control,additive"]
    assert main([*args, "--out", str(out)]) == 0
    said = " ".join("".join(capsys.readouterr()).split())
    assert "split 3/8 (d2|a): fitting additive" in said
    timings = pd.read_csv(out / "timings.csv")
    assert list(timings.columns) == ["split", "model", "fit_s", "predict_s"]
    assert len(timings) == 16
    summary = (out / "summary.md").read_text()
    assert "Mean `pearson_delta` per perturbation" in summary
    assert "| a | 4 |" in summary


def test_info_summarises_many_perturbations(tmp_path, capsys) -> None:
    from transferome.cli import main

    drugs = tuple(f"drug{i:02d}" for i in range(20))
    rng = np.random.default_rng(0)
    rows = [(c, p) for c in ("donor_a", "donor_b") for p in ("control", *drugs) for _ in range(2)]
    obs = pd.DataFrame(rows, columns=["context", "perturbation"])
    obs.index = [f"s{i}" for i in range(len(obs))]
    adata = AnnData(rng.poisson(3.0, (len(obs), 5)).astype(np.float32), obs=obs)
    path = tmp_path / "wide.h5ad"
    adata.write_h5ad(path)
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "20 perturbation values, summarised" in out
    assert "20 of 20" in out
    assert "drug19" in out
    assert max(len(line) for line in out.splitlines()) <= 120
    assert main(["info", str(path), "--full"]) == 0
    wide = capsys.readouterr().out
    assert "context x perturbation (observations)" in wide


def test_run_names_contexts_by_the_datas_key() -> None:
    from transferome.data.schema import Schema
    from transferome.pipeline._data import RunData
    from transferome.pipeline.stages import STAGES, data_nouns

    donors = RunData({"data": _donor_data()}, Schema(context_key="donor", perturbation_key="drug"))
    title, description = STAGES["transfer"].heading(data_nouns(donors))
    assert title == "Perturbation transfer across donors"
    assert "each (donor, drug) group" in description
    assert "organ" not in description
    assert STAGES["annotation"].heading(data_nouns(donors))[0] == "Donor annotation transfer"
    cell_types = RunData({"d": _donor_data()}, Schema(context_key="cell_type"))
    assert STAGES["transfer"].heading(data_nouns(cell_types))[0].endswith("across cell types")
    # the built-in atlas keeps its organs
    assert STAGES["transfer"].heading()[0] == "Perturbation transfer across organs"


def test_preset_fast_and_paper(tmp_path, capsys, monkeypatch) -> None:
    import json

    from transferome.cli import main
    from transferome.cli._common import preset_params

    assert preset_params("xtransfer", "paper") == {}
    fast = preset_params("xtransfer", "fast", {"max_epochs": 2})
    assert fast == {**XTransfer.fast_params, "max_epochs": 2}
    path = tmp_path / "donors.h5ad"
    _donor_data(perturbations=("a", "b"), n_genes=8).write_h5ad(path)
    model = tmp_path / "model"
    argv = ["-q", "fit", str(path), "--model", "xtransfer", "--preset", "fast"]
    assert main([*argv, "--param", "max_epochs=1", "--out", str(model)]) == 0
    params = json.loads((model / "model.json").read_text())["params"]
    assert params["latent_dim"] == XTransfer.fast_params["latent_dim"]
    assert params["max_epochs"] == 1
    with pytest.raises(SystemExit):
        main(["fit", str(path), "--model", "additive", "--preset", "slow", "--out", "x"])
    assert "invalid choice: 'slow'" in capsys.readouterr().err

    import transferome.benchmark

    seen = {}

    def fake_run_task(*args, **kwargs):
        seen.update(kwargs["model_params"])
        raise transferome.errors.TransferomeError("stop here")

    monkeypatch.setattr(transferome.benchmark, "run_task", fake_run_task)
    bench = ["benchmark", "transfer", "--data", str(path), "--models", "linear,xtransfer"]
    extra = ["--param", "xtransfer.max_epochs=2", "--out", str(tmp_path / "b")]
    assert main([*bench, "--preset", "fast", *extra]) == 2
    assert seen == {
        "linear": dict(LinearBaseline.fast_params),
        "xtransfer": {**XTransfer.fast_params, "max_epochs": 2},
    }
    assert main([*bench, *extra]) == 2
    assert seen == {"linear": {}, "xtransfer": {"max_epochs": 2}}
    # values are YAML; lists become tuples, as for fit
    more = ["--param", "linear.ranks=[0, 1]", "--param", "xtransfer.lr=1e-3"]
    assert main([*bench, *more, *extra]) == 2
    assert seen == {"linear": {"ranks": (0, 1)}, "xtransfer": {"max_epochs": 2, "lr": 1e-3}}
    capsys.readouterr()
    # with one model the prefix may be left out; with several it names the model
    single = ["benchmark", "transfer", "--data", str(path), "--models", "xtransfer"]
    seen.clear()
    assert main([*single, "--param", "max_epochs=3", "--out", str(tmp_path / "b")]) == 2
    assert seen == {"xtransfer": {"max_epochs": 3}}
    for bad, message in (
        ("max_epochs=3", "name the model, e.g. --param linear.max_epochs=3"),
        ("fe.max_epochs=3", "'fe' is not among --models (linear, xtransfer)"),
        ("xtransfer.epochs=3", "epochs"),
        ("xtransfer.max_epochs", "expected NAME=VALUE"),
    ):
        assert main([*bench, "--param", bad, "--out", str(tmp_path / "b")]) == 2
        assert message in capsys.readouterr().err
    # the dose models are checked against their own arguments
    from transferome.cli.benchmark import _model_params

    got = _model_params(["dose_response.ridge=0.5"], ["dose_response", "log_linear"])
    assert got == {"dose_response": {"ridge": 0.5}}
    with pytest.raises(transferome.errors.TransferomeError, match="ridges"):
        _model_params(["dose_response.ridges=0.5"], ["dose_response"])
