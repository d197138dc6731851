"""Cross-species annotation as a benchmark task (UGE paper 4.1).

:func:`annotation_transfer`: labels (organs, cell types) learned on a source species only,
predicted for the samples of a target species; accuracy per class next to the paper's
class-frequency random model and ortholog-mapped baselines (logistic regression and kNN on
one-to-one orthologs, each species' genes standardised separately). It takes a fitted model
and returns a tidy frame; it never writes files.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from anndata import AnnData

from transferome.data.schema import obs_labels
from transferome.errors import DataValidationError
from transferome.metrics import per_class_accuracy
from transferome.models.uge.estimator import UniversalGeneEmbedding
from transferome.models.uge.genes import dense_values

__all__ = ["annotation_transfer", "one_to_one_pairs"]


def one_to_one_pairs(
    gene_map: pd.DataFrame, source_column: str, target_column: str
) -> pd.DataFrame:
    """Pairs whose source and target gene each appear exactly once (``source``, ``target``)."""
    pairs = gene_map[[source_column, target_column]].astype(str).drop_duplicates()
    pairs.columns = ["source", "target"]
    once_s = pairs["source"].map(pairs["source"].value_counts()) == 1
    once_t = pairs["target"].map(pairs["target"].value_counts()) == 1
    return pairs[once_s & once_t].reset_index(drop=True)


def _standardised(values: np.ndarray) -> np.ndarray:
    centred = values - values.mean(axis=0)
    scale = values.std(axis=0)
    return centred / np.where(scale > 0, scale, 1.0)


def _ortholog_baselines(
    source: AnnData,
    target: AnnData,
    source_labels: np.ndarray,
    pairs: pd.DataFrame,
    *,
    n_genes: int,
    seed: int,
) -> dict[str, np.ndarray]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier

    pairs = pairs[pairs["source"].isin(source.var_names) & pairs["target"].isin(target.var_names)]
    if len(pairs) < 2:
        raise DataValidationError(
            f"only {len(pairs)} one-to-one ortholog pairs are among the genes of both species"
        )
    s_index = source.var_names.get_indexer(pairs["source"])
    t_index = target.var_names.get_indexer(pairs["target"])
    xs = dense_values(source, s_index)
    keep = np.argsort(-xs.var(axis=0), kind="stable")[:n_genes]
    xs = _standardised(xs[:, keep])
    xt = _standardised(dense_values(target, t_index[keep]))
    logistic = LogisticRegression(max_iter=2000, C=0.1, random_state=seed).fit(xs, source_labels)
    knn = KNeighborsClassifier(n_neighbors=15, metric="cosine").fit(xs, source_labels)
    return {"ortholog_logistic": logistic.predict(xt), "ortholog_knn": knn.predict(xt)}


def annotation_transfer(  # noqa: PLR0913 - the model, the two data sets, keyword-only options
    model: UniversalGeneEmbedding,
    source: AnnData,
    target: AnnData,
    *,
    source_species: str,
    target_species: str,
    label_key: str,
    gene_map: pd.DataFrame | None,
    source_column: str = "source_gene",
    target_column: str = "target_gene",
    n_genes: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """Accuracy per class of annotation transfer from ``source`` to ``target``.

    Parameters
    ----------
    model
        A UGE fitted on both species with ``label_key`` learned on the source species only.
    source, target
        Log-normalised data of the two species with ``label_key`` in obs (the target's labels
        are only used to score).
    source_species, target_species
        The names of the two species in ``model``; UGE predicts the labels of ``target`` as
        ``target_species``.
    label_key
        The obs column of the labels (learned from ``source``, scored on ``target``).
    gene_map, source_column, target_column
        Ortholog table of the baselines (only its one-to-one pairs are used), e.g.
        :meth:`~transferome.data.MultiSpecies.gene_map`; ``None``: no ortholog baselines.
    n_genes
        Most variable one-to-one orthologs used by the baselines.
    seed
        Seed of the logistic-regression baseline.

    Returns
    -------
    pandas.DataFrame
        Columns ``model``, ``class``, ``n`` (target samples of the class) and ``accuracy``;
        one row per model and class plus a row ``class="all"`` with the overall accuracy.
        ``random`` is the expected accuracy of drawing labels from the source frequencies.
    """
    for adata, what in ((source, "source"), (target, "target")):
        if label_key not in adata.obs.columns:
            raise DataValidationError(f"{what} data have no obs column {label_key!r}")
    source_labels = obs_labels(source, label_key)
    truth = obs_labels(target, label_key)
    predictions = {"uge": model.predict_labels(target, species=target_species).astype(str)}
    if gene_map is not None:
        pairs = one_to_one_pairs(gene_map, source_column, target_column)
        predictions.update(
            _ortholog_baselines(source, target, source_labels, pairs, n_genes=n_genes, seed=seed)
        )
    frequency = pd.Series(source_labels).value_counts(normalize=True)
    counts = pd.Series(truth).value_counts()
    rows = []
    for name, predicted in predictions.items():
        per_class = per_class_accuracy(truth, predicted)
        rows += [(name, c, int(counts[c]), float(a)) for c, a in per_class.items()]
        rows.append((name, "all", len(truth), float(np.mean(predicted == truth))))
    chance = {c: float(frequency.get(c, 0.0)) for c in counts.index}
    rows += [("random", c, int(counts[c]), chance[c]) for c in sorted(counts.index)]
    overall = float(sum(chance[c] * counts[c] for c in counts.index) / len(truth))
    rows.append(("random", "all", len(truth), overall))
    return pd.DataFrame(rows, columns=["model", "class", "n", "accuracy"])
