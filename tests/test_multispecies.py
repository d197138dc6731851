"""MultiSpecies: the data of several species with their ortholog table, as one argument."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from anndata import AnnData

from transferome.benchmark.species import species_transfer
from transferome.crossspecies import suggest_experiments
from transferome.data import MultiSpecies, ortholog_links
from transferome.datasets import simulate
from transferome.errors import DataValidationError
from transferome.models import UniversalGeneEmbedding


@pytest.fixture(scope="module")
def atlas():
    return simulate(
        "bulk",
        seed=2,
        contexts=("liver", "kidney", "heart", "lung"),
        drugs=("drug_a", "drug_b"),
        n_genes=60,
        animals_per_group=2,
    )


def test_a_read_only_mapping_of_species_with_the_table(atlas) -> None:
    multi = atlas.multi_species
    assert multi.species == ("mouse", "rat")
    assert list(multi) == ["mouse", "rat"]
    assert len(multi) == 2
    assert multi["mouse"] is atlas.adatas["mouse"]
    assert dict(multi.items()) == dict(atlas.adatas)
    mouse = multi["mouse"]
    assert f"mouse: {mouse.n_obs} x {mouse.n_vars}" in repr(multi)
    assert f"{len(atlas.orthologs)} orthologs" in repr(multi)
    with pytest.raises(TypeError):
        multi.adatas["cow"] = multi["mouse"]  # type: ignore[index]
    with pytest.raises(DataValidationError, match="species 'cow' not in the data"):
        multi["cow"]
    assert "cow" not in multi
    assert "rat" in multi
    assert multi.get("cow") is None
    assert multi.get("rat") is multi["rat"]
    with pytest.raises(DataValidationError, match="non-empty mapping"):
        MultiSpecies({})
    with pytest.raises(DataValidationError, match="is a ndarray, expected an AnnData"):
        MultiSpecies({"mouse": np.zeros((2, 2))})  # type: ignore[dict-item]
    with pytest.raises(DataValidationError, match="must be a pandas DataFrame"):
        MultiSpecies(dict(atlas.adatas), orthologs=[("a", "b")])  # type: ignore[arg-type]
    with pytest.raises(DataValidationError, match="no ortholog table"):
        MultiSpecies(dict(atlas.adatas)).links()


def test_from_adata_splits_by_the_species_column(atlas) -> None:
    import anndata as ad

    joined = ad.concat(
        [atlas.adatas["mouse"][:, :10], atlas.adatas["rat"][:, :10].copy()], join="outer"
    )
    joined.var_names = [f"g{i}" for i in range(joined.n_vars)]
    multi = MultiSpecies.from_adata(joined, "species", name="data", copy=True)
    assert multi.species == ("mouse", "rat")
    assert multi["rat"].n_obs == atlas.adatas["rat"].n_obs
    assert not multi["rat"].is_view
    one = MultiSpecies.from_adata(joined, None, name="data")
    assert one.species == ("data",)
    with pytest.raises(DataValidationError, match="expected an AnnData"):
        MultiSpecies.from_adata({"x": joined}, "species", name="data")  # type: ignore[arg-type]


def test_gene_map_reads_long_and_wide_tables_both_ways(atlas) -> None:
    multi = atlas.multi_species
    forward = multi.gene_map("mouse", "rat")
    backward = multi.gene_map("rat", "mouse")
    assert list(forward.columns) == ["source_gene", "target_gene"]
    assert set(zip(forward.source_gene, forward.target_gene, strict=True)) == set(
        zip(backward.target_gene, backward.source_gene, strict=True)
    )
    assert forward.source_gene.str.startswith("mouse").all()
    wide = pd.DataFrame({"mouse_gene": forward.source_gene, "rat_gene": forward.target_gene})
    from_wide = MultiSpecies(dict(atlas.adatas), wide).gene_map("rat", "mouse")
    pd.testing.assert_frame_equal(
        from_wide.sort_values(["source_gene", "target_gene"]).reset_index(drop=True),
        backward.sort_values(["source_gene", "target_gene"]).reset_index(drop=True),
    )
    named = wide.rename(columns={"mouse_gene": "m", "rat_gene": "r"})
    links = ortholog_links(named, ["mouse", "rat"], columns={"mouse": "m", "rat": "r"})
    assert len(links) == len(forward)
    with pytest.raises(DataValidationError, match="cannot tell which ortholog table columns"):
        MultiSpecies(dict(atlas.adatas), named).links()


def test_species_transfer_takes_the_table_from_the_data(atlas) -> None:
    multi = atlas.multi_species
    kwargs = {
        "source_species": "mouse",
        "target_species": "rat",
        "perturbations": ["drug_a"],
        "ceiling": False,
    }
    given = species_transfer(
        dict(atlas.adatas),
        gene_map=multi.gene_map("mouse", "rat"),
        source_column="source_gene",
        target_column="target_gene",
        **kwargs,
    )
    carried = species_transfer(multi, **kwargs)
    pd.testing.assert_frame_equal(carried.results, given.results)
    # without a table genes are paired by name, and these species share none
    with pytest.raises(DataValidationError, match="links no gene of the source"):
        species_transfer(MultiSpecies(dict(atlas.adatas)), **kwargs)


def test_uge_and_suggestions_take_the_table_from_the_data(atlas) -> None:
    multi = atlas.multi_species
    params = {**UniversalGeneEmbedding.fast_params, "max_epochs": 1, "label_key": "context"}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        given = UniversalGeneEmbedding(**params).fit(dict(atlas.adatas), orthologs=atlas.orthologs)
        carried = UniversalGeneEmbedding(**params).fit(multi)
    finally:
        torch.set_num_threads(threads)
    for species in multi:
        np.testing.assert_array_equal(
            carried.transform(multi[species], species=species),
            given.transform(multi[species], species=species),
        )
    assert isinstance(multi["mouse"], AnnData)
    table = suggest_experiments(multi, 3, predictor=None, n_models=2)
    expected = suggest_experiments(
        dict(atlas.adatas), 3, predictor=None, n_models=2, orthologs=atlas.orthologs
    )
    pd.testing.assert_frame_equal(table, expected)
