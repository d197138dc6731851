"""Tissue specificity, kNN embedding benchmarks and distance preservation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from anndata import AnnData
from scipy import stats

from transferome.analysis import (
    baseline_embeddings,
    compare_embeddings,
    distance_preservation,
    embedding_benchmark,
    group_means,
    knn_scores,
    tau_index,
    tissue_emd,
)
from transferome.errors import DataValidationError


def _tissue_adata(seed: int = 0) -> AnnData:
    rng = np.random.default_rng(seed)
    tissues = np.repeat(["liver", "heart", "brain"], 10)
    x = rng.uniform(0.5, 1.5, size=(30, 4))
    x[:, 0] = 3.0  # housekeeping: the same everywhere
    x[:, 1] = np.where(tissues == "liver", 5.0, 0.0)  # liver only
    return AnnData(
        X=x.astype(np.float32),
        obs=pd.DataFrame({"tissue": tissues}, index=[f"s{i}" for i in range(30)]),
        var=pd.DataFrame(index=["house", "liver_gene", "g2", "g3"]),
    )


def test_tau_extremes_and_formula() -> None:
    adata = _tissue_adata()
    tau = tau_index(adata, "tissue")
    assert tau["house"] == pytest.approx(0.0)
    assert tau["liver_gene"] == pytest.approx(1.0)
    means = group_means(adata, "tissue")["g2"].to_numpy()
    expected = np.sum(1 - means / means.max()) / (len(means) - 1)
    assert tau["g2"] == pytest.approx(expected)
    assert ((tau >= 0) & (tau <= 1)).all()


def test_tau_rejects_negative_values_and_missing_key() -> None:
    adata = _tissue_adata()
    with pytest.raises(DataValidationError, match="organ"):
        tau_index(adata, "organ")
    negative = adata.copy()
    negative.X = negative.X - 10
    with pytest.raises(DataValidationError, match="non-negative"):
        tau_index(negative, "tissue")


def test_tissue_emd_matches_scipy() -> None:
    rng = np.random.default_rng(3)
    adata = _tissue_adata()
    adata.X = rng.gamma(2.0, size=adata.shape).astype(np.float32)
    emd = tissue_emd(adata, "tissue")
    tissues = adata.obs["tissue"].to_numpy()
    for tissue in ("liver", "brain"):
        for j, gene in enumerate(adata.var_names):
            inside = adata.X[tissues == tissue, j]
            outside = adata.X[tissues != tissue, j]
            assert emd.loc[gene, tissue] == pytest.approx(
                stats.wasserstein_distance(inside, outside), rel=1e-6
            )


def test_tissue_emd_finds_the_specific_tissue() -> None:
    emd = tissue_emd(_tissue_adata(), "tissue")
    assert emd.idxmax(axis=1)["liver_gene"] == "liver"
    assert emd.loc["house"].max() == pytest.approx(0.0)
    with pytest.raises(DataValidationError, match="kidney"):
        tissue_emd(_tissue_adata(), "tissue", groups=["kidney"])


def test_knn_classification_beats_chance_on_clusters() -> None:
    rng = np.random.default_rng(0)
    labels = np.repeat(["a", "b", "c"], 20)
    centres = {"a": 0.0, "b": 5.0, "c": 10.0}
    good = np.array([[centres[c], 0.0] for c in labels]) + rng.normal(0, 0.3, (60, 2))
    noise = rng.normal(size=(60, 2))
    scores_good = knn_scores(good, labels, n_splits=5)
    scores_noise = knn_scores(noise, labels, n_splits=5)
    assert (scores_good.metric == "accuracy").all()
    assert scores_good.score.mean() == pytest.approx(1.0)
    assert scores_good.chance.between(0.2, 0.5).all()
    assert scores_noise.score.mean() < 0.7


def test_knn_regression_pearson() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(80, 3))
    y = x[:, 0] * 2 + rng.normal(0, 0.05, 80)
    table = knn_scores(x, y, n_splits=4)
    assert (table.task == "regression").all()
    assert table.score.mean() > 0.8
    shuffled = knn_scores(rng.normal(size=(80, 3)), y, n_splits=4)
    assert shuffled.score.mean() < table.score.mean()
    with pytest.raises(DataValidationError, match="labels"):
        knn_scores(x, y[:10])


def test_embedding_benchmark_is_tidy_and_uses_same_splits() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(40, 4))
    labels = {"group": np.repeat(["u", "v"], 20), "value": np.arange(40, dtype=float)}
    table = embedding_benchmark({"one": x, "two": x.copy()}, labels, n_splits=3)
    assert set(table.columns) >= {"embedding", "label", "dims", "split", "metric", "score"}
    assert len(table) == 2 * 2 * 3
    one = table[table.embedding == "one"].score.to_numpy()
    two = table[table.embedding == "two"].score.to_numpy()
    np.testing.assert_allclose(one, two)  # identical embeddings, identical splits


def test_embedding_benchmark_tasks_and_missing_labels() -> None:
    rng = np.random.default_rng(3)
    dose = np.repeat([0.0, 1.0, 2.0, 3.0], 15)  # 4 levels: "auto" would classify them
    x = np.column_stack([dose + rng.normal(0, 0.1, 60), rng.normal(size=60)])
    drug = np.where(dose > 0, np.where(np.arange(60) % 2 == 0, "a", "b"), None)
    labels = {"dose": dose, "drug": drug}
    table = embedding_benchmark({"x": x}, labels, tasks={"dose": "regression"}, n_splits=4)
    dose_rows = table[table.label == "dose"]
    assert set(dose_rows.metric) == {"pearson"}
    assert dose_rows.score.min() > 0.9
    # the 15 untreated samples have no drug label and are left out of that task
    drug_rows = table[table.label == "drug"]
    assert set(drug_rows.metric) == {"accuracy"}
    alone = knn_scores(x[dose > 0], drug[dose > 0].astype(str), n_splits=4)
    np.testing.assert_allclose(drug_rows.score.to_numpy(), alone.score.to_numpy())
    nullable = pd.Series(drug, dtype="string").to_numpy()  # pd.NA marks the missing labels
    again = embedding_benchmark({"x": x}, {"drug": nullable}, n_splits=4)
    np.testing.assert_allclose(again.score.to_numpy(), alone.score.to_numpy())
    with pytest.raises(DataValidationError, match="not among"):
        embedding_benchmark({"x": x}, labels, tasks={"time": "regression"})
    with pytest.raises(DataValidationError, match="different numbers of samples"):
        embedding_benchmark({"x": x, "y": x[:50]}, labels)


def test_compare_embeddings_ranks_and_tests_against_the_reference() -> None:
    rng = np.random.default_rng(6)
    groups = np.repeat(["u", "v", "w"], 30)
    signal = np.repeat(np.eye(3) * 3, 30, axis=0) + rng.normal(0, 1, (90, 3))
    embeddings = {
        "good": signal,
        "copy": signal + rng.normal(0, 0.01, signal.shape),
        "noise": rng.normal(size=(90, 3)),
    }
    table = embedding_benchmark(embeddings, {"group": groups}, n_splits=30)
    table.insert(0, "dataset", "toy")
    out = compare_embeddings(table, reference="good").set_index("embedding")
    assert list(out.columns[:2]) == ["dataset", "label"]
    assert out.loc["noise", "rank"] == 3
    assert out.loc["noise", "tukey_p"] < 1e-6
    assert out.loc["copy", "tukey_p"] > 0.05  # indistinguishable from the reference
    assert np.isnan(out.loc["good", "tukey_p"])
    assert out.loc["good", "anova_p"] < 1e-6
    mean = table[table.embedding == "noise"].score.mean()
    assert out.loc["noise", "mean"] == pytest.approx(mean)
    with pytest.raises(DataValidationError, match="reference"):
        compare_embeddings(table, reference="pca")
    with pytest.raises(DataValidationError, match="lacks columns"):
        compare_embeddings(table.drop(columns="score"), reference="good")


def test_baseline_embeddings_shapes() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(40, 12))
    out = baseline_embeddings(x, 4, methods=("pca", "tsne"), max_exact_tsne=100)
    assert out["pca"].shape == (40, 4)
    assert out["tsne"].shape == (40, 4)  # exact t-SNE above 3 dimensions
    skipped = baseline_embeddings(x, 4, methods=("tsne",), max_exact_tsne=10)
    assert "tsne" not in skipped
    with pytest.raises(DataValidationError, match="n_components"):
        baseline_embeddings(x, 40)
    with pytest.raises(DataValidationError, match="unknown methods"):
        baseline_embeddings(x, 2, methods=("ica",))


def test_distance_preservation() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(50, 6))
    same = distance_preservation(x, 3 * x + 1)
    assert same["pearson"] == pytest.approx(1.0)
    assert same["spearman"] == pytest.approx(1.0)
    assert same["n_pairs"] == 1225  # fewer pairs than asked: all of them
    unrelated = distance_preservation(x, rng.normal(size=(50, 6)), n_pairs=300)
    assert unrelated["n_pairs"] == 300
    assert abs(unrelated["pearson"]) < 0.3
    with pytest.raises(DataValidationError, match="samples"):
        distance_preservation(x, x[:10])
