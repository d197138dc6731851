"""The simulator: structure, determinism, separation of the truth, and data that behave like
real data with transfer tasks neither trivial nor impossible."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from transferome.data import validate
from transferome.datasets import ORGANS, GenerativeParams, SimulatedAtlas, simulate
from transferome.errors import DataValidationError

DRUGS = ("tetracycline", "drug_a", "drug_b")


@pytest.fixture(scope="module")
def atlas() -> SimulatedAtlas:
    return simulate(seed=0)


@pytest.fixture(scope="module")
def cells() -> SimulatedAtlas:
    return simulate(
        "single_cell",
        seed=1,
        drugs=("d1", "d2", "d3", "d4"),
        combinations=2,
        cells_per_group=15,
        n_genes=300,
    )


def _group_means(adata) -> pd.DataFrame:
    key = adata.obs["context"].astype(str) + "|" + adata.obs["perturbation"].astype(str)
    return pd.DataFrame(np.asarray(adata.X), columns=adata.var_names).groupby(key.to_numpy()).mean()


def _row_corr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    return (a * b).sum(axis=1) / np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))


def test_bulk_design_and_schema(atlas: SimulatedAtlas) -> None:
    assert atlas.species == ("mouse", "rat")
    for species, adata in atlas.adatas.items():
        description = validate(adata, layer="counts", require_counts=True)
        assert description.species == (species,)
        assert set(description.contexts) == {*ORGANS, "PBMC"}
        assert set(description.perturbations) == set(DRUGS)
        assert {"day", "batch", "dose", "sample"} <= set(adata.obs.columns)
        # 40 animals: 10 organs at necropsy and 5 blood draws each.
        assert adata.n_obs == 40 * (10 + 5)
        assert 1800 <= adata.n_vars <= 2200
        assert sp.isspmatrix_csr(adata.layers["counts"])
        organs = adata.obs[adata.obs["context"] != "PBMC"]
        assert (organs.groupby(["context", "perturbation"], observed=True).size() == 10).all()
        blood = adata.obs[adata.obs["context"] == "PBMC"]
        assert (blood.loc[blood["day"] <= 3, "perturbation"] == "control").all()
        assert set(blood.loc[blood["day"] > 3, "perturbation"]) == {"control", *DRUGS}
        assert (adata.obs.loc[adata.obs["perturbation"] == "control", "dose"] == 0).all()


def test_x_is_log_normalised_counts(atlas: SimulatedAtlas) -> None:
    adata = atlas.adatas["mouse"]
    counts = adata.layers["counts"].toarray()
    assert np.array_equal(counts, np.round(counts))
    expected = np.log1p(counts / counts.sum(axis=1, keepdims=True) * 1e4)
    np.testing.assert_allclose(np.asarray(adata.X), expected, rtol=1e-4, atol=1e-5)


def test_deterministic_from_seed() -> None:
    small = {"n_genes": 200, "animals_per_group": 2, "contexts": ("liver", "kidney")}
    a, b, c = simulate(seed=3, **small), simulate(seed=3, **small), simulate(seed=4, **small)
    for s in a.species:
        assert np.array_equal(
            a.adatas[s].layers["counts"].toarray(), b.adatas[s].layers["counts"].toarray()
        )
        assert a.adatas[s].obs.equals(b.adatas[s].obs)
    pd.testing.assert_frame_equal(a.orthologs, b.orthologs)
    first, other = a.adatas["mouse"].layers["counts"], c.adatas["mouse"].layers["counts"]
    assert first.shape != other.shape or not np.array_equal(first.toarray(), other.toarray())


def test_truth_is_kept_apart(atlas: SimulatedAtlas) -> None:
    public = {"source_species", "source_gene", "target_species", "target_gene"}
    assert set(atlas.orthologs.columns) == public | {"sequence_identity", "homology_type"}
    for adata in atlas.adatas.values():
        assert list(adata.var.columns) == []
        assert set(adata.uns["transferome"]) == {"simulated", "mode", "seed", "species"}
        assert not {"diverged", "functional_similarity", "ancestral_gene"} & set(adata.obs)
    truth = atlas.truth.correspondence
    diverged = truth[truth["diverged"] & truth["in_ortholog_table"]]
    assert len(diverged) > 20
    # Diverged genes keep their sequence identity: the ortholog table cannot tell them apart.
    merged = atlas.orthologs.merge(diverged, on=["source_gene", "target_gene"])
    assert len(merged) == len(diverged)
    assert merged["sequence_identity_x"].min() >= 0.7
    assert truth.loc[~truth["in_ortholog_table"]].shape[0] > 0
    assert set(atlas.orthologs["homology_type"]) == {"one2one", "one2many", "many2many"}


def test_truth_means_match_observed_means(atlas: SimulatedAtlas) -> None:
    adata, truth = atlas.adatas["rat"], atlas.truth.means["rat"]
    observed = _group_means(adata)
    for context, perturbation in [("liver", "drug_a"), ("heart", "control")]:
        row = np.flatnonzero(
            (truth.obs["context"] == context) & (truth.obs["perturbation"] == perturbation)
        )[0]
        r = np.corrcoef(truth.X[row], observed.loc[f"{context}|{perturbation}"])[0, 1]
        assert r > 0.97
    controls = truth.obs["perturbation"] == "control"
    assert np.abs(truth.layers["change"][controls.to_numpy()]).max() == 0


def test_variance_grows_with_mean_like_negative_binomial(atlas: SimulatedAtlas) -> None:
    adata = atlas.adatas["mouse"]
    group = (
        (adata.obs["context"] == "liver") & (adata.obs["perturbation"] == "control")
    ).to_numpy()
    counts = adata.layers["counts"][group].toarray()
    mean, var = counts.mean(axis=0), counts.var(axis=0, ddof=1)
    expressed = mean > 5
    assert np.mean(var[expressed] > mean[expressed]) > 0.95  # overdispersed vs Poisson
    slope = np.polyfit(np.log(mean[expressed]), np.log(var[expressed]), 1)[0]
    assert 1.6 < slope < 2.3  # NB: var = mu + phi mu^2 gives slope 2 for large mu


def test_most_genes_unchanged_a_minority_strongly(atlas: SimulatedAtlas) -> None:
    change = atlas.truth.means["mouse"].layers["change"]
    perturbed = (atlas.truth.means["mouse"].obs["perturbation"] != "control").to_numpy()
    magnitude = np.abs(change[perturbed])
    unchanged = np.mean(magnitude < 0.2, axis=1)
    strong = np.mean(magnitude > 1.0, axis=1)
    assert np.median(unchanged) > 0.6
    assert 0.002 < np.median(strong) < 0.15


def test_additive_beats_control_but_is_not_perfect(atlas: SimulatedAtlas) -> None:
    ratios, noise_ratios = [], []
    for species, adata in atlas.adatas.items():
        means = _group_means(adata)
        truth = atlas.truth.means[species]
        for organ in ORGANS:
            for drug in DRUGS:
                observed = means.loc[f"{organ}|{drug}"].to_numpy()
                control = means.loc[f"{organ}|control"].to_numpy()
                shifts = [
                    means.loc[f"{o}|{drug}"].to_numpy() - means.loc[f"{o}|control"].to_numpy()
                    for o in ORGANS
                    if o != organ
                ]
                additive = control + np.mean(shifts, axis=0)
                row = np.flatnonzero(
                    (truth.obs["context"] == organ) & (truth.obs["perturbation"] == drug)
                )[0]
                err_control = np.mean((control - observed) ** 2)
                err_additive = np.mean((additive - observed) ** 2)
                err_truth = np.mean((truth.X[row] - observed) ** 2)
                ratios.append(err_additive / err_control)
                noise_ratios.append(err_additive / err_truth)
    assert np.median(ratios) < 0.6  # clearly better than predicting no change
    assert np.median(noise_ratios) > 2.0  # far from the noise floor: not exact
    assert max(ratios) > 0.8  # some cells (e.g. the brain) are hard


def test_reactome_similarity_follows_function_not_sequence(atlas: SimulatedAtlas) -> None:
    reactomes = {}
    for species, adata in atlas.adatas.items():
        means = _group_means(adata)
        columns = [means.loc[f"{o}|{d}"] - means.loc[f"{o}|control"] for o in ORGANS for d in DRUGS]
        reactomes[species] = pd.DataFrame(columns).T
    pairs = atlas.truth.correspondence
    pairs = pairs[pairs["homology_type"] == "one2one"]
    mouse = reactomes["mouse"].loc[pairs["source_gene"]].to_numpy()
    rat = reactomes["rat"].loc[pairs["target_gene"]].to_numpy()
    similarity = _row_corr(mouse, rat)
    rng = np.random.default_rng(0)
    random_rat = reactomes["rat"].to_numpy()[rng.integers(0, len(reactomes["rat"]), len(pairs))]
    random_similarity = _row_corr(mouse, random_rat).mean()
    diverged = pairs["diverged"].to_numpy()
    kept = similarity[~diverged].mean()
    assert kept > random_similarity + 0.15
    assert similarity[diverged].mean() < kept - 0.25


def test_pancreas_has_fewer_counts_and_more_noise(atlas: SimulatedAtlas) -> None:
    adata = atlas.adatas["mouse"]
    totals = np.asarray(adata.layers["counts"].sum(axis=1)).ravel()
    context = adata.obs["context"].to_numpy()
    assert np.median(totals[context == "pancreas"]) < 0.5 * np.median(totals[context == "liver"])
    x = np.asarray(adata.X)
    control = (adata.obs["perturbation"] == "control").to_numpy()
    spread = {o: x[(context == o) & control].std(axis=0).mean() for o in ("pancreas", "liver")}
    assert spread["pancreas"] > 1.5 * spread["liver"]


def test_single_cell_mode(cells: SimulatedAtlas) -> None:
    adata = cells.adatas["human"]
    description = validate(adata)
    assert description.contexts == ("A549", "K562", "MCF7")
    assert len(description.combinations) == 2
    assert sp.issparse(adata.X)
    assert set(adata.obs["dose"]) == {0.0, 0.1, 1.0, 10.0}
    assert (adata.obs["perturbation"] == "control").sum() == 3 * 15 * 3
    zeros = 1 - adata.layers["counts"].nnz / np.prod(adata.shape)
    assert zeros > 0.3  # sparse like droplet data
    # Stronger responses at higher doses (Hill curve).
    truth = cells.truth.means["human"]
    single = truth.obs["perturbation"] == "d1"
    size = {
        d: np.abs(truth.layers["change"][(single & (truth.obs["dose"] == d)).to_numpy()]).mean()
        for d in (0.1, 1.0, 10.0)
    }
    assert size[0.1] < size[1.0] < size[10.0]
    assert cells.orthologs.empty


def test_combinations_are_not_additive(cells: SimulatedAtlas) -> None:
    effects = cells.truth.program_effects
    combo = next(p for p in effects["perturbation"].unique() if "+" in p)
    a, b = combo.split("+")
    pick = (effects["context"] == "A549") & (effects["dose"] == 10.0)

    def shift(label: str) -> np.ndarray:
        return effects.loc[pick & (effects["perturbation"] == label), "shift"].to_numpy()

    residual = shift(combo) - shift(a) - shift(b)
    assert np.abs(residual).max() > 0.05


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mode": "spatial"}, "mode"),
        ({"drugs": ("a", "a")}, "unique"),
        ({"drugs": ("a+b",)}, "may not contain"),
        ({"doses": (-1.0,)}, "positive"),
        ({"combinations": ("tetracycline+nope",)}, "two of the drugs"),
        ({"combinations": 10}, "pairs"),
        ({"n_genes": 1}, "n_genes"),
    ],
)
def test_bad_arguments_are_named(kwargs: dict, message: str) -> None:
    with pytest.raises(DataValidationError, match=message):
        simulate(**kwargs)


def test_bad_params_are_named() -> None:
    with pytest.raises(DataValidationError, match="p_loss"):
        GenerativeParams(p_loss=1.5)
    with pytest.raises(DataValidationError, match="bulk_dispersion"):
        GenerativeParams(bulk_dispersion=-1.0)
