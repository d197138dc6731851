"""The structured context dependence of the simulator: each part does what it says, the
defaults are calibrated so that models can show their worth, and the unstructured atlas of
the first release is reproduced exactly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from transferome.benchmark import TRUTH, run_task
from transferome.datasets import QUICK, GenerativeParams, simulate
from transferome.datasets._effects import headroom
from transferome.errors import DataValidationError

# Totals of the counts of `simulate(mode, seed=0, **QUICK[mode])` as the first release (without
# structured context dependence) generated them.
UNSTRUCTURED_TOTALS = {
    ("bulk", "mouse"): 363082496,
    ("bulk", "rat"): 352932672,
    ("single_cell", "human"): 2948133,
}
UNSTRUCTURED_CHANGE_SUMS = {
    ("bulk", "mouse"): -1314.799,
    ("bulk", "rat"): -1917.808,
    ("single_cell", "human"): -1090.116,
}


def _scores(mode: str, seed: int, params: GenerativeParams | None = None, **kwargs) -> dict:
    atlas = simulate(mode, seed=seed, params=params, **kwargs)
    species = atlas.species[0]
    result = run_task(
        "transfer",
        atlas.adatas[species],
        models=["control", "additive", "similar"],
        ceiling=False,
        truth=atlas.truth.profiles(species),
    )
    summary = result.summary.set_index(["model", "metric"])["mean"]
    return {
        (model, metric): float(summary.get((model, metric), np.nan))
        for model in ("control", "additive", "similar", TRUTH)
        for metric in ("pearson_delta", "r2_delta")
    }


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bulk_calibration(seed: int) -> None:
    """Organ transfer, every (organ, drug) held out: the targets of the defaults."""
    s = _scores("bulk", seed)
    additive = s[("additive", "pearson_delta")]
    assert 0.75 <= additive <= 0.88
    assert s[("similar", "pearson_delta")] >= additive + 0.02
    assert s[(TRUTH, "pearson_delta")] >= additive + 0.06
    # the control predicts no change: pearson_delta undefined, and no change explained
    assert np.isnan(s[("control", "pearson_delta")])
    assert abs(s[("control", "r2_delta")]) < 0.05
    assert s[("additive", "r2_delta")] > s[("control", "r2_delta")] + 0.25


def test_single_cell_ordering() -> None:
    """Held-out (cell line, drug) groups of the default screen: the same ordering."""
    s = _scores("single_cell", 0)
    additive = s[("additive", "pearson_delta")]
    assert additive > 0.3  # far above the control's no change (correlation 0)
    assert s[("similar", "pearson_delta")] > additive
    assert s[(TRUTH, "pearson_delta")] >= s[("similar", "pearson_delta")] + 0.06
    assert s[(TRUTH, "r2_delta")] > s[("control", "r2_delta")] + 0.5


def test_unstructured_atlas_is_reproduced_exactly() -> None:
    for mode in ("bulk", "single_cell"):
        atlas = simulate(mode, seed=0, params=GenerativeParams.unstructured(), **QUICK[mode])
        for species, adata in atlas.adatas.items():
            assert int(adata.layers["counts"].sum()) == UNSTRUCTURED_TOTALS[(mode, species)]
            change = atlas.truth.means[species].layers["change"].astype(np.float64).sum()
            assert change == pytest.approx(UNSTRUCTURED_CHANGE_SUMS[(mode, species)], abs=0.01)


def test_unstructured_atlas_has_nothing_beyond_additive() -> None:
    """Without structure, alike control profiles do not predict alike responses."""
    s = _scores("bulk", 0, GenerativeParams.unstructured())
    assert abs(s[("similar", "pearson_delta")] - s[("additive", "pearson_delta")]) < 0.01
    assert s[(TRUTH, "pearson_delta")] == pytest.approx(0.933, abs=0.005)  # the first release


def test_structured_parts_are_independent_of_each_other() -> None:
    """Switching one part off changes only what it drives: the main stream is untouched."""
    base = simulate(seed=0, **QUICK["bulk"])
    off = simulate(seed=0, params=GenerativeParams(gain_sd=0.0), **QUICK["bulk"])
    assert base.truth.loadings["mouse"].equals(off.truth.loadings["mouse"])
    assert base.orthologs.equals(off.orthologs)
    assert not np.allclose(base.truth.means["mouse"].X, off.truth.means["mouse"].X)


def _shifts(atlas, species="mouse", drug="drug_a") -> pd.DataFrame:
    effects = atlas.truth.program_effects
    rows = effects[(effects["species"] == species) & (effects["perturbation"] == drug)]
    return rows.pivot(index="context", columns="program", values="shift")


def test_gain_is_shared_by_drugs_and_smooth_in_the_context_state() -> None:
    params = GenerativeParams(
        crosstalk_sd=0.0, exposure_sharing=1.0, interaction_sd=0.0, species_program_sd=0.0
    )
    atlas = simulate(seed=3, params=params, **QUICK["bulk"])
    drugs = atlas.truth.drugs
    # without residual, each drug's shift is its effect times the context's gain: the ratio
    # shift / effect of a program is the same for every drug that targets it
    ratios = []
    for drug in drugs.index:
        shift = _shifts(atlas, drug=drug)
        effect = drugs.loc[drug, shift.columns].to_numpy(dtype=float)
        targeted = effect != 0
        ratio = shift.to_numpy()[:, targeted] / effect[targeted]
        ratios.append(pd.DataFrame(ratio, index=shift.index, columns=shift.columns[targeted]))
    shared = [p for p in ratios[0].columns if any(p in r.columns for r in ratios[1:])]
    for r in ratios[1:]:
        for program in set(shared) & set(r.columns):
            a = ratios[0][program] / ratios[0][program].mean()
            b = r[program] / r[program].mean()
            assert np.allclose(a, b, rtol=1e-6)
    # contexts whose program activities are alike have alike gains
    unstructured = simulate(seed=3, params=GenerativeParams.unstructured(), **QUICK["bulk"])
    assert not _shifts(unstructured).equals(_shifts(atlas))


def test_alike_contexts_respond_alike() -> None:
    """Across pairs of organs, the similarity of control profiles predicts the similarity of
    responses in the structured atlas (and much less in the unstructured one)."""

    def association(params: GenerativeParams) -> float:
        atlas = simulate(seed=0, params=params)
        means = atlas.truth.means["mouse"]
        obs = means.obs
        contexts = sorted(set(obs["context"]))
        control = {
            c: means.X[np.flatnonzero((obs.context == c) & (obs.perturbation == "control"))[0]]
            for c in contexts
        }
        values = []
        for drug in ("tetracycline", "drug_a", "drug_b"):
            change = {
                c: means.layers["change"][
                    np.flatnonzero((obs.context == c) & (obs.perturbation == drug))[0]
                ]
                for c in contexts
            }
            xs, ys = [], []
            for i, a in enumerate(contexts):
                for b in contexts[i + 1 :]:
                    xs.append(np.corrcoef(control[a], control[b])[0, 1])
                    ys.append(np.corrcoef(change[a], change[b])[0, 1])
            values.append(pd.Series(xs).corr(pd.Series(ys), method="spearman"))
        return float(np.mean(values))

    assert association(GenerativeParams()) > 0.3
    assert association(GenerativeParams()) > association(GenerativeParams.unstructured()) + 0.2


def test_headroom_damps_changes_at_the_ends() -> None:
    eta = np.array([[-6.0, 0.0, 0.0, 0.0, 6.0]])
    down, up = headroom(eta, 0.5, 2.0, 3.0)
    assert down[0, 0] < 0.55
    assert down[0, 2] > 0.9
    assert up[0, 4] < 0.55
    assert up[0, 2] > 0.9
    ones, _ = headroom(eta, 0.0, 2.0, 3.0)
    assert np.array_equal(ones, np.ones_like(eta))


def test_diverged_orthologs_respond_to_other_programs() -> None:
    atlas = simulate(seed=0, **QUICK["bulk"])
    pairs = atlas.truth.correspondence
    diverged = pairs[pairs["diverged"]]
    assert len(diverged) > 5
    assert (diverged["functional_similarity"].abs() < 1e-12).all()
    unstructured = simulate(seed=0, params=GenerativeParams.unstructured(), **QUICK["bulk"])
    old = unstructured.truth.correspondence
    assert (old.loc[old["diverged"], "functional_similarity"].abs() > 1e-12).any()


def test_synergy_follows_shared_programs() -> None:
    params = GenerativeParams(interaction_sd=0.0, species_program_sd=0.0)
    drugs = ("d1", "d2", "d3", "d4", "d5", "d6")
    atlas = simulate(
        "single_cell",
        seed=2,
        params=params,
        drugs=drugs,
        combinations=15,
        doses=(1000.0,),
        cells_per_group=2,
        n_genes=100,
    )
    effects = atlas.truth.program_effects
    table = atlas.truth.drugs
    programs = [c for c in table.columns if c.startswith("program_")]
    pick = (effects["context"] == "A549") & (effects["dose"] == 1000.0)

    def shift(label: str) -> np.ndarray:
        rows = effects[pick & (effects["perturbation"] == label)].set_index("program")
        return rows.loc[programs, "shift"].to_numpy()

    checked = 0
    for combo in [p for p in effects["perturbation"].unique() if "+" in p]:
        a, b = combo.split("+")
        residual = shift(combo) - shift(a) - shift(b)
        ea, eb = table.loc[a, programs].to_numpy(), table.loc[b, programs].to_numpy()
        both = (ea != 0) & (eb != 0)
        assert np.allclose(residual[~both], 0.0, atol=1e-9)  # no chance part at sd 0
        same = both & (np.sign(ea) == np.sign(eb))
        if same.any():  # two drugs pushing one program the same way saturate it
            total = shift(a) + shift(b)
            assert (np.sign(residual[same]) == -np.sign(total[same])).all()
            checked += 1
    assert checked > 0


def test_bad_structure_params_are_named() -> None:
    with pytest.raises(DataValidationError, match="headroom"):
        GenerativeParams(headroom=1.5)
    with pytest.raises(DataValidationError, match="exposure_sharing"):
        GenerativeParams(exposure_sharing=2.0)
    with pytest.raises(DataValidationError, match="gain_sd"):
        GenerativeParams(gain_sd=-0.1)


def test_truth_profiles_pool_doses_and_name_bad_groups() -> None:
    cells = simulate("single_cell", seed=0, **QUICK["single_cell"])
    means = cells.truth.means["human"]
    obs = means.obs
    rows = np.flatnonzero((obs["context"] == "A549") & (obs["perturbation"] == "drug_01"))
    profile = cells.truth.profiles("human", [("A549", "drug_01")])
    weights = obs["n_obs"].to_numpy()[rows]
    expected = (means.X[rows] * weights[:, None]).sum(0) / weights.sum()
    assert np.allclose(profile.X[0], expected, atol=1e-5)
    assert list(profile.obs.columns) == ["context", "perturbation"]
    with pytest.raises(DataValidationError, match="not in the simulated truth"):
        cells.truth.profiles("human", [("A549", "nope")])
    with pytest.raises(DataValidationError, match="not simulated"):
        cells.truth.profiles("mouse")


def test_params_from_a_mapping_or_a_name() -> None:
    named = simulate(seed=0, params="unstructured", **QUICK["bulk"])
    assert (
        int(named.adatas["mouse"].layers["counts"].sum()) == UNSTRUCTURED_TOTALS[("bulk", "mouse")]
    )
    mapped = simulate(seed=0, params={"gain_sd": 0.0, "ec50_range": [1.0, 2.0]}, **QUICK["bulk"])
    assert mapped.truth.drugs["ec50"].between(1.0, 2.0).all()
    with pytest.raises(DataValidationError, match="unknown GenerativeParams fields"):
        simulate(params={"gains": 1.0})
    with pytest.raises(DataValidationError, match="'unstructured'"):
        simulate(params="flat")
    with pytest.raises(DataValidationError, match="gain_sd must be a number"):
        GenerativeParams(gain_sd="large")
    with pytest.raises(DataValidationError, match="diverged_disjoint must be true or false"):
        GenerativeParams(diverged_disjoint=1)


def test_cli_writes_the_unstructured_atlas(tmp_path) -> None:
    import anndata as ad

    from transferome.cli import main

    assert main(["simulate", "--quick", "--unstructured", "--out", str(tmp_path / "a")]) == 0
    mouse = ad.read_h5ad(tmp_path / "a" / "mouse.h5ad")
    assert int(mouse.layers["counts"].sum()) == UNSTRUCTURED_TOTALS[("bulk", "mouse")]


def test_run_task_scores_the_truth_and_names_what_it_lacks() -> None:
    atlas = simulate(seed=0, **QUICK["bulk"])
    mouse = atlas.adatas["mouse"]
    truth = atlas.truth.profiles("mouse")
    options = {"perturbations": ["drug_a"], "max_splits": 3}
    result = run_task("transfer", mouse, models=["additive"], task_options=options, truth=truth)
    rows = result.results[result.results["model"] == TRUTH]
    assert set(rows["context"]) == set(
        result.results.loc[result.results.model == "additive", "context"]
    )
    assert "1 models" in result.to_markdown()
    # no change layer: the change is computed against the truth's own control rows
    plain = truth.copy()
    del plain.layers["change"]
    again = run_task("transfer", mouse, models=["additive"], task_options=options, truth=plain)
    key = ["context", "perturbation", "metric"]
    first = rows.set_index(key)["value"].sort_index()
    second = again.results[again.results["model"] == TRUTH].set_index(key)["value"].sort_index()
    assert np.allclose(first.to_numpy(), second.to_numpy(), atol=1e-4, equal_nan=True)
    with pytest.raises(DataValidationError, match="no profile of the held-out groups"):
        run_task(
            "transfer",
            mouse,
            models=["additive"],
            task_options=options,
            truth=truth[truth.obs["perturbation"] != "drug_a"].copy(),
        )
    with pytest.raises(DataValidationError, match="lacks"):
        run_task(
            "transfer", mouse, models=["additive"], task_options=options, truth=truth[:, :10].copy()
        )
