"""Baselines: hand-checkable predictions, combinations, cross-species through a gene map."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from anndata import AnnData

from tests.conftest import make_counts_adata
from transferome.data.schema import Schema
from transferome.errors import DataValidationError
from transferome.models.baselines.means import AdditiveBaseline, ControlBaseline, LinearBaseline

SCHEMA = Schema()


def _adata(rows: list[tuple[str, str, list[float]]], genes: list[str]) -> AnnData:
    obs = pd.DataFrame(
        [(c, p) for c, p, _ in rows],
        columns=["context", "perturbation"],
        index=[f"o{i}" for i in range(len(rows))],
    )
    x = np.array([v for _, _, v in rows], dtype=np.float32)
    return AnnData(x, obs=obs, var=pd.DataFrame(index=genes))


def test_additive_and_control_by_hand() -> None:
    genes = ["g0", "g1"]
    adata = _adata(
        [
            ("A", "control", [1.0, 1.0]),
            ("A", "p", [3.0, 1.0]),
            ("B", "control", [2.0, 2.0]),
            ("B", "p", [2.0, 4.0]),
            ("B", "q", [2.0, 3.0]),
            ("C", "control", [5.0, 5.0]),
        ],
        genes,
    )
    additive = AdditiveBaseline().fit(adata, schema=SCHEMA)
    pred = additive.predict(adata, [("C", "p"), ("C", "p+q"), ("C", "control")])
    # mean shift of p: ((2, 0) + (0, 2)) / 2 = (1, 1); q: (0, 1)
    np.testing.assert_allclose(pred.X, [[6.0, 6.0], [6.0, 7.0], [5.0, 5.0]])
    control = ControlBaseline().fit(adata, schema=SCHEMA)
    np.testing.assert_allclose(control.predict(adata, [("C", "p")]).X, [[5.0, 5.0]])
    with pytest.raises(DataValidationError, match="'r' was not seen"):
        additive.predict(adata, [("C", "r")])
    with pytest.raises(DataValidationError, match="no 'control' observations"):
        additive.predict(adata[adata.obs["context"] != "C"].copy(), [("C", "p")])


def test_additive_across_species_averages_many_to_many() -> None:
    source = _adata(
        [
            ("mouse liver", "control", [0.0, 0.0, 0.0]),
            ("mouse liver", "drug", [2.0, 4.0, 9.0]),
        ],
        ["Ma", "Mb", "Mc"],
    )
    target = _adata([("rat liver", "control", [1.0, 1.0, 1.0])], ["Ra", "Rb", "Rz"])
    gene_map = pd.DataFrame({"source_gene": ["Ma", "Mb", "Mc"], "target_gene": ["Ra", "Ra", "Rb"]})
    model = AdditiveBaseline().fit(target, schema=SCHEMA, source=source, gene_map=gene_map)
    pred = model.predict(target, [("rat liver", "drug")])
    # Ra averages Ma and Mb (3), Rb takes Mc (9), Rz has no ortholog (no change)
    np.testing.assert_allclose(pred.X, [[4.0, 10.0, 1.0]])
    with pytest.raises(DataValidationError, match="links no gene"):
        AdditiveBaseline().fit(
            target,
            schema=SCHEMA,
            source=source,
            gene_map=pd.DataFrame({"source_gene": ["X"], "target_gene": ["Ra"]}),
        )


def test_linear_recovers_low_rank_interaction() -> None:
    rng = np.random.default_rng(0)
    contexts, perts, n_genes = [f"c{i}" for i in range(6)], [f"p{j}" for j in range(5)], 30
    u, v = rng.normal(size=(6, 1)), rng.normal(size=(5, 1, n_genes))
    main_c, main_p = rng.normal(size=(6, n_genes)), rng.normal(size=(5, n_genes))
    rows = []
    for i, c in enumerate(contexts):
        rows.append((c, "control", list(np.full(n_genes, 5.0))))
        for j, p in enumerate(perts):
            if (i, j) != (0, 0):
                rows.append((c, p, list(5.0 + main_c[i] + main_p[j] + u[i] @ v[j])))
    adata = _adata(rows, [f"g{k}" for k in range(n_genes)])
    truth = 5.0 + main_c[0] + main_p[0] + u[0] @ v[0]
    linear = LinearBaseline(ranks=(0, 1), penalties=(0.01, 1.0), n_iter=60).fit(
        adata, schema=SCHEMA
    )
    additive = AdditiveBaseline().fit(adata, schema=SCHEMA)
    err_linear = np.mean((linear.predict(adata, [("c0", "p0")]).X[0] - truth) ** 2)
    err_additive = np.mean((additive.predict(adata, [("c0", "p0")]).X[0] - truth) ** 2)
    assert linear.rank_ == 1
    assert err_linear < 0.1 * err_additive
    with pytest.raises(DataValidationError, match="penalties"):
        LinearBaseline(penalties=(0.0,)).fit(adata, schema=SCHEMA)


def test_context_deltas_by_hand() -> None:
    from transferome.data.aggregate import context_deltas

    adata = make_counts_adata(n_per_group=3, n_genes=6, seed=4)
    adata.X = np.log1p(adata.X).astype(np.float64)
    # a context without controls contributes no change
    adata = adata[~((adata.obs["context"] == "heart") & (adata.obs["perturbation"] == "control"))]
    deltas = context_deltas(adata, schema=Schema())
    obs = adata.obs.astype(str)
    assert "heart" not in deltas.index.get_level_values(0)
    for (context, perturbation), row in deltas.iterrows():
        group = (obs["context"] == context) & (obs["perturbation"] == perturbation)
        control = (obs["context"] == context) & (obs["perturbation"] == "control")
        expected = adata.X[group.to_numpy()].mean(axis=0) - adata.X[control.to_numpy()].mean(axis=0)
        np.testing.assert_allclose(row.to_numpy(), expected, rtol=1e-6)
    only_controls = adata[adata.obs["perturbation"] == "control"]
    with pytest.raises(DataValidationError, match="no perturbed group"):
        context_deltas(only_controls, schema=Schema())
