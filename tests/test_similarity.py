"""The ``similar`` and ``collaborative`` baselines on hand-computed data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from anndata import AnnData

from transferome.data.schema import Schema
from transferome.models.baselines.similarity import CollaborativeBaseline, SimilarBaseline


def _adata(groups: dict[tuple[str, str], np.ndarray], cells: int = 1) -> AnnData:
    """One or more identical observations per (context, perturbation) mean profile."""
    rows, obs = [], []
    for (context, perturbation), profile in groups.items():
        for _ in range(cells):
            rows.append(profile)
            obs.append((context, perturbation))
    frame = pd.DataFrame(obs, columns=["context", "perturbation"])
    frame.index = [f"o{i}" for i in range(len(frame))]
    genes = [f"g{i}" for i in range(len(rows[0]))]
    return AnnData(np.asarray(rows, dtype=np.float32), obs=frame, var=pd.DataFrame(index=genes))


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    return float(a @ b / np.sqrt((a @ a) * (b @ b)))


def test_similar_weights_equal_a_hand_computation() -> None:
    rng = np.random.default_rng(0)
    n = 40
    controls = {c: 2.0 + rng.normal(size=n) for c in "abcd"}
    changes = {c: rng.normal(size=n) for c in "abc"}
    groups = {(c, "control"): controls[c] for c in "abcd"}
    groups |= {(c, "drug"): controls[c] + changes[c] for c in "abc"}
    adata = _adata(groups)
    model = SimilarBaseline(temperatures=(0.5,)).fit(adata, schema=Schema())
    # by hand: Pearson of control means centred on their mean over the four contexts
    centre = np.mean([controls[c].astype(np.float32) for c in "abcd"], axis=0)
    sims = np.array([_pearson(controls[c] - centre, controls["d"] - centre) for c in "abc"])
    weights = np.exp(sims / 0.5) / np.exp(sims / 0.5).sum()
    expected = controls["d"] + sum(w * changes[c] for w, c in zip(weights, "abc", strict=True))
    predicted = model.predict(adata, [("d", "drug")]).X[0]
    np.testing.assert_allclose(predicted, expected, atol=1e-4)
    table = model.source_weights(adata, [("d", "drug")])
    np.testing.assert_allclose(table["weight"], weights, atol=1e-6)
    assert list(table["source_context"]) == ["a", "b", "c"]


def test_similar_falls_back_to_the_mean_for_alike_contexts() -> None:
    # donors of one cell type: same control and response up to noise
    rng = np.random.default_rng(1)
    n = 300
    control, change = 3.0 + rng.normal(size=n), rng.normal(size=n)
    groups = {}
    for donor in [f"d{i}" for i in range(6)]:
        groups[(donor, "control")] = control + 0.05 * rng.normal(size=n)
        groups[(donor, "drug")] = control + change + 0.3 * rng.normal(size=n)
    model = SimilarBaseline().fit(_adata(groups), schema=Schema())
    assert model.temperature_ == np.inf
    weights = model.source_weights(_adata(groups), [("d0", "drug")])["weight"]
    np.testing.assert_allclose(weights, 1 / 5)


def test_similar_chooses_a_sharp_temperature_when_likeness_predicts_response() -> None:
    rng = np.random.default_rng(2)
    n = 200
    kinds = {"x": rng.normal(size=n), "y": rng.normal(size=n)}
    responses = {"x": rng.normal(size=n), "y": rng.normal(size=n)}
    groups = {}
    for i in range(8):
        kind = "xy"[i % 2]
        context = f"{kind}{i}"
        control = 3 + kinds[kind] + 0.2 * rng.normal(size=n)
        groups[(context, "control")] = control
        groups[(context, "drug")] = control + responses[kind] + 0.1 * rng.normal(size=n)
    adata = _adata(groups)
    model = SimilarBaseline().fit(adata, schema=Schema())
    assert np.isfinite(model.temperature_)
    table = model.source_weights(adata, [("x0", "drug")])
    same = table[table["source_context"].str.startswith("x")]["weight"].sum()
    assert same > 0.9


def test_collaborative_weights_by_the_other_perturbations() -> None:
    rng = np.random.default_rng(3)
    n = 50
    control = 3 + rng.normal(size=n)
    groups = {}
    # contexts a and t respond alike to drug1; b responds the other way round
    base1, base2 = rng.normal(size=n), rng.normal(size=n)
    r1 = {"a": base1, "t": base1 + 0.01 * rng.normal(size=n), "b": -base1}
    r2 = {"a": base2, "b": -base2}
    for c in "abt":
        groups[(c, "control")] = control
        groups[(c, "drug1")] = control + r1[c]
    for c in "ab":
        groups[(c, "drug2")] = control + r2[c]
    adata = _adata(groups)
    model = CollaborativeBaseline(temperatures=(0.2,)).fit(adata, schema=Schema())
    # by hand: cosine of drug1 changes centred on their mean over contexts a, b, t
    d1 = {c: groups[(c, "drug1")].astype(np.float32) - control.astype(np.float32) for c in "abt"}
    centre = np.mean([d1[c] for c in "abt"], axis=0)
    cos = np.array(
        [
            (d1[s] - centre)
            @ (d1["t"] - centre)
            / np.sqrt(((d1[s] - centre) ** 2).sum() * ((d1["t"] - centre) ** 2).sum())
            for s in "ab"
        ]
    )
    weights = np.exp(cos / 0.2) / np.exp(cos / 0.2).sum()
    table = model.source_weights(adata, [("t", "drug2")])
    np.testing.assert_allclose(table["weight"], weights, atol=1e-5)
    assert table["weight"].iloc[0] > 0.99  # context a
    predicted = model.predict(adata, [("t", "drug2")]).X[0]
    expected = control + weights[0] * r2["a"] + weights[1] * r2["b"]
    np.testing.assert_allclose(predicted, expected, atol=1e-4)


def test_collaborative_falls_back_to_control_likeness_when_nothing_is_shared() -> None:
    rng = np.random.default_rng(4)
    n = 60
    groups = {}
    for c in "abcd":
        control = 3 + rng.normal(size=n)
        groups[(c, "control")] = control
        if c != "d":
            groups[(c, "drug")] = control + rng.normal(size=n)
    adata = _adata(groups)
    similar = SimilarBaseline(temperatures=(0.3,)).fit(adata, schema=Schema())
    collaborative = CollaborativeBaseline(temperatures=(0.3,)).fit(adata, schema=Schema())
    np.testing.assert_allclose(
        collaborative.predict(adata, [("d", "drug")]).X,
        similar.predict(adata, [("d", "drug")]).X,
    )


@pytest.mark.parametrize("cls", [SimilarBaseline, CollaborativeBaseline])
def test_round_trip_and_signature_gaps(cls, tmp_path) -> None:
    rng = np.random.default_rng(5)
    n = 30
    groups = {(c, "control"): np.zeros(n) for c in "abc"}
    for c in "abc":
        for p in ("p1", "p2"):
            change = rng.normal(size=n)
            change[rng.random(n) < 0.2] = np.nan  # not measured
            groups[(c, p)] = change
    adata = _adata(groups)
    adata = adata[~((adata.obs["context"] == "c") & (adata.obs["perturbation"] == "p2"))].copy()
    model = cls().fit(adata, schema=Schema())
    predicted = model.predict(adata, [("c", "p2")]).X
    assert np.isfinite(predicted).all()
    model.save(tmp_path / "m")
    again = cls.load(tmp_path / "m")
    np.testing.assert_array_equal(again.predict(adata, [("c", "p2")]).X, predicted)
    assert again.temperature_ == model.temperature_


def test_combination_from_the_targets_own_singles() -> None:
    rng = np.random.default_rng(6)
    n = 20
    groups = {}
    singles = {}
    for c in "ab":
        control = 3 + rng.normal(size=n)
        groups[(c, "control")] = control
        for p in ("x", "y"):
            singles[(c, p)] = rng.normal(size=n)
            groups[(c, p)] = control + singles[(c, p)]
    adata = _adata(groups)
    model = SimilarBaseline().fit(adata, schema=Schema())
    predicted = model.predict(adata, [("a", "x+y")]).X[0]
    expected = groups[("a", "control")] + singles[("a", "x")] + singles[("a", "y")]
    np.testing.assert_allclose(predicted, expected, atol=1e-4)
