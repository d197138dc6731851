"""Cross-species benchmark tasks of the UGE on tiny two-species data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from tests.test_uge import N_GENES, _params, _species
from transferome.benchmark.annotation import annotation_transfer, one_to_one_pairs
from transferome.benchmark.species import species_perturbation
from transferome.errors import DataValidationError
from transferome.models.uge.estimator import UniversalGeneEmbedding

ORDER = np.random.default_rng(3).permutation(N_GENES)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def setting():
    torch.set_num_threads(1)
    mouse = _species(1, "m")
    rat = _species(2, "r", ORDER)
    # rat gene j is mouse gene ORDER[j]; one rat gene has two mouse partners (not one-to-one)
    orthologs = pd.DataFrame(
        {
            "mouse": [f"mg{ORDER[j]}" for j in range(N_GENES)],
            "rat": [f"rg{j}" for j in range(N_GENES)],
        }
    )
    orthologs = pd.concat(
        [orthologs, pd.DataFrame({"mouse": ["mg_extra"], "rat": ["rg0"]})], ignore_index=True
    )
    held = ((rat.obs["context"] == "brain") & (rat.obs["perturbation"] == "drug_a")).to_numpy()
    model = UniversalGeneEmbedding(**_params(label_key="context", max_epochs=40)).fit(
        {"mouse": mouse, "rat": rat[~held]}, labelled_species=["mouse"]
    )
    return model, mouse, rat, orthologs


def test_one_to_one_pairs_drop_ambiguous_genes():
    table = pd.DataFrame({"a": ["x", "y", "y", "z"], "b": ["1", "2", "3", "4"]})
    pairs = one_to_one_pairs(table, "a", "b")
    assert pairs.values.tolist() == [["x", "1"], ["z", "4"]]


def test_annotation_transfer_table(setting):
    model, mouse, rat, orthologs = setting
    table = annotation_transfer(
        model,
        mouse,
        rat,
        source_species="mouse",
        target_species="rat",
        label_key="context",
        gene_map=orthologs,
        source_column="mouse",
        target_column="rat",
        n_genes=N_GENES,
    )
    assert set(table["model"]) == {"uge", "ortholog_logistic", "ortholog_knn", "random"}
    overall = table[table["class"] == "all"].set_index("model")["accuracy"]
    # three balanced organs: the random model expects 1/3
    assert overall["random"] == pytest.approx(1 / 3)
    assert overall["uge"] > 0.9
    assert overall["ortholog_logistic"] > 0.9
    per_class = table[(table["model"] == "uge") & (table["class"] != "all")]
    assert sorted(per_class["class"]) == ["brain", "heart", "liver"]
    assert (per_class["n"] == 15).all()
    with pytest.raises(DataValidationError, match="'tissue'"):
        annotation_transfer(
            model,
            mouse,
            rat,
            source_species="mouse",
            target_species="rat",
            label_key="tissue",
            gene_map=orthologs,
            source_column="mouse",
            target_column="rat",
        )


def test_species_perturbation_scores_every_model(setting):
    model, mouse, rat, orthologs = setting
    task = {
        "source_species": "mouse",
        "target_species": "rat",
        "gene_map": orthologs,
        "source_column": "mouse",
        "target_column": "rat",
    }
    data, held_out = {"mouse": mouse, "rat": rat}, [("brain", "drug_a")]
    scores = species_perturbation(
        model,
        data,
        held_out,
        **task,
        n_degs=10,
        gene_maps={"renamed": orthologs.set_axis(["source_gene", "target_gene"], axis=1)},
        gene_sets={"first": [f"rg{j}" for j in range(20)]},
    )
    maps = ("orthologs", "uge_map", "renamed")
    models = {"uge_drug", "uge_species", "control"}
    models |= {f"{kind}_{name}" for kind in ("additive", "stacked") for name in maps}
    assert set(scores["model"]) == models
    assert set(scores["genes"]) == {"all", "first"}
    first = scores[(scores["genes"] == "first") & (scores["metric"] == "mse")]
    assert len(first) == len(models)
    # the same table under other column names gives the same predictions
    mse_all = scores[(scores["genes"] == "all") & (scores["metric"] == "mse")]
    by_model = mse_all.set_index("model")["value"]
    assert by_model["additive_renamed"] == pytest.approx(by_model["additive_orthologs"])
    with pytest.raises(DataValidationError, match="'broken'"):
        species_perturbation(model, data, held_out, **task, gene_maps={"broken": orthologs})
    scores = scores[scores["genes"] == "all"]
    mse = scores[scores["metric"] == "mse"].set_index("model")["value"]
    assert mse["uge_drug"] < mse["control"]
    assert mse["additive_orthologs"] < mse["control"]
    r2 = scores[scores["metric"] == "pearson_squared"].set_index("model")["value"]
    assert ((r2 >= 0) & (r2 <= 1)).all()


def test_species_transfer_ties_tokens_through_the_gene_map(setting):
    from transferome.benchmark.species import species_transfer

    _, mouse, rat, orthologs = setting
    result = species_transfer(
        {"mouse": mouse, "rat": rat},
        source_species="mouse",
        target_species="rat",
        gene_map=orthologs,
        source_column="mouse",
        target_column="rat",
        perturbations=["drug_a"],
        model=UniversalGeneEmbedding(**_params(label_key="context", max_epochs=1)),
        ceiling=False,
        keep_models=True,
    )
    network = result.fitted["uge"].network_
    # every rat gene has a mouse ortholog in the table: each is in a shared token group
    assert network.config.n_groups >= N_GENES - 1
    assert set(result.results["model"]) == {"control", "additive_orthologs", "uge"}
