"""The UniversalGeneEmbedding estimator on tiny two-species data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from anndata import AnnData

from transferome.errors import DataValidationError, ModelFileError
from transferome.models import NotFittedError
from transferome.models.uge.estimator import UniversalGeneEmbedding
from transferome.models.uge.transfer import drug_shift, species_shift

CONTEXTS = ("liver", "brain", "heart")
PERTURBATIONS = ("control", "drug_a", "drug_b")
N_GENES = 30


pytestmark = pytest.mark.usefixtures("one_thread")


def _species(seed: int, prefix: str, order: np.ndarray | None = None, n: int = 5) -> AnnData:
    """Contexts and drugs act on the same (ancestral) genes in both species, shuffled."""
    rng = np.random.default_rng(seed)
    rows = [(c, p) for c in CONTEXTS for p in PERTURBATIONS for _ in range(n)]
    obs = pd.DataFrame(rows, columns=["context", "perturbation"])
    obs.index = [f"{prefix}{i}" for i in range(len(obs))]
    base = np.random.default_rng(0).gamma(2.0, 1.0, (len(CONTEXTS), N_GENES))
    effect = np.zeros((len(PERTURBATIONS), N_GENES))
    effect[1, :6] = 3.0
    effect[2, 6:12] = -1.5
    mean = np.stack([base[CONTEXTS.index(c)] + effect[PERTURBATIONS.index(p)] for c, p in rows])
    x = np.log1p(np.clip(mean + rng.normal(0, 0.2, mean.shape), 0, None))
    order = np.arange(N_GENES) if order is None else order
    genes = [f"{prefix}g{j}" for j in range(N_GENES)]
    return AnnData(X=x[:, order].astype(np.float32), obs=obs, var=pd.DataFrame(index=genes))


@pytest.fixture(scope="module")
def pair() -> dict[str, AnnData]:
    return {
        "mouse": _species(1, "m"),
        "rat": _species(2, "r", np.random.default_rng(3).permutation(N_GENES)),
    }


def _params(**changes) -> dict:
    return {
        **UniversalGeneEmbedding.fast_params,
        "n_tokens": N_GENES,
        "d_model": 32,
        "max_epochs": 60,
        **changes,
    }


@pytest.fixture(scope="module")
def fitted(pair) -> tuple[UniversalGeneEmbedding, np.ndarray]:
    torch.set_num_threads(1)
    rat = pair["rat"]
    held = ((rat.obs["context"] == "brain") & (rat.obs["perturbation"] == "drug_a")).to_numpy()
    model = UniversalGeneEmbedding(**_params(label_key="context")).fit(
        {"mouse": pair["mouse"], "rat": rat[~held]}, labelled_species=["mouse"]
    )
    return model, held


def test_fit_sets_attributes_and_keeps_input(pair, fitted):
    model, _ = fitted
    assert model.species_ == ("mouse", "rat")
    assert model.classes_ == sorted(CONTEXTS)
    assert np.isfinite(model.history_["train_loss"]).all()
    assert model.history_["train_loss"].iloc[-1] < model.history_["train_loss"].iloc[0]
    # inputs untouched
    assert list(pair["mouse"].obs.columns) == ["context", "perturbation"]


def test_transform_gives_cls_embeddings(pair, fitted):
    model, _ = fitted
    z = model.transform(pair["mouse"], species="mouse")
    assert z.shape == (pair["mouse"].n_obs, 32)
    assert np.isfinite(z).all()


def test_organ_head_transfers_to_the_unlabelled_species(pair, fitted):
    model, _ = fitted
    rat = pair["rat"]
    accuracy = np.mean(model.predict_labels(rat, species="rat") == rat.obs["context"].to_numpy())
    assert accuracy > 0.9
    proba = model.predict_proba(rat, species="rat")
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)


def test_cross_species_prediction_beats_control(pair, fitted):
    model, held = fitted
    rat = pair["rat"]
    truth = rat.X[held].mean(axis=0)
    control_rows = (
        (rat.obs["context"] == "brain") & (rat.obs["perturbation"] == "control")
    ).to_numpy()
    control = rat.X[control_rows].mean(axis=0)
    for route in ("drug", "species", "both"):
        pred = model.predict(rat[~held], [("brain", "drug_a")], species="rat", route=route)
        assert list(pred.var_names) == list(rat.var_names)
        assert pred.obs[["context", "perturbation", "species"]].iloc[0].tolist() == [
            "brain",
            "drug_a",
            "rat",
        ]
        error = np.mean((pred.X[0] - truth) ** 2)
        assert error < 0.5 * np.mean((control - truth) ** 2), route


def test_latent_arithmetic_by_hand():
    index = pd.MultiIndex.from_tuples(
        [
            ("m", "brain", "control"),
            ("m", "brain", "d"),
            ("m", "liver", "control"),
            ("m", "liver", "d"),
            ("r", "brain", "control"),
            ("r", "liver", "control"),
            ("r", "liver", "d"),
        ],
        names=["species", "context", "perturbation"],
    )
    z = np.array([[0, 0], [1, 0], [5, 5], [5, 7], [10, 10], [15, 15], [15, 18]], dtype=float)
    latents = pd.DataFrame(z, index=index)
    latents["n"] = 1
    # same-context shifts elsewhere are preferred: mouse brain
    shift = drug_shift(latents, "d", species="r", context="brain", control="control")
    np.testing.assert_allclose(shift, [1, 0])
    # no other brain: the mean over every measured context except the target
    shift = drug_shift(latents, "d", species="m", context="kidney", control="control")
    np.testing.assert_allclose(shift, [(1 + 0 + 0) / 3, (0 + 2 + 3) / 3])
    assert drug_shift(latents, "nope", species="r", context="brain", control="control") is None
    # species shift: mean of rat - mouse over shared groups (brain ctrl, liver ctrl, liver d)
    np.testing.assert_allclose(
        species_shift(latents, "m", "r"), [(10 + 10 + 10) / 3, (10 + 10 + 11) / 3]
    )


def test_unseen_species_genes_embed_without_retraining(pair, fitted):
    model, _ = fitted
    # a third species: rat's genes renamed, so its descriptions are rat's but no residual exists
    new = pair["rat"].copy()
    new.var_names = [f"h{g}" for g in new.var_names]
    embedded = model.gene_embeddings(adata=new)
    assert embedded.shape == (N_GENES, 32)
    assert embedded.index[0].startswith("h")
    z = model.transform(new)
    assert z.shape == (new.n_obs, 32)
    similarity = model.gene_similarity("mouse", embedded)
    assert similarity.shape == (N_GENES, N_GENES)
    # the drug_a genes of the new species are nearest to mouse's drug_a genes
    mapping = model.map_genes("mouse", embedded, top_k=3)
    order = np.random.default_rng(3).permutation(N_GENES)
    drug_a_new = {f"hrg{j}" for j in range(N_GENES) if order[j] < 6}
    best = mapping[(mapping["rank"] == 1) & mapping["target_gene"].isin(drug_a_new)]
    hits = best["source_gene"].isin({f"mg{j}" for j in range(6)}).mean()
    assert hits >= 0.5


def test_save_load_round_trip(tmp_path, pair, fitted):
    model, held = fitted
    rat = pair["rat"][~held]
    path = model.save(tmp_path / "uge")
    loaded = UniversalGeneEmbedding.load(path)
    assert loaded.get_params() == model.get_params()
    np.testing.assert_array_equal(
        loaded.transform(rat, species="rat"), model.transform(rat, species="rat")
    )
    a = model.predict(rat, [("brain", "drug_a")], species="rat").X
    b = loaded.predict(rat, [("brain", "drug_a")], species="rat").X
    np.testing.assert_array_equal(a, b)
    (path / "weights.safetensors").write_bytes(b"broken")
    with pytest.raises(ModelFileError):
        UniversalGeneEmbedding.load(path)


def test_single_species_predict_contract():
    adata = _species(4, "g")
    held = ((adata.obs["context"] == "heart") & (adata.obs["perturbation"] == "drug_b")).to_numpy()
    train = adata[~held].copy()
    before = train.copy()
    model = UniversalGeneEmbedding(**_params(max_epochs=40)).fit(train)
    pred = model.predict(train, [("heart", "drug_b")])
    assert pred.shape == (1, N_GENES)
    truth = adata.X[held].mean(axis=0)
    control = train.X[
        ((train.obs["context"] == "heart") & (train.obs["perturbation"] == "control")).to_numpy()
    ].mean(axis=0)
    assert np.mean((pred.X[0] - truth) ** 2) < np.mean((control - truth) ** 2)
    np.testing.assert_array_equal(train.X, before.X)
    assert train.obs.equals(before.obs)


def test_errors_name_the_problem(pair, fitted):
    model, _ = fitted
    with pytest.raises(NotFittedError):
        UniversalGeneEmbedding().transform(pair["rat"])
    with pytest.raises(DataValidationError, match="genes do not match"):
        model.predict(pair["mouse"], [("brain", "drug_a")], species="rat")
    with pytest.raises(DataValidationError, match="'kidney'"):
        model.predict(pair["rat"], [("kidney", "drug_a")], species="rat")
    with pytest.raises(DataValidationError, match="'drug_z'"):
        model.predict(pair["rat"], [("brain", "drug_z")], species="rat")
    with pytest.raises(DataValidationError, match="route"):
        UniversalGeneEmbedding(route="sideways").fit(pair)
    counts = pair["mouse"].copy()
    counts.X = np.round(np.expm1(counts.X) * 10)
    with pytest.raises(DataValidationError, match="log-normalised"):
        UniversalGeneEmbedding(**_params()).fit({"mouse": counts})
    with pytest.raises(DataValidationError, match="'tissue'"):
        UniversalGeneEmbedding(**_params(label_key="tissue")).fit(pair)


def test_given_descriptions_are_checked(pair):
    frame = pd.DataFrame({"f": np.zeros(N_GENES)}, index=pair["rat"].var_names)
    with pytest.raises(DataValidationError, match="'dog'"):
        UniversalGeneEmbedding(**_params()).fit(pair, gene_descriptions={"dog": frame})
    with pytest.raises(DataValidationError, match="lack 1 of its genes"):
        UniversalGeneEmbedding(**_params()).fit(pair, gene_descriptions={"rat": frame.iloc[1:]})
    # descriptions sharing no column with the other species' are refused
    with pytest.raises(DataValidationError, match="share no column"):
        UniversalGeneEmbedding(**_params()).fit(pair, gene_descriptions={"rat": frame})
