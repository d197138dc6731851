"""The split-half noise ceiling against what a noise-free prediction really scores."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from anndata import AnnData
from scipy.stats import spearmanr

from transferome.benchmark import BenchmarkResult, run_task
from transferome.benchmark._run import RESULT_COLUMNS
from transferome.data.schema import Schema
from transferome.errors import DataValidationError
from transferome.metrics import (
    CEILING_COLUMNS,
    METRICS,
    control_means,
    group_means,
    noise_ceiling,
    pearson,
)
from transferome.models import get_model

N_GENES = 2000
FAST = {"linear": get_model("linear").fast_params}


def _screen(
    rng: np.random.Generator,
    groups: dict[tuple[str, str], tuple[int, float]],
    n_control: dict[str, int],
    *,
    noise: float = 1.0,
) -> tuple[AnnData, dict[tuple[str, str], np.ndarray]]:
    """Cells = context baseline + true change + Gaussian noise; returns data and changes."""
    blocks, labels, changes = [], [], {}
    baselines = {c: rng.normal(3.0, 1.0, N_GENES) for c in n_control}
    for context, n in n_control.items():
        blocks.append(baselines[context] + noise * rng.normal(size=(n, N_GENES)))
        labels += [(context, "control")] * n
    for (context, perturbation), (n, scale) in groups.items():
        change = scale * rng.normal(size=N_GENES)
        changes[(context, perturbation)] = change
        blocks.append(baselines[context] + change + noise * rng.normal(size=(n, N_GENES)))
        labels += [(context, perturbation)] * n
    obs = pd.DataFrame(
        labels, columns=["context", "perturbation"], index=[f"o{i}" for i in range(len(labels))]
    )
    adata = AnnData(np.vstack(blocks).astype(np.float32), obs=obs)
    adata.var_names = [f"g{i}" for i in range(N_GENES)]
    return adata, changes


def _measured_changes(adata: AnnData, schema: Schema) -> pd.DataFrame:
    means, controls = group_means(adata, schema=schema), control_means(adata, schema=schema)
    rows = [(c, p) for c, p in means.index if p != schema.control]
    values = means.loc[rows].to_numpy() - controls.loc[[c for c, _ in rows]].to_numpy()
    return pd.DataFrame(values, index=pd.MultiIndex.from_tuples(rows))


def test_ceiling_is_what_the_noise_free_change_scores() -> None:
    rng = np.random.default_rng(0)
    groups = {
        ("a", "weak"): (60, 0.12),
        ("a", "mid"): (100, 0.2),
        ("a", "strong"): (200, 0.4),
        ("b", "few"): (24, 0.3),
        ("b", "mid"): (150, 0.15),
    }
    adata, changes = _screen(rng, groups, {"a": 300, "b": 120})
    schema = Schema()
    table = noise_ceiling(adata, schema=schema, n_splits=20, seed=0)
    assert list(table.columns) == CEILING_COLUMNS
    assert list(zip(table["context"], table["perturbation"], strict=True)) == sorted(groups)
    measured = _measured_changes(adata, schema)
    got = table.set_index(["context", "perturbation"])
    actual = {g: pearson(changes[g], measured.loc[g].to_numpy()) for g in groups}
    assert min(actual.values()) < 0.8  # the groups span low and high ceilings
    for group, score in actual.items():
        assert got.loc[group, "ceiling_pearson_delta"] == pytest.approx(score, abs=0.03), group
        assert got.loc[group, "reliability"] == pytest.approx(
            got.loc[group, "ceiling_pearson_delta"] ** 2
        )
        assert got.loc[group, "n_treated"] == groups[group][0]
        assert got.loc[group, "n_control"] == {"a": 300, "b": 120}[group[0]]
    # the DEG ceiling is computed on the group's own top DEGs (never below the all-gene one
    # here, where the DEGs carry the largest changes)
    assert (got["ceiling_pearson_delta_deg"] >= got["ceiling_pearson_delta"]).all()


def test_sparse_data_seed_and_other_groups() -> None:
    rng = np.random.default_rng(1)
    adata, _ = _screen(rng, {("a", "p"): (40, 0.3), ("a", "q"): (30, 0.3)}, {"a": 50})
    schema = Schema()
    dense = noise_ceiling(adata, schema=schema, seed=3)
    sparse = adata.copy()
    sparse.X = sp.csr_matrix(sparse.X)
    pd.testing.assert_frame_equal(noise_ceiling(sparse, schema=schema, seed=3), dense)
    # a group's ceiling does not depend on the other groups assessed
    alone = noise_ceiling(adata, [("a", "q")], schema=schema, seed=3)
    pd.testing.assert_frame_equal(alone, dense.iloc[[1]].reset_index(drop=True))
    other_seed = noise_ceiling(adata, schema=schema, seed=4)["ceiling_pearson_delta"]
    assert not np.allclose(other_seed, dense["ceiling_pearson_delta"], rtol=0, atol=1e-12)
    assert np.allclose(other_seed, dense["ceiling_pearson_delta"], atol=0.02)


def test_small_groups_are_nan_and_counted() -> None:
    rng = np.random.default_rng(2)
    groups = {("a", "p"): (7, 0.5), ("a", "q"): (8, 0.5), ("b", "p"): (20, 0.5)}
    adata, _ = _screen(rng, groups, {"a": 40, "b": 7})
    table = noise_ceiling(adata, schema=Schema(), min_per_half=4)
    got = table.set_index(["context", "perturbation"])
    assert np.isnan(got.loc[("a", "p"), "ceiling_pearson_delta"])  # 7 < 2 x 4 treated
    assert np.isnan(got.loc[("a", "p"), "ceiling_pearson_delta_deg"])
    assert np.isnan(got.loc[("a", "p"), "reliability"])
    assert got.loc[("a", "p"), "n_treated"] == 7
    assert np.isfinite(got.loc[("a", "q"), "ceiling_pearson_delta"])
    assert np.isnan(got.loc[("b", "p"), "ceiling_pearson_delta"])  # 7 controls < 2 x 4
    assert got.loc[("b", "p"), "n_control"] == 7
    assert int(table["ceiling_pearson_delta"].isna().sum()) == 2


def test_noise_free_group_has_ceiling_one() -> None:
    rng = np.random.default_rng(3)
    base = rng.normal(3.0, 1.0, 300)
    change = rng.normal(size=300)
    x = np.vstack([np.tile(base, (10, 1)), np.tile(base + change, (9, 1))])
    obs = pd.DataFrame(
        {"context": "a", "perturbation": ["control"] * 10 + ["p"] * 9},
        index=[f"o{i}" for i in range(19)],
    )
    table = noise_ceiling(AnnData(x, obs=obs), schema=Schema(), n_degs=20)
    assert table.loc[0, "ceiling_pearson_delta"] == pytest.approx(1.0, abs=1e-9)
    assert table.loc[0, "ceiling_pearson_delta_deg"] == pytest.approx(1.0, abs=1e-9)
    assert table.loc[0, "reliability"] == pytest.approx(1.0, abs=1e-9)


def test_fixed_controls_split_only_the_treated() -> None:
    """Signature data: changes against a zero control; NaN genes are left out."""
    rng = np.random.default_rng(4)
    change = 0.3 * rng.normal(size=N_GENES)
    x = change + rng.normal(size=(40, N_GENES))
    x[rng.random(x.shape) < 0.1] = np.nan
    obs = pd.DataFrame(
        {"context": "line", "perturbation": "drug"}, index=[f"s{i}" for i in range(40)]
    )
    adata = AnnData(x, obs=obs)
    zero = pd.DataFrame(np.zeros((1, N_GENES)), index=["line"], columns=adata.var_names)
    table = noise_ceiling(adata, schema=Schema(), control_means=zero)
    measured = np.nanmean(x, axis=0)
    assert table.loc[0, "n_control"] == 0
    assert table.loc[0, "ceiling_pearson_delta"] == pytest.approx(
        pearson(change, measured), abs=0.03
    )
    # the DEGs are chosen among the measured genes
    assert np.isfinite(table.loc[0, "ceiling_pearson_delta_deg"])
    few = noise_ceiling(adata[:7], schema=Schema(), control_means=zero)
    assert np.isnan(few.loc[0, "ceiling_pearson_delta"])
    with pytest.raises(DataValidationError, match="no control mean"):
        noise_ceiling(adata, schema=Schema(), control_means=zero.rename(index={"line": "x"}))
    with pytest.raises(DataValidationError, match="no observations"):
        noise_ceiling(adata, [("line", "other")], schema=Schema(), control_means=zero)


def test_simulated_single_cell_truth() -> None:
    """On the simulator the ceiling bounds what its noise-free means score, and tracks it.

    The simulator's truth is the log of the expected profile; the mean of logged noisy cells
    sits a little below it (Jensen), so the truth is not quite the best possible prediction
    and scores slightly under the ceiling.
    """
    from transferome.datasets import simulate

    atlas = simulate(mode="single_cell", seed=0)
    species = atlas.species[0]
    adata, truth = atlas.adatas[species], atlas.truth.means[species]
    schema = Schema()
    table = noise_ceiling(adata, schema=schema)
    measured = _measured_changes(adata, schema)
    change = np.asarray(truth.layers["change"], dtype=np.float64)
    scores = []
    for context, perturbation in zip(table["context"], table["perturbation"], strict=True):
        rows = (truth.obs["context"] == context) & (truth.obs["perturbation"] == perturbation)
        noise_free = change[rows.to_numpy()].mean(axis=0)  # the doses have equal cell counts
        scores.append(pearson(noise_free, measured.loc[(context, perturbation)].to_numpy()))
    ceiling = table["ceiling_pearson_delta"].to_numpy()
    gap = ceiling - np.array(scores)
    assert np.isfinite(ceiling).all()
    assert gap.min() > -0.01
    assert gap.mean() < 0.05
    assert spearmanr(ceiling, scores).statistic > 0.95


def _transfer_screen() -> AnnData:
    rng = np.random.default_rng(5)
    groups = {(c, p): (24, 0.3) for c in ("a", "b", "c") for p in ("p", "q")}
    groups[("c", "q")] = (6, 0.3)  # too few cells for a ceiling
    adata, _ = _screen(rng, groups, {"a": 30, "b": 30, "c": 30})
    adata.X = np.clip(adata.X + 5.0, 0.0, None)  # log values are non-negative
    return adata


def test_run_task_reports_ceiling_and_scaled_score() -> None:
    adata = _transfer_screen()
    schema = Schema()
    result = run_task(
        "transfer",
        adata,
        schema=schema,
        models=["control", "additive", "linear"],
        model_params=FAST,
    )
    results = result.results
    assert list(results.columns) == RESULT_COLUMNS
    ceiling = results[results["model"] == "ceiling"]
    assert set(ceiling["metric"]) == {"pearson_delta", "pearson_delta_deg"}
    expected = noise_ceiling(adata, schema=schema, seed=0).set_index(["context", "perturbation"])
    for metric in ("pearson_delta", "pearson_delta_deg"):
        got = ceiling[ceiling["metric"] == metric].set_index(["context", "perturbation"])
        np.testing.assert_allclose(
            got["value"], expected.loc[got.index, f"ceiling_{metric}"], equal_nan=True
        )
        assert (got["split"] == [f"{c}|{p}" for c, p in got.index]).all()
    table = results.set_index(["model", "context", "perturbation", "metric"])["value"]
    table = table.sort_index()
    top = table[("ceiling", "a", "p", "pearson_delta")]
    bottom = table[("additive", "a", "p", "pearson_delta")]
    assert top > bottom
    for model in ("control", "additive", "linear"):
        scaled = table[(model, "a", "p", "scaled_pearson_delta")]
        score = table[(model, "a", "p", "pearson_delta")]
        if np.isfinite(score):
            assert scaled == pytest.approx((score - bottom) / (top - bottom))
        else:
            assert np.isnan(scaled)
    assert table[("additive", "a", "p", "scaled_pearson_delta")] == pytest.approx(0.0)
    assert np.isnan(table[("linear", "c", "q", "scaled_pearson_delta")])  # no ceiling
    summary = result.summary.set_index(["model", "metric"])
    assert summary.loc[("ceiling", "pearson_delta"), "n"] == 5
    assert summary.loc[("ceiling", "pearson_delta"), "n_nan"] == 1
    assert METRICS["scaled_pearson_delta"].best == 1.0
    assert METRICS["scaled_pearson_delta"].higher_is_better
    markdown = result.to_markdown()
    assert "| metric | control | additive | linear | ceiling |" in markdown
    assert "| scaled_pearson_delta ↑ |" in markdown
    assert "3 models" in markdown
    assert "defined in 5 of 6 groups" in markdown


def test_scaled_score_without_additive_and_switched_off() -> None:
    adata = _transfer_screen()
    schema = Schema()
    full = run_task(
        "transfer", adata, schema=schema, models=["additive", "linear"], model_params=FAST
    )
    alone = run_task("transfer", adata, schema=schema, models=["linear"], model_params=FAST)
    assert set(alone.results["model"]) == {"linear", "ceiling"}

    def scaled(result: BenchmarkResult) -> pd.Series:
        rows = result.results.query("model == 'linear' and metric == 'scaled_pearson_delta'")
        return rows.set_index(["context", "perturbation"])["value"]

    pd.testing.assert_series_equal(scaled(alone), scaled(full))
    off = run_task(
        "transfer", adata, schema=schema, models=["linear"], model_params=FAST, ceiling=False
    )
    assert set(off.results["model"]) == {"linear"}
    assert "scaled_pearson_delta" not in set(off.results["metric"])
    assert "ceiling" not in off.to_markdown()
