"""Gene mapping on data whose answer is known, its evaluation and its calibration."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from anndata import AnnData

from transferome.crossspecies import Reactome, map_genes
from transferome.errors import DataValidationError
from transferome.metrics import evaluate_mapping, expected_calibration_error, reliability_table

PAIRS = pd.MultiIndex.from_product(
    [["brain", "heart", "liver", "lung"], ["drug_a", "drug_b"]], names=["context", "perturbation"]
)


def _reactome(values: np.ndarray, genes: list[str], species: str) -> Reactome:
    frame = pd.DataFrame(values, index=pd.Index(genes, name="gene"), columns=PAIRS)
    n = pd.DataFrame({"n_treated": 3, "n_control": 3}, index=PAIRS)
    return Reactome(values=frame, se=frame * 0 + 0.1, n=n, species=species)


@pytest.fixture
def pair() -> tuple[Reactome, Reactome, dict[str, str]]:
    """Mouse genes m0..m9, rat genes r0..r9 = a permutation of mouse plus small noise."""
    rng = np.random.default_rng(0)
    base = rng.normal(size=(10, len(PAIRS)))
    perm = rng.permutation(10)
    mouse = _reactome(base, [f"m{i}" for i in range(10)], "mouse")
    noisy = base[perm] + rng.normal(scale=0.05, size=base.shape)
    rat = _reactome(noisy, [f"r{i}" for i in range(10)], "rat")
    truth = {f"r{i}": f"m{perm[i]}" for i in range(10)}
    return mouse, rat, truth


def _top(mapping: pd.DataFrame) -> pd.Series:
    first = mapping[mapping["rank"] == 1]
    return first.set_index("target_gene")["source_gene"]


@pytest.mark.parametrize("similarity", ["pearson", "spearman", "cosine"])
def test_reactome_mapping_finds_the_permutation(pair, similarity: str) -> None:
    mouse, rat, truth = pair
    mapping = map_genes(mouse, rat, method="reactome", similarity=similarity, top_k=3)
    assert _top(mapping).to_dict() == truth
    assert mapping.groupby("target_gene").size().max() == 3
    assert mapping["mutual_best"][mapping["rank"] == 1].all()
    assert not mapping["mutual_best"][mapping["rank"] > 1].any()
    assert mapping["similarity"][mapping["rank"] == 1].min() > 0.9
    assert mapping["confidence"].between(0, 1).all()
    assert mapping.attrs["calibration"] == "none"


def test_chunking_does_not_change_the_answer(pair) -> None:
    mouse, rat, _ = pair
    whole = map_genes(mouse, rat, top_k=4, chunk_size=1024)
    chunked = map_genes(mouse, rat, top_k=4, chunk_size=3)
    pd.testing.assert_frame_equal(whole, chunked)


def test_ortholog_method_many_to_many_and_no_partner() -> None:
    table = pd.DataFrame(
        {
            "mouse_gene": ["m0", "m1", "m1", "m2"],
            "rat_gene": ["r0", "r1", "r2", "r1"],
            "identity": [0.9, 0.8, 0.6, 0.4],
        }
    )
    mapping = map_genes(
        ["m0", "m1", "m2", "m3"],
        ["r0", "r1", "r2", "r3"],
        method="ortholog",
        orthologs=table,
        ortholog_score="identity",
    )
    r1 = mapping[mapping.target_gene == "r1"]
    assert r1["source_gene"].tolist() == ["m1", "m2"]  # ranked by identity
    assert r1["confidence"].to_numpy() == pytest.approx([2 / 3, 1 / 3])
    assert r1["is_ortholog"].all()
    lonely = mapping[mapping.target_gene == "r3"]
    assert len(lonely) == 1
    assert lonely["source_gene"].isna().all()
    assert lonely["rank"].isna().all()
    # m1 maps to r1 and r2 (many-to-many); m1's best target is r1 -> only r1 is mutual best
    assert mapping.set_index("target_gene").loc["r1", "mutual_best"].tolist() == [True, False]
    assert not mapping.set_index("target_gene").loc["r2", "mutual_best"]


def test_combined_overrides_a_wrong_ortholog_and_calibrates(pair) -> None:
    mouse, rat, truth = pair
    table = pd.DataFrame({"m": list(truth.values()), "r": list(truth.keys())})
    # the table is wrong for r0: it names the partner of r1
    table.loc[table.r == "r0", "m"] = truth["r1"]
    combined = map_genes(mouse, rat, method="combined", orthologs=table, prior=0.6)
    assert _top(combined)["r0"] == truth["r0"]
    by_table = map_genes(mouse, rat, method="ortholog", orthologs=table)
    assert _top(by_table)["r0"] == truth["r1"]
    assert combined.attrs["calibration"] == "orthologs"
    assert combined.attrs["prior"] == pytest.approx(0.6)
    # the posterior over all source genes sums to at most 1 per target
    assert combined.groupby("target_gene")["confidence"].sum().max() <= 1 + 1e-9
    estimated = map_genes(mouse, rat, method="combined", orthologs=table)
    assert 0.5 < estimated.attrs["prior"] < 1.0


def _profile_adata(means: np.ndarray, genes: list[str], seed: int) -> AnnData:
    rng = np.random.default_rng(seed)
    cell_types = ["alpha", "beta", "delta", "ductal"]
    rows = np.repeat(np.arange(len(cell_types)), 5)
    x = np.abs(means[:, rows].T + rng.normal(scale=0.02, size=(len(rows), len(genes))))
    obs = pd.DataFrame({"cell_type": [cell_types[i] for i in rows]})
    obs.index = [f"c{seed}_{i}" for i in range(len(rows))]
    return AnnData(X=x.astype(np.float32), obs=obs, var=pd.DataFrame(index=genes))


def test_profile_mapping_over_matched_cell_types() -> None:
    from transferome.data import Schema

    rng = np.random.default_rng(3)
    means = rng.uniform(0.5, 3.0, size=(8, 4))
    human = _profile_adata(means, [f"H{i}" for i in range(8)], 0)
    mouse = _profile_adata(means[::-1], [f"M{i}" for i in range(8)], 1)
    schema = Schema(context_key="cell_type")
    mapping = map_genes(human, mouse, method="profile", schema=schema)
    assert _top(mapping).to_dict() == {f"M{i}": f"H{7 - i}" for i in range(8)}
    with pytest.raises(DataValidationError, match="context_key"):
        map_genes(human, mouse, method="profile")


def test_evaluation_and_reliability(pair) -> None:
    mouse, rat, truth = pair
    mapping = map_genes(mouse, rat, top_k=5)
    table = pd.DataFrame(
        {
            "target_gene": list(truth),
            "source_gene": list(truth.values()),
            "ortholog_class": ["one-to-one"] * 5 + ["diverged"] * 5,
        }
    )
    scores = evaluate_mapping(mapping, table)
    assert scores["group"].tolist() == ["all", "diverged", "one-to-one"]
    assert scores["precision_at_1"].tolist() == [1.0, 1.0, 1.0]
    assert scores["mrr"].tolist() == [1.0, 1.0, 1.0]
    # a wrong answer for r0 and a gene missing from the mapping are misses
    wrong = table.copy()
    wrong.loc[0, "source_gene"] = "nowhere"
    wrong.loc[len(wrong)] = ["r_absent", "m0", "one-to-one"]
    scores = evaluate_mapping(mapping, wrong)
    assert scores.loc[0, "n_genes"] == 11
    assert scores.loc[0, "precision_at_1"] == pytest.approx(9 / 11)
    reliability = reliability_table(mapping, table, n_bins=5)
    assert reliability["n"].sum() == 10
    assert reliability["accuracy"].eq(1.0).all()
    perfect = pd.DataFrame({"n": [4, 6], "mean_confidence": [0.25, 0.5], "accuracy": [0.25, 0.5]})
    assert expected_calibration_error(perfect) == 0.0
    off = perfect.assign(accuracy=[0.75, 0.5])
    assert expected_calibration_error(off) == pytest.approx(0.2)


def test_input_errors(pair) -> None:
    mouse, rat, _ = pair
    with pytest.raises(DataValidationError, match="method must be one of"):
        map_genes(mouse, rat, method="sequence")  # type: ignore[arg-type]
    with pytest.raises(DataValidationError, match="needs an ortholog table"):
        map_genes(mouse, rat, method="combined")
    few = _reactome(mouse.values.to_numpy(), list(mouse.genes), "mouse")
    hidden = few.values.copy()
    hidden.loc[:, PAIRS[2:]] = np.nan
    few = few.replace(values=hidden)
    with pytest.raises(DataValidationError, match="share 2 measured"):
        map_genes(few, rat)
    with pytest.raises(DataValidationError, match="no column of the ortholog table"):
        map_genes(mouse, rat, method="ortholog", orthologs=pd.DataFrame({"x": ["a"], "y": ["b"]}))
    with pytest.raises(DataValidationError, match="sequence of gene names"):
        map_genes("m0", rat, method="ortholog", orthologs=pd.DataFrame({"x": ["m0"]}))
