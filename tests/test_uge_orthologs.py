"""Tied ortholog tokens, unlabelled-target training and integration metrics of the UGE."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from tests.test_uge import N_GENES, _params, _species
from tests.test_uge_species import ORDER
from transferome.data.species import ortholog_links
from transferome.errors import DataValidationError
from transferome.models.uge.estimator import UniversalGeneEmbedding
from transferome.models.uge.metrics import integration_scores, ortholog_pca
from transferome.models.uge.network import alignment_loss, coral_loss, mmd_loss
from transferome.models.uge.orthologs import ortholog_groups, shared_token_genes

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def pair():
    return {"mouse": _species(1, "m"), "rat": _species(2, "r", ORDER)}


def _table(*, one_to_many: bool = True) -> pd.DataFrame:
    """Rat gene j is mouse gene ORDER[j]; rat rg0 also pairs with mouse mg{ORDER[1]}."""
    table = pd.DataFrame(
        {
            "mouse": [f"mg{ORDER[j]}" for j in range(N_GENES)],
            "rat": [f"rg{j}" for j in range(N_GENES)],
        }
    )
    if one_to_many:
        extra = pd.DataFrame({"mouse": [f"mg{ORDER[1]}", "mg_absent"], "rat": ["rg0", "rg5"]})
        table = pd.concat([table, extra], ignore_index=True)
    return table


def _one_to_one() -> dict[str, str]:
    """rat gene -> its only mouse ortholog (the genes outside the one-to-many group)."""
    return {f"rg{j}": f"mg{ORDER[j]}" for j in range(2, N_GENES)}


def _fast(**changes) -> dict:
    return _params(**{"n_tokens": 12, "max_epochs": 20, **changes})


# -- ortholog groups ----------------------------------------------------------------------------
def test_groups_join_many_to_many_families_and_skip_unknown_genes():
    links = pd.DataFrame(
        {
            "species_a": ["a", "a", "a", "a"],
            "gene_a": ["x1", "x2", "x3", "zz"],
            "species_b": ["b", "b", "b", "b"],
            "gene_b": ["y1", "y1", "y3", "y4"],
        }
    )
    genes = {"a": ["x1", "x2", "x3", "x4"], "b": ["y1", "y3", "y4"]}
    groups = ortholog_groups(links, genes, {"a": 0, "b": 4})
    # x1, x2 and y1 form one family; x3-y3 a pair; x4 and y4 (its partner is unknown) untied
    assert groups.tolist() == [0, 0, 1, -1, 0, 1, -1]


def test_links_read_long_and_wide_layouts():
    wide = ortholog_links(
        _table(one_to_many=False).rename(columns={"mouse": "mouse_gene"}), ["mouse", "rat"]
    )
    long = ortholog_links(
        pd.DataFrame(
            {
                "source_species": "mouse",
                "source_gene": _table(one_to_many=False)["mouse"],
                "target_species": "rat",
                "target_gene": _table(one_to_many=False)["rat"],
                "homology_type": "one2one",
            }
        ),
        ["mouse", "rat"],
    )
    assert wide.equals(long)
    assert len(wide) == N_GENES


def test_bad_ortholog_tables_are_named(pair):
    model = UniversalGeneEmbedding(**_fast(max_epochs=0))
    with pytest.raises(DataValidationError, match=r"which ortholog table columns.*'left'"):
        model.fit(pair, orthologs=pd.DataFrame({"left": ["a"], "right": ["b"]}))
    with pytest.raises(DataValidationError, match="has no column"):
        model.fit(pair, orthologs=_table(), ortholog_columns={"mouse": "mouse", "rat": "ratgene"})
    with pytest.raises(DataValidationError, match="joins two genes of the data"):
        model.fit(pair, orthologs=pd.DataFrame({"mouse": ["q1"], "rat": ["q2"]}))


def test_shared_tokens_pick_the_same_groups_in_every_species():
    groups = np.array([0, 1, 2, -1, 1, 0, 2, -1])  # species a: 0-3, species b: 4-7
    # the untied genes (3 and 7) vary most, yet the groups come first
    variances = {"a": np.array([5.0, 1.0, 3.0, 9.0]), "b": np.array([2.0, 6.0, 4.0, 10.0])}
    chosen = shared_token_genes(variances, groups, {"a": 0, "b": 4}, 2)
    # group scores: g0 (0.75 + 0.5) / 2, g1 (0.25 + 0.25) / 2, g2 (0.5 + 0.75) / 2: g0, g2
    assert chosen["a"].tolist() == [0, 2]
    assert chosen["b"].tolist() == [1, 2]
    # more tokens than groups: the untied genes fill the rest
    assert shared_token_genes(variances, groups, {"a": 0, "b": 4}, 4)["a"].tolist() == [0, 1, 2, 3]


# -- tied tokens ----------------------------------------------------------------------------------
def test_step_zero_model_maps_one_to_one_orthologs_to_each_other(pair):
    model = UniversalGeneEmbedding(**_fast(max_epochs=0)).fit(pair, orthologs=_table())
    assert model.history_.empty
    best = model.map_genes("mouse", "rat").set_index("target_gene")["source_gene"]
    truth = _one_to_one()
    assert all(best[r] == m for r, m in truth.items())
    # the one-to-many family shares its token: rg0 matches one of its two mouse partners
    assert best["rg0"] in {f"mg{ORDER[0]}", f"mg{ORDER[1]}"}
    # the ties decide: with a table pairing every rat gene to the wrong mouse gene, the
    # untrained network maps each rat gene to that wrong partner
    wrong = pd.DataFrame(
        {
            "mouse": [f"mg{ORDER[(j + 1) % N_GENES]}" for j in range(N_GENES)],
            "rat": [f"rg{j}" for j in range(N_GENES)],
        }
    )
    shifted = UniversalGeneEmbedding(**_fast(max_epochs=0)).fit(pair, orthologs=wrong)
    mapped = shifted.map_genes("mouse", "rat").set_index("target_gene")["source_gene"]
    assert all(mapped[f"rg{j}"] == f"mg{ORDER[(j + 1) % N_GENES]}" for j in range(N_GENES))


def test_tie_penalty_keeps_orthologs_together_in_training(pair):
    model = UniversalGeneEmbedding(**_fast(tie_weight=10.0)).fit(pair, orthologs=_table())
    best = model.map_genes("mouse", "rat").set_index("target_gene")["source_gene"]
    assert np.mean([best[r] == m for r, m in _one_to_one().items()]) >= 0.9
    assert np.isfinite(model.history_["train_tie"]).all()
    # an unseen species is still embedded through the description network
    frame = model.gene_embeddings(adata=pair["rat"])
    assert frame.shape == (N_GENES, model.d_model)


# -- unlabelled target ----------------------------------------------------------------------------
def _state(model: UniversalGeneEmbedding) -> dict[str, np.ndarray]:
    return {k: v.numpy().copy() for k, v in model.network_.state_dict().items()}


def _shuffled_rat_labels(pair) -> dict:
    rat = pair["rat"].copy()
    rat.obs["context"] = np.random.default_rng(0).permutation(rat.obs["context"].to_numpy())
    return {"mouse": pair["mouse"], "rat": rat}


@pytest.mark.parametrize("alignment", ["coral", "mmd"])
def test_unlabelled_target_training_reads_no_target_label(pair, alignment):
    params = _fast(label_key="context", alignment=alignment, max_epochs=4)
    fits = [
        UniversalGeneEmbedding(**params).fit(data, labelled_species=["mouse"], orthologs=_table())
        for data in (pair, _shuffled_rat_labels(pair))
    ]
    assert "train_alignment" in fits[0].history_
    first, second = (_state(m) for m in fits)
    for key in first:
        np.testing.assert_array_equal(first[key], second[key], err_msg=key)


def test_own_descriptions_do_read_the_target_labels(pair):
    # the check above can fail: describing rat genes by rat's own contexts uses its labels
    params = _fast(label_key="context", unlabelled_descriptions="own", max_epochs=2)
    first, second = (
        _state(
            UniversalGeneEmbedding(**params).fit(d, labelled_species=["mouse"], orthologs=_table())
        )
        for d in (pair, _shuffled_rat_labels(pair))
    )
    assert not np.array_equal(first["descriptions"], second["descriptions"])


def test_head_trained_on_source_labels_transfers(pair):
    model = UniversalGeneEmbedding(
        **_params(
            label_key="context",
            alignment="coral",
            values="standardised",
            pooled_cls=True,
            balance_classes=True,
            max_epochs=40,
        )
    ).fit(pair, labelled_species=["mouse"], orthologs=_table())
    predicted = model.predict_labels(pair["rat"], species="rat")
    assert np.mean(predicted == pair["rat"].obs["context"].to_numpy()) >= 0.9


# -- persistence ----------------------------------------------------------------------------------
def test_save_load_round_trip_of_tied_model(pair, tmp_path):
    model = UniversalGeneEmbedding(
        **_fast(
            label_key="context",
            alignment="coral",
            values="standardised",
            pooled_cls=True,
            balance_classes=True,
            max_epochs=3,
        )
    ).fit(pair, labelled_species=["mouse"], orthologs=_table())
    folder = model.save(tmp_path / "tied")
    assert sorted(p.name for p in folder.iterdir()) == ["model.json", "weights.safetensors"]
    meta = json.loads((folder / "model.json").read_text())
    assert meta["extra"]["config"]["n_groups"] == N_GENES - 1
    loaded = UniversalGeneEmbedding.load(folder)
    np.testing.assert_array_equal(
        loaded.network_.gene_groups.numpy(), model.network_.gene_groups.numpy()
    )
    np.testing.assert_array_equal(
        loaded.network_.class_weights.numpy(), model.network_.class_weights.numpy()
    )
    for species in ("mouse", "rat"):
        for a, b in zip(loaded.token_scaling_[species], model.token_scaling_[species], strict=True):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(
            loaded.transform(pair[species], species=species),
            model.transform(pair[species], species=species),
            atol=1e-6,
        )
    pd.testing.assert_frame_equal(
        loaded.map_genes("mouse", "rat", top_k=2), model.map_genes("mouse", "rat", top_k=2)
    )


# -- alignment and integration metrics -------------------------------------------------------------
def test_alignment_terms_vanish_only_for_matching_distributions():
    rng = torch.Generator().manual_seed(0)
    a = torch.randn(200, 4, generator=rng)
    b = torch.randn(200, 4, generator=rng)
    for fn in (coral_loss, mmd_loss):
        assert fn(a, b) < 0.1 * fn(a, b + 2.0)
    species = torch.tensor([0] * 200 + [1] * 200)
    z = torch.cat([a, b + 2.0])
    assert alignment_loss(z, species, "coral") > 1.0
    assert alignment_loss(z, species, "none") == 0
    assert alignment_loss(z[:200], species[:200], "coral") == 0  # one species in the batch


def test_integration_scores_tell_mixed_from_separated_spaces():
    rng = np.random.default_rng(0)
    labels = np.repeat(["x", "y"], 100)
    centre = np.where(labels == "x", 0.0, 6.0)[:, None]
    species = np.tile(["a", "b"], 100)
    mixed = centre + rng.normal(size=(200, 3))
    apart = mixed + np.where(species == "a", 0.0, 30.0)[:, None]
    good = integration_scores(mixed, species, labels, source="a")
    bad = integration_scores(apart, species, labels, source="a")
    assert good["species_mixing"] > 0.8 > 0.1 > bad["species_mixing"]
    assert good["ilisi"] > 0.8 > 0.1 > bad["ilisi"]
    assert good["knn_label_accuracy"] > 0.95
    assert good["cross_species_knn_accuracy"] > 0.95
    assert good["label_silhouette"] > 0.7
    with pytest.raises(DataValidationError, match="two or more species"):
        integration_scores(mixed, ["a"] * 200, labels)


def test_ortholog_pca_places_both_species_in_one_space(pair):
    pairs = _table(one_to_many=False)
    coords = ortholog_pca(pair, pairs, n_components=5)
    assert coords["mouse"].shape == (pair["mouse"].n_obs, 5)
    assert coords["rat"].shape == (pair["rat"].n_obs, 5)
    labels = np.concatenate([pair[s].obs["context"].to_numpy() for s in pair])
    species = np.repeat(["mouse", "rat"], [pair["mouse"].n_obs, pair["rat"].n_obs])
    z = np.concatenate([coords["mouse"], coords["rat"]])
    assert integration_scores(z, species, labels, k=5)["cross_species_knn_accuracy"] > 0.9
    with pytest.raises(DataValidationError, match="no column for species"):
        ortholog_pca(pair, pairs.rename(columns={"rat": "r"}))
