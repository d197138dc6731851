"""Reactome completion, experiment suggestions and calibration on the simulator."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from transferome.crossspecies import (
    CompletionConfig,
    Reactome,
    map_genes,
    ortholog_groups,
    predict_reactome,
    reactome,
    reactome_ensemble,
    suggest_experiments,
)
from transferome.errors import DataValidationError
from transferome.metrics import expected_calibration_error, reliability_table, simulation_truth

CONTEXTS = ["brain", "heart", "liver", "lung"]
DRUGS = ["drug_a", "drug_b", "drug_c"]
PAIRS = pd.MultiIndex.from_product([CONTEXTS, DRUGS], names=["context", "perturbation"])
FAST = CompletionConfig(embedding_dim=8, hidden=16, epochs=150, lr=3e-2)


def _low_rank_species(seed: int = 0, n_genes: int = 30) -> dict[str, Reactome]:
    """Two species with the same genes' responses: gene loading x (context, drug) effect."""
    rng = np.random.default_rng(seed)
    loading = rng.normal(size=(n_genes, 2))
    context = rng.normal(size=(len(CONTEXTS), 2))
    drug = rng.normal(size=(len(DRUGS), 2))
    effect = np.array([context[i] * drug[j] for i in range(len(CONTEXTS)) for j in range(3)])
    out = {}
    for k, species in enumerate(["mouse", "rat"]):
        values = loading @ effect.T * (1.0 + 0.1 * k)
        genes = pd.Index([f"{species}{g}" for g in range(n_genes)], name="gene")
        frame = pd.DataFrame(values, index=genes, columns=PAIRS)
        n = pd.DataFrame({"n_treated": 3, "n_control": 3}, index=PAIRS)
        out[species] = Reactome(values=frame, se=frame * 0 + 0.1, n=n, species=species)
    return out


def _orthologs(n_genes: int = 30) -> pd.DataFrame:
    return pd.DataFrame(
        {"mouse": [f"mouse{g}" for g in range(n_genes)], "rat": [f"rat{g}" for g in range(n_genes)]}
    )


def test_ortholog_groups_are_connected_components() -> None:
    table = pd.DataFrame({"a": ["x1", "x2", "x2"], "b": ["y1", "y2", "y3"]})
    groups = ortholog_groups({"s1": ["x1", "x2", "x3"], "s2": ["y1", "y2", "y3"]}, table)
    assert groups["s1"]["x1"] == groups["s2"]["y1"]
    assert groups["s1"]["x2"] == groups["s2"]["y2"] == groups["s2"]["y3"]
    assert groups["s1"]["x3"] not in set(groups["s2"])  # no ortholog: its own group
    assert len({*groups["s1"], *groups["s2"]}) == 3


def test_predict_reactome_completes_a_hidden_cell() -> None:
    data = _low_rank_species()
    hidden = ("rat", "liver", "drug_b")
    out = predict_reactome(data, orthologs=_orthologs(), hide=[hidden], config=FAST)
    measured = data["rat"].values[("liver", "drug_b")]
    predicted = out["rat"].values[("liver", "drug_b")]
    assert np.corrcoef(measured, predicted)[0, 1] > 0.9
    assert np.mean((predicted - measured) ** 2) < 0.2 * np.mean(measured**2)
    # measured entries are kept; the hidden one is marked as predicted
    pd.testing.assert_series_equal(
        out["rat"].values[("heart", "drug_a")], data["rat"].values[("heart", "drug_a")]
    )
    assert out["rat"].n.loc[("liver", "drug_b"), "n_treated"] == 0
    assert np.isnan(out["rat"].se[("liver", "drug_b")]).all()
    again = predict_reactome(data, orthologs=_orthologs(), hide=[hidden], config=FAST)
    pd.testing.assert_frame_equal(again["rat"].values, out["rat"].values)
    with pytest.raises(DataValidationError, match="unknown species"):
        predict_reactome(data, hide=[("dog", "liver", "drug_b")], config=FAST)


def _drop(data: dict[str, Reactome], cells: list[tuple[str, str, str]]) -> dict[str, Reactome]:
    out = {}
    for species, result in data.items():
        values = result.values.copy()
        for s, c, p in cells:
            if s == species:
                values[(c, p)] = np.nan
        out[species] = result.replace(values=values)
    return out


def test_suggestions_prefer_the_least_covered_cell() -> None:
    data = _low_rank_species()
    # rat: drug_c measured only in liver; liver + drug_a missing though liver and drug_a are
    # otherwise well covered
    missing = [("rat", c, "drug_c") for c in ("brain", "heart", "lung")]
    missing.append(("rat", "liver", "drug_a"))
    partial = _drop(data, missing)
    ensemble = reactome_ensemble(partial, config=FAST, n_models=3, random_state=1)
    table = suggest_experiments(partial, 5, ensemble=ensemble)
    assert list(table.columns) == ["rank", "species", "context", "perturbation", "score", "reason"]
    assert len(table) == 4  # only four cells can be measured
    assert table["rank"].tolist() == [1, 2, 3, 4]
    assert table["score"].is_monotonic_decreasing
    assert set(map(tuple, table[["species", "context", "perturbation"]].to_numpy())) == set(missing)
    by_drug = table.groupby("perturbation")["score"].mean()
    assert by_drug["drug_c"] > by_drug["drug_a"]
    assert table.loc[0, "perturbation"] == "drug_c"
    assert "drug_c measured in 1 of 4 contexts of rat" in table.loc[0, "reason"]
    assert "measured in mouse" in table.loc[0, "reason"]
    limited = suggest_experiments(
        partial, 1, candidates=[("rat", "liver", "drug_a")], ensemble=ensemble
    )
    assert limited["context"].tolist() == ["liver"]
    with pytest.raises(DataValidationError, match="unknown species"):
        suggest_experiments(partial, 1, candidates=[("dog", "brain", "drug_a")])
    with pytest.raises(DataValidationError, match="budget"):
        suggest_experiments(partial, 0)
    assert suggest_experiments(data, 3, config=FAST).empty  # nothing left to measure
    # the default ranking, by expected gain (which weighs each drug's size of change: here
    # drug_a's larger change in liver outweighs drug_c's thinner coverage), ranks the same four
    gain = suggest_experiments(partial, 4)
    assert set(map(tuple, gain[["species", "context", "perturbation"]].to_numpy())) == set(missing)
    assert gain["score"].is_monotonic_decreasing
    assert all("in other species" in reason for reason in gain["reason"])
    assert suggest_experiments(data, 3).empty


def test_confidence_is_calibrated_on_the_simulator() -> None:
    from transferome.datasets import simulate

    atlas = simulate(seed=3, n_genes=400, animals_per_group=4)
    mouse, rat = (reactome(atlas.adatas[s]) for s in ("mouse", "rat"))
    one_to_one = atlas.orthologs[atlas.orthologs["homology_type"] == "one2one"]
    anchors = one_to_one.sample(frac=0.5, random_state=0)[["source_gene", "target_gene"]]
    truth = simulation_truth(atlas, "mouse", "rat")
    held_out = truth[~truth["target_gene"].isin(anchors["target_gene"])]
    for method in ("reactome", "combined"):
        mapping = map_genes(mouse, rat, method=method, orthologs=atlas.orthologs, anchors=anchors)
        table = reliability_table(mapping, held_out, n_bins=5)
        assert table["n"].sum() > 150
        assert expected_calibration_error(table) < 0.12, (method, table)
