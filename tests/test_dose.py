"""Dose and time: the schema's covariates, the condition table, the tasks, baselines, model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from anndata import AnnData

from transferome.benchmark.dose import DOSE_TASKS, dose_splits, run_dose_task
from transferome.data import Schema, validate
from transferome.data.dose import condition_table
from transferome.errors import DataValidationError, ModelFileError
from transferome.models.dose import (
    DoseResponse,
    LogLinearDose,
    MeanDose,
    NearestDose,
    get_dose_model,
)

DOSES = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0)
EC50 = {"drugA": 1.0, "drugB": 5.0, "drugC": 0.4}


def _hill(dose: np.ndarray, ec50: float, n: float = 1.5) -> np.ndarray:
    return dose**n / (dose**n + ec50**n)


def planted(
    *,
    noise: float = 0.02,
    doses: tuple[float, ...] = DOSES,
    contexts: tuple[str, ...] = ("lineA", "lineB"),
    replicates: int = 3,
    n_genes: int = 60,
    seed: int = 0,
) -> tuple[AnnData, dict[tuple[str, str], np.ndarray]]:
    """Observations of Hill responses with known EC50s (one amplitude per gene and series)."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(5.0, 7.0, n_genes)
    rows, obs = [], []
    amplitudes = {}
    for c in contexts:
        for _ in range(replicates * 2):
            rows.append(base + noise * rng.normal(size=n_genes))
            obs.append((c, "control", 0.0))
        for drug, ec50 in EC50.items():
            amp = rng.normal(0, 1.0, n_genes)
            amplitudes[(c, drug)] = amp
            for d in doses:
                for _ in range(replicates):
                    rows.append(
                        base + amp * _hill(np.array(d), ec50) + noise * rng.normal(size=n_genes)
                    )
                    obs.append((c, drug, d))
    frame = pd.DataFrame(obs, columns=["context", "perturbation", "dose"])
    frame.index = [f"obs{i}" for i in range(len(frame))]
    adata = AnnData(X=np.vstack(rows).astype(np.float32), obs=frame)
    adata.var_names = [f"g{i}" for i in range(n_genes)]
    return adata, amplitudes


# --------------------------------------------------------------------------- schema


def test_validate_reads_dose_and_time_values() -> None:
    adata, _ = planted()
    adata.obs["time"] = 24.0
    description = validate(adata)
    assert description.doses == DOSES
    assert description.times == (24.0,)
    assert description.schema.time_key == "time"


def test_validate_accepts_ordered_levels_and_refuses_text() -> None:
    adata, _ = planted(doses=(1.0, 2.0, 3.0))
    levels = pd.Categorical(
        adata.obs["dose"].map({0.0: "Control", 1.0: "Low", 2.0: "Middle", 3.0: "High"}),
        categories=["Control", "Low", "Middle", "High"],
        ordered=True,
    )
    adata.obs["dose"] = levels
    assert validate(adata).doses == ("Low", "Middle", "High")  # the controls' level is not read
    adata.obs["dose"] = adata.obs["dose"].astype(str)
    with pytest.raises(DataValidationError, match=r"'dose'.*numbers or an ordered categorical"):
        validate(adata)
    adata.obs["dose"] = pd.Categorical(adata.obs["dose"])  # unordered text levels
    with pytest.raises(DataValidationError, match="unordered categorical"):
        validate(adata)


def test_validate_refuses_negative_dose_on_treated_observations() -> None:
    adata, _ = planted()
    dose = adata.obs["dose"].to_numpy().copy()
    treated = np.flatnonzero(adata.obs["perturbation"].to_numpy() != "control")
    dose[treated[4]] = -1.0
    adata.obs["dose"] = dose
    with pytest.raises(DataValidationError, match=r"negative values on perturbed.*obs4|negative"):
        validate(adata)


def test_condition_table_refuses_missing_dose_and_keeps_input() -> None:
    adata, _ = planted()
    before = adata.obs.copy()
    table = condition_table(adata, schema=Schema(), axis="dose")
    assert len(table.conditions) == 2 * len(EC50) * len(DOSES)
    pd.testing.assert_frame_equal(adata.obs, before)
    dose = adata.obs["dose"].to_numpy().copy()
    dose[np.flatnonzero(adata.obs["perturbation"].to_numpy() != "control")[0]] = np.nan
    adata.obs["dose"] = dose
    validate(adata)  # an unknown dose is allowed in general ...
    with pytest.raises(DataValidationError, match="needs a positive dose"):
        condition_table(adata, schema=Schema(), axis="dose")  # ... but not by the dose tasks
    with pytest.raises(DataValidationError, match="time column"):
        condition_table(adata, schema=Schema(), axis="time")


def test_condition_table_matches_controls_by_experiment() -> None:
    adata, _ = planted(noise=0.0, contexts=("line",), replicates=2)
    clean = condition_table(adata, schema=Schema(), axis="dose")
    # drugA was run in experiment e1 with half of the controls, the rest in e2; each
    # experiment shifts every gene of its arrays, treated and controls alike
    perturbation = adata.obs["perturbation"].to_numpy()
    control_rows = np.flatnonzero(perturbation == "control")
    experiment = np.where(perturbation == "drugA", "e1", "e2").astype(object)
    experiment[control_rows[: len(control_rows) // 2]] = "e1"
    adata.X = adata.X + np.where(experiment == "e1", 0.5, -0.5).astype(np.float32)[:, None]
    adata.obs["exp"] = experiment
    pooled = condition_table(adata, schema=Schema(), axis="dose")
    matched = condition_table(adata, schema=Schema(), axis="dose", match_key="exp")
    assert matched.conditions["control"].str.contains("exp=").all()
    assert np.abs(pooled.deltas - clean.deltas).max() > 0.4  # the offset leaks in
    np.testing.assert_allclose(matched.deltas, clean.deltas, atol=1e-4)  # and is removed
    with pytest.raises(DataValidationError, match="not an obs column"):
        condition_table(adata, schema=Schema(), axis="dose", match_key="plate")


def test_time_series_run_across_contexts_that_are_time_points() -> None:
    adata, _ = planted(contexts=("liver_2h", "liver_8h", "liver_24h"))
    adata.obs["time"] = adata.obs["context"].map(
        {"liver_2h": 2.0, "liver_8h": 8.0, "liver_24h": 24.0}
    )
    table = condition_table(adata, schema=Schema(), axis="time")
    series = table.series()
    # one series per (drug, dose), running across the three contexts
    assert len(series) == len(EC50) * len(DOSES)
    assert all(len(rows) == 3 for rows in series.values())
    first = next(iter(series.values()))
    assert list(table.conditions.loc[first, "context"]) == ["liver_2h", "liver_8h", "liver_24h"]


# --------------------------------------------------------------------------- baselines


def test_baselines_follow_their_definitions() -> None:
    adata, _ = planted(contexts=("line",), doses=(1.0, 2.0, 4.0))
    table = condition_table(adata, schema=Schema(), axis="dose")
    rows = table.series()["line | drugA"]
    low, mid, high = rows
    train = table.subset(np.setdiff1d(np.arange(len(table.conditions)), [mid]))
    query = table.conditions.iloc[[mid]]
    d = table.deltas
    nearest = NearestDose().fit(train).predict(query).delta[0]
    np.testing.assert_allclose(nearest, d[high])  # log 2 is equally far from log 1 and log 4
    interp = LogLinearDose().fit(train).predict(query).delta[0]
    np.testing.assert_allclose(interp, 0.5 * (d[low] + d[high]))
    mean = MeanDose().fit(train).predict(query).delta[0]
    np.testing.assert_allclose(mean, 0.5 * (d[low] + d[high]))
    beyond = table.conditions.iloc[[mid]].assign(position=np.log(100.0))
    np.testing.assert_allclose(LogLinearDose().fit(train).predict(beyond).delta[0], d[high])


def test_unknown_dose_model_and_unfittable_query() -> None:
    with pytest.raises(Exception, match="unknown dose model"):
        get_dose_model("hill_magic")
    adata, _ = planted(contexts=("line",))
    table = condition_table(adata, schema=Schema(), axis="dose")
    model = NearestDose().fit(table)
    query = pd.DataFrame(
        {"series": ["other | drugZ"], "perturbation": ["drugZ"], "position": [0.0]}
    )
    with pytest.raises(DataValidationError, match="no measured condition"):
        model.predict(query)


# --------------------------------------------------------------------------- the model


def test_planted_hill_curve_is_recovered() -> None:
    adata, amplitudes = planted()
    table = condition_table(adata, schema=Schema(), axis="dose")
    model = DoseResponse(slopes=(0.75, 1.5, 3.0)).fit(table)
    assert model.slope_ == 1.5
    ec50 = model.ec50().set_index("perturbation")
    for drug, truth in EC50.items():
        assert ec50.loc[drug, "bracketed"]
        assert ec50.loc[drug, "identified"]
        assert truth / 1.25 < ec50.loc[drug, "ec50"] < truth * 1.25, (drug, ec50.loc[drug, "ec50"])
    # the curve of a series reproduces the planted response between the measured doses
    grid = np.log(np.array([0.2, 0.5, 2.0, 7.0]))
    curve = model.curve("lineA | drugB", grid)
    expected = np.outer(_hill(np.exp(grid), EC50["drugB"]), amplitudes[("lineA", "drugB")])
    assert np.abs(curve.delta - expected).max() < 0.1
    assert curve.lower is not None
    assert (curve.lower <= curve.delta).all()


def test_model_beats_interpolation_on_a_planted_middle_dose() -> None:
    adata, _ = planted(noise=0.05, doses=(0.1, 1.0, 10.0, 100.0))
    result = run_dose_task(adata, "unseen_dose", kinds=["interpolation"], ceiling=False)
    scores = result.summary
    r2 = scores[scores["metric"] == "r2_delta_deg"].set_index("model")["mean"]
    assert r2["dose_response"] > r2["log_linear"] + 0.02
    assert r2["dose_response"] > r2["nearest_dose"]


def test_dose_splits_kinds() -> None:
    adata, _ = planted(contexts=("line",), doses=(1.0, 2.0, 4.0))
    table = condition_table(adata, schema=Schema(), axis="dose")
    kinds = [s.kind for s in dose_splits(table, "point")]
    assert kinds.count("interpolation") == len(EC50)
    assert kinds.count("extrapolation_high") == kinds.count("extrapolation_low") == len(EC50)
    assert dose_splits(table, "series") == []  # one context: no peer to transfer from
    with pytest.raises(DataValidationError, match="holdout"):
        dose_splits(table, "everything")


def test_every_task_runs_with_ceiling_and_intervals() -> None:
    adata, _ = planted(contexts=("c_2h", "c_8h"), doses=(0.3, 1.0, 3.0))
    adata.obs["time"] = adata.obs["context"].map({"c_2h": 2.0, "c_8h": 8.0}).astype(float)
    for task in DOSE_TASKS:
        result = run_dose_task(adata, task, max_splits=6, seed=1)
        models = set(result.results["model"])
        assert {"nearest_dose", "log_linear", "dose_mean", "dose_response", "ceiling"} <= models
        coverage = result.results[result.results["metric"] == "interval_coverage"]
        assert len(coverage)
        assert coverage["value"].between(0, 1).all()
        assert "| held out |" in result.to_markdown()
    transfer = run_dose_task(adata, "dose_transfer", ceiling=False)
    assert set(transfer.results["kind"]) == {"transfer"}


def test_transfer_to_a_new_context_uses_the_peers() -> None:
    adata, _ = planted(noise=0.0, contexts=("lineA", "lineB"))
    table = condition_table(adata, schema=Schema(), axis="dose")
    held = table.conditions.index[table.conditions["series"] == "lineB | drugA"].to_numpy()
    model = DoseResponse().fit(table.subset(np.setdiff1d(np.arange(len(table.conditions)), held)))
    queries = table.conditions.iloc[held]
    pred = model.predict(queries)
    assert set(pred.source) == {"transfer"}
    assert pred.delta.shape == (len(held), table.n_genes)


def test_save_load_round_trip_and_corrupt_file(tmp_path) -> None:
    adata, _ = planted()
    table = condition_table(adata, schema=Schema(), axis="dose")
    model = DoseResponse().fit(table)
    queries = table.conditions.iloc[[0, 5, 9]].assign(position=lambda f: f["position"] + 0.3)
    folder = model.save(tmp_path / "dose_model")
    loaded = DoseResponse.load(folder)
    a, b = model.predict(queries), loaded.predict(queries)
    np.testing.assert_allclose(a.delta, b.delta)
    np.testing.assert_allclose(a.upper, b.upper)
    pd.testing.assert_frame_equal(model.ec50(), loaded.ec50())
    text = (folder / "model.json").read_text()
    (folder / "model.json").write_text(text.replace('"slope"', '"slopes_x"', 1))
    with pytest.raises(ModelFileError):
        DoseResponse.load(folder)


# --------------------------------------------------------------------------- command line


def test_benchmark_command_runs_a_dose_task(tmp_path, capsys) -> None:
    from transferome.cli import main

    adata, _ = planted(doses=(0.3, 1.0, 3.0))
    path = tmp_path / "doses.h5ad"
    adata.write_h5ad(path)
    out = tmp_path / "bench"
    argv = ["benchmark", "unseen_dose", "--data", str(path), "--out", str(out)]
    assert main([*argv, "--max-splits", "4"]) == 0
    printed = capsys.readouterr().out
    assert "| held out | n | nearest_dose | log_linear | dose_mean | dose_response" in printed
    results = pd.read_csv(out / "results.csv")
    assert results["split"].nunique() == 4
    # the transfer task's options and a missing time column are refused by name
    assert main([*argv, "--overwrite", "--holdout", "context"]) == 2
    assert "--holdout: only the transfer task" in capsys.readouterr().err
    time_argv = ["benchmark", "unseen_time", "--data", str(path), "--out", str(tmp_path / "t")]
    assert main(time_argv) == 2
    assert "time column" in capsys.readouterr().err


def test_dose_curve_command_predicts_unmeasured_doses(tmp_path, capsys) -> None:
    from transferome.cli import main

    adata, _ = planted()
    path = tmp_path / "doses.h5ad"
    adata.write_h5ad(path)
    before = path.read_bytes()
    out, ec50 = tmp_path / "curve.csv", tmp_path / "ec50.csv"
    argv = ["dose-curve", str(path), "--perturbation", "drugB", "--context", "lineA"]
    assert main([*argv, "--at", "2,100", "--out", str(out), "--ec50-out", str(ec50)]) == 0
    frame = pd.read_csv(out)
    assert len(frame) == 2 * adata.n_vars
    assert list(frame["kind"].unique()) == ["interpolation", "extrapolation_high"]
    assert (frame["lower"] <= frame["change"]).all()
    assert (frame["change"] <= frame["upper"]).all()
    assert set(pd.read_csv(ec50)["perturbation"]) == set(EC50)
    assert path.read_bytes() == before
    assert main([*argv, "--at", "-1", "--out", str(tmp_path / "x.csv")]) == 2
    assert "must be positive" in capsys.readouterr().err
    assert main([*argv[:3], "drugQ", "--at", "1", "--out", str(tmp_path / "y.csv")]) == 2
    assert "'drugQ' has no measured condition" in capsys.readouterr().err
    assert main([*argv, "--at", "1", "--out", str(out)]) == 2  # exists: not replaced
    assert "--overwrite" in capsys.readouterr().err


def test_validate_and_info_list_doses_and_times(tmp_path, capsys) -> None:
    from transferome.cli import main

    adata, _ = planted(doses=(0.3, 1.0, 3.0))
    adata.obs["time"] = 24.0
    path = tmp_path / "doses.h5ad"
    adata.write_h5ad(path)
    assert main(["validate", str(path)]) == 0
    assert "3 doses, 1 time point)" in capsys.readouterr().out
    assert main(["info", str(path)]) == 0
    printed = capsys.readouterr().out
    assert "doses (obs 'dose'): 0.3, 1, 3" in printed
    assert "times (obs 'time'): 24" in printed
    adata.obs["time"] = "late"  # written to h5ad as a categorical of text
    adata.write_h5ad(path)
    assert main(["validate", str(path)]) == 2
    assert "obs['time'] (time) is an unordered categorical" in capsys.readouterr().err
