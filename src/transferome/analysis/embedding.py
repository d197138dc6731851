"""Benchmarks of sample embeddings: kNN prediction of labels and distance preservation.

Section 3.4 of Trofimov et al. (2020): a k-nearest-neighbour model is trained on 80% of the
samples and tested on the other 20%, repeated over random splits; regression targets are
scored by the Pearson correlation of predicted and actual values, class labels by accuracy
(with the accuracy of guessing by class frequency beside it). The same protocol is applied
to PCA, t-SNE and UMAP embeddings of the expression data with the same number of dimensions
(:func:`baseline_embeddings`).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy import stats

from transferome.errors import DataValidationError

__all__ = [
    "baseline_embeddings",
    "compare_embeddings",
    "distance_preservation",
    "embedding_benchmark",
    "knn_scores",
]

Task = Literal["auto", "regression", "classification"]
_BARNES_HUT_MAX_DIM = 3


def _as_matrix(values: Any, what: str) -> np.ndarray:
    if sp.issparse(values):
        values = values.toarray()
    matrix = np.asarray(values, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] < 2:
        raise DataValidationError(f"{what} must be a 2-D array with >= 2 rows, got {matrix.shape}")
    if not np.isfinite(matrix).all():
        raise DataValidationError(f"{what} contains NaN or infinite values")
    return matrix


def _task_of(labels: np.ndarray, task: Task) -> Literal["regression", "classification"]:
    if task != "auto":
        if task not in ("regression", "classification"):
            raise DataValidationError(
                f"task={task!r}; expected 'auto', 'regression' or 'classification'"
            )
        return task
    numeric = np.issubdtype(labels.dtype, np.number) and not np.issubdtype(labels.dtype, np.bool_)
    return "regression" if numeric and len(np.unique(labels)) > 10 else "classification"


def knn_scores(
    embedding: np.ndarray,
    labels: Sequence[object] | np.ndarray,
    *,
    task: Task = "auto",
    n_neighbors: int = 5,
    n_splits: int = 20,
    test_size: float = 0.2,
    random_state: int = 0,
) -> pd.DataFrame:
    """Score kNN prediction of ``labels`` from ``embedding`` over repeated random splits.

    Parameters
    ----------
    embedding
        Samples x dimensions.
    labels
        One label per sample: numbers (regression) or classes (classification).
    task
        ``"auto"``: regression for numeric labels with more than 10 distinct values.
    n_neighbors, n_splits, test_size, random_state
        kNN size, number of random splits, test fraction and seed of the splits.

    Returns
    -------
    pandas.DataFrame
        One row per split: ``split``, ``task``, ``metric`` (``pearson`` or ``accuracy``),
        ``score`` and ``chance`` (accuracy of guessing by class frequency; NaN for regression).
    """
    from sklearn.model_selection import ShuffleSplit
    from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor

    x = _as_matrix(embedding, "embedding")
    y = np.asarray(labels)
    if y.shape[0] != x.shape[0]:
        raise DataValidationError(f"{y.shape[0]} labels for {x.shape[0]} embedded samples")
    kind = _task_of(y, task)
    n_test = max(1, round(test_size * len(y)))
    if len(y) - n_test < n_neighbors:
        raise DataValidationError(
            f"{len(y)} samples leave {len(y) - n_test} for training, fewer than "
            f"n_neighbors={n_neighbors}"
        )
    splitter = ShuffleSplit(n_splits=n_splits, test_size=n_test, random_state=random_state)
    rows: list[tuple[int, str, str, float, float]] = []
    for split, (train, test) in enumerate(splitter.split(x)):
        if kind == "regression":
            target = y.astype(np.float64)
            model = KNeighborsRegressor(n_neighbors=n_neighbors).fit(x[train], target[train])
            pred = model.predict(x[test])
            constant = np.ptp(pred) == 0 or np.ptp(target[test]) == 0
            score = np.nan if constant else float(stats.pearsonr(pred, target[test])[0])
            rows.append((split, kind, "pearson", score, np.nan))
        else:
            target = y.astype(str)
            model = KNeighborsClassifier(n_neighbors=n_neighbors).fit(x[train], target[train])
            score = float(np.mean(model.predict(x[test]) == target[test]))
            _, counts = np.unique(target[train], return_counts=True)
            freq = dict(zip(np.unique(target[train]), counts / counts.sum(), strict=True))
            chance = float(np.mean([freq.get(t, 0.0) for t in target[test]]))
            rows.append((split, kind, "accuracy", score, chance))
    return pd.DataFrame(rows, columns=["split", "task", "metric", "score", "chance"])


def _missing(labels: np.ndarray) -> np.ndarray:
    """Mark the samples without a label: NaN, None, ``pd.NA`` or the empty string."""
    return np.array([(isinstance(v, str) and v == "") or bool(pd.isna(v)) for v in labels])


def embedding_benchmark(
    embeddings: Mapping[str, np.ndarray],
    labels: Mapping[str, Sequence[object] | np.ndarray],
    *,
    tasks: Mapping[str, Task] | None = None,
    n_neighbors: int = 5,
    n_splits: int = 20,
    test_size: float = 0.2,
    random_state: int = 0,
) -> pd.DataFrame:
    """Benchmark several embeddings by kNN on several labels, as one tidy table.

    Every embedding is scored on the same splits of every label.

    Parameters
    ----------
    embeddings
        Name -> samples x dimensions; every embedding holds the same samples in the same order.
    labels
        Label name -> one value per sample. A sample whose value is missing (NaN, ``None`` or
        ``""``) is left out of that label's task, e.g. a drug label given only to treated
        samples.
    tasks
        Label name -> ``"regression"``, ``"classification"`` or ``"auto"`` (the default for
        labels not named; see :func:`knn_scores`). Numeric labels with few distinct values,
        such as dose levels or time points, need ``"regression"`` to be scored as numbers.
    n_neighbors, n_splits, test_size, random_state
        As in :func:`knn_scores`.

    Returns
    -------
    pandas.DataFrame
        Columns ``embedding``, ``label``, ``dims``, ``split``, ``task``, ``metric``, ``score``,
        ``chance``; ``groupby(["label", "embedding"]).score.mean()`` ranks them, and
        :func:`compare_embeddings` tests the differences.
    """
    if not embeddings or not labels:
        raise DataValidationError("embedding_benchmark needs at least one embedding and label")
    tasks = dict(tasks or {})
    unknown = sorted(set(tasks) - set(labels))
    if unknown:
        raise DataValidationError(f"tasks name labels {unknown} that are not among {list(labels)}")
    sizes = {name: np.asarray(z).shape[0] for name, z in embeddings.items()}
    if len(set(sizes.values())) > 1:
        raise DataValidationError(f"the embeddings hold different numbers of samples: {sizes}")
    frames = []
    for label_name, values in labels.items():
        values = np.asarray(values, dtype=object)
        keep = ~_missing(values)
        if keep.sum() < 2:
            raise DataValidationError(
                f"label {label_name!r} is given for {int(keep.sum())} samples"
            )
        target = values[keep]
        if all(isinstance(v, (int, float, np.number)) for v in target):
            target = target.astype(np.float64)
        else:
            target = target.astype(str)
        for name, embedding in embeddings.items():
            table = knn_scores(
                np.asarray(embedding)[keep],
                target,
                task=tasks.get(label_name, "auto"),
                n_neighbors=n_neighbors,
                n_splits=n_splits,
                test_size=test_size,
                random_state=random_state,
            )
            table.insert(0, "dims", np.asarray(embedding).shape[1])
            table.insert(0, "label", label_name)
            table.insert(0, "embedding", name)
            frames.append(table)
    return pd.concat(frames, ignore_index=True)


def compare_embeddings(table: pd.DataFrame, *, reference: str) -> pd.DataFrame:
    """Rank embeddings per label and test them against ``reference`` (paper, Section 3.4).

    For every label, a one-way ANOVA over the split scores of all embeddings, then Tukey's
    honestly-significant-difference test (:func:`scipy.stats.tukey_hsd`) of ``reference``
    against each other embedding; differences count as significant below a corrected p of
    0.05. The split scores of one label share their splits, so they are not independent
    samples: the test follows the paper's protocol and is, if anything, conservative.

    Parameters
    ----------
    table
        Output of :func:`embedding_benchmark`; extra key columns (e.g. ``dataset``) that
        come before ``embedding`` are kept and grouped by.
    reference
        The embedding the others are tested against.

    Returns
    -------
    pandas.DataFrame
        One row per (label, embedding): the key columns, ``metric``, ``mean``, ``sd``,
        ``rank`` (1 = highest mean), ``anova_p`` and ``tukey_p`` (NaN for ``reference``).
    """
    from scipy.stats import f_oneway, tukey_hsd

    needed = {"embedding", "label", "score", "metric"}
    if not needed <= set(table.columns):
        raise DataValidationError(
            f"the table lacks columns {sorted(needed - set(table.columns))}; "
            "pass the output of embedding_benchmark"
        )
    if reference not in set(table.embedding):
        raise DataValidationError(
            f"reference {reference!r} is not among the embeddings {sorted(set(table.embedding))}"
        )
    keys = [*list(table.columns[: list(table.columns).index("embedding")]), "label"]
    rows = []
    for key, part in table.groupby(keys, sort=False):
        names = list(dict.fromkeys(part.embedding))
        samples = [part.score[part.embedding == n].dropna().to_numpy() for n in names]
        usable = all(len(s) >= 2 for s in samples) and len(names) >= 2
        anova = f_oneway(*samples).pvalue if usable else np.nan
        tukey = tukey_hsd(*samples).pvalue if usable else None
        means = np.array([s.mean() if len(s) else np.nan for s in samples])
        # equal scores tie (the same correct count over the same splits), up to float error
        order = pd.Series(means.round(12)).rank(ascending=False, method="min").to_numpy()
        ref = names.index(reference) if reference in names else None
        for i, name in enumerate(names):
            p = np.nan if tukey is None or ref is None or i == ref else float(tukey[ref, i])
            rows.append(
                (
                    *((key,) if len(keys) == 1 else key),
                    name,
                    part.metric.iloc[0],
                    float(means[i]),
                    float(samples[i].std(ddof=1)) if len(samples[i]) > 1 else np.nan,
                    int(order[i]),
                    float(anova),
                    p,
                )
            )
    columns = [*keys, "embedding", "metric", "mean", "sd", "rank", "anova_p", "tukey_p"]
    return pd.DataFrame(rows, columns=columns)


def baseline_embeddings(
    values: np.ndarray,
    n_components: int,
    *,
    methods: Sequence[str] = ("pca", "tsne", "umap"),
    random_state: int = 0,
    max_exact_tsne: int = 2000,
) -> dict[str, np.ndarray]:
    """PCA, t-SNE and UMAP embeddings of ``values`` (samples x genes) of one dimension.

    t-SNE uses Barnes-Hut up to 3 dimensions; above that sklearn only offers the exact
    O(n^2) method, which is used when there are at most ``max_exact_tsne`` samples and left
    out otherwise (the returned dict then has no ``"tsne"`` entry). UMAP needs
    ``umap-learn``.
    """
    x = _as_matrix(values, "values")
    unknown = sorted(set(methods) - {"pca", "tsne", "umap"})
    if unknown:
        raise DataValidationError(f"unknown methods {unknown}; expected pca, tsne, umap")
    if not 1 <= n_components < min(x.shape):
        raise DataValidationError(
            f"n_components={n_components} must be in [1, {min(x.shape) - 1}] for {x.shape} data"
        )
    out: dict[str, np.ndarray] = {}
    if "pca" in methods:
        from sklearn.decomposition import PCA

        out["pca"] = PCA(n_components, random_state=random_state).fit_transform(x)
    if "tsne" in methods and (n_components <= _BARNES_HUT_MAX_DIM or len(x) <= max_exact_tsne):
        from sklearn.manifold import TSNE

        method = "barnes_hut" if n_components <= _BARNES_HUT_MAX_DIM else "exact"
        perplexity = float(min(30.0, (len(x) - 1) / 3))
        out["tsne"] = TSNE(
            n_components, method=method, perplexity=perplexity, random_state=random_state
        ).fit_transform(x)
    if "umap" in methods:
        try:
            with warnings.catch_warnings():
                # umap-learn warns at import when its optional TensorFlow part is absent.
                warnings.simplefilter("ignore", ImportWarning)
                import umap
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise DataValidationError(
                "UMAP embeddings need umap-learn: pip install umap-learn"
            ) from exc
        n_neighbors = int(min(15, len(x) - 1))
        with warnings.catch_warnings():
            # A fixed random_state makes umap-learn run single-threaded and say so.
            warnings.filterwarnings("ignore", message="n_jobs value", category=UserWarning)
            out["umap"] = umap.UMAP(
                n_components=n_components, n_neighbors=n_neighbors, random_state=random_state
            ).fit_transform(x)
    return out


def distance_preservation(
    a: np.ndarray,
    b: np.ndarray,
    *,
    n_pairs: int | None = 1500,
    random_state: int = 0,
) -> pd.Series:
    """Correlation of pairwise Euclidean sample distances in two spaces (paper Fig. 1B-C).

    Parameters
    ----------
    a, b
        The same samples (rows) in two spaces, e.g. expression and embedding, or expression
        and reconstruction.
    n_pairs
        Number of random distinct pairs (all pairs when ``None`` or when there are fewer).
    random_state
        Seed of the draw of the pairs.

    Returns
    -------
    pandas.Series
        ``pearson``, ``spearman`` and ``n_pairs``.
    """
    x, y = _as_matrix(a, "a"), _as_matrix(b, "b")
    if x.shape[0] != y.shape[0]:
        raise DataValidationError(f"a has {x.shape[0]} samples and b has {y.shape[0]}")
    n = x.shape[0]
    i, j = np.triu_indices(n, k=1)
    if n_pairs is not None and n_pairs < len(i):
        pick = np.random.default_rng(random_state).choice(len(i), size=n_pairs, replace=False)
        i, j = i[pick], j[pick]
    dx = np.linalg.norm(x[i] - x[j], axis=1)
    dy = np.linalg.norm(y[i] - y[j], axis=1)
    return pd.Series(
        {
            "pearson": float(stats.pearsonr(dx, dy)[0]),
            "spearman": float(stats.spearmanr(dx, dy)[0]),
            "n_pairs": len(i),
        }
    )
