"""Splits: controls of held-out contexts stay in training, no overlap, determinism by seed."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import make_counts_adata
from transferome.data.schema import Schema
from transferome.data.splits import (
    Split,
    holdout_combinations,
    holdout_contexts,
    holdout_groups,
    holdout_perturbations,
    holdout_species,
    leave_one_context_out,
)
from transferome.errors import DataValidationError

SCHEMA = Schema()


def _check(split: Split, adata) -> None:
    train, val, test = set(split.train), set(split.val), set(split.test)
    assert not train & test
    assert not val & test
    assert not train & val
    assert len(train | val | test) == adata.n_obs
    labels = adata.obs["perturbation"].to_numpy()
    contexts = adata.obs["context"].to_numpy()
    assert not (labels[split.test] == "control").any()
    for context in {c for c, _ in split.held_out}:
        controls = np.flatnonzero((contexts == context) & (labels == "control"))
        assert set(controls) <= train
        assert split.kept_controls[context] == controls.size
        assert f"held-out context {context!r} keeps its {controls.size} controls" in (
            split.summary()
        )


def test_holdout_groups_keeps_controls_and_is_disjoint() -> None:
    adata = make_counts_adata()
    split = holdout_groups(adata, [("liver", "drug_a")], schema=SCHEMA, val_fraction=0.4)
    _check(split, adata)
    assert split.held_out == (("liver", "drug_a"),)
    assert len(split.test) == 5
    # 2 of 5 observations of each training group, never the held-out context's controls
    assert len(split.val) == 2 * 7


def test_validation_is_deterministic_by_seed() -> None:
    adata = make_counts_adata(n_per_group=10)
    a = holdout_contexts(adata, "liver", schema=SCHEMA, val_fraction=0.3, seed=1)
    b = holdout_contexts(adata, "liver", schema=SCHEMA, val_fraction=0.3, seed=1)
    c = holdout_contexts(adata, "liver", schema=SCHEMA, val_fraction=0.3, seed=2)
    np.testing.assert_array_equal(a.val, b.val)
    assert not np.array_equal(a.val, c.val)
    _check(a, adata)


def test_holdout_contexts_and_perturbations() -> None:
    adata = make_counts_adata()
    split = holdout_contexts(adata, ["liver", "heart"], schema=SCHEMA)
    _check(split, adata)
    assert {c for c, _ in split.held_out} == {"liver", "heart"}
    split = holdout_perturbations(adata, "drug_b", schema=SCHEMA)
    _check(split, adata)
    assert {p for _, p in split.held_out} == {"drug_b"}
    assert len(split.held_out) == 3


def test_holdout_perturbation_takes_its_combinations() -> None:
    adata = make_counts_adata(perturbations=("control", "a", "b", "a+b"))
    split = holdout_perturbations(adata, "a", schema=SCHEMA)
    assert {p for _, p in split.held_out} == {"a", "a+b"}
    split = holdout_perturbations(adata, "a", schema=SCHEMA, include_combinations=False)
    assert {p for _, p in split.held_out} == {"a"}


def test_combination_holdout_keeps_singles() -> None:
    adata = make_counts_adata(perturbations=("control", "a", "b", "c", "a+b", "a+d"))
    adata = adata[~adata.obs["perturbation"].isin(["d"])].copy()
    split = holdout_combinations(adata, schema=SCHEMA)
    _check(split, adata)
    # a+d is not selected: its single d is never observed
    assert {p for _, p in split.held_out} == {"a+b"}
    labels = adata.obs["perturbation"].to_numpy()
    for single in ("a", "b"):
        assert set(np.flatnonzero(labels == single)) <= set(split.train)
    with pytest.raises(DataValidationError, match="singles"):
        holdout_combinations(adata, ["a+d"], schema=SCHEMA)
    with pytest.raises(DataValidationError, match="not a combination"):
        holdout_combinations(adata, ["a"], schema=SCHEMA)


def test_holdout_species() -> None:
    adata = make_counts_adata()
    adata.obs["species"] = np.where(adata.obs["context"] == "liver", "rat", "mouse")
    split = holdout_species(adata, "rat", schema=SCHEMA)
    _check(split, adata)
    assert {c for c, _ in split.held_out} == {"liver"}
    with pytest.raises(DataValidationError, match="'human'"):
        holdout_species(adata, "human", schema=SCHEMA)


def test_leave_one_context_out() -> None:
    adata = make_counts_adata()
    # drug_b measured in liver only: never a target
    drop = (adata.obs["perturbation"] == "drug_b") & (adata.obs["context"] != "liver")
    adata = adata[~drop.to_numpy()].copy()
    splits = list(leave_one_context_out(adata, schema=SCHEMA))
    assert [s.held_out for s in splits] == [
        (("heart", "drug_a"),),
        (("kidney", "drug_a"),),
        (("liver", "drug_a"),),
    ]
    for split in splits:
        _check(split, adata)


def test_errors_name_the_problem() -> None:
    adata = make_counts_adata()
    with pytest.raises(DataValidationError, match="cannot be held out"):
        holdout_groups(adata, [("liver", "control")], schema=SCHEMA)
    with pytest.raises(DataValidationError, match="not observed"):
        holdout_groups(adata, [("lung", "drug_a")], schema=SCHEMA)
    with pytest.raises(DataValidationError, match="val_fraction"):
        holdout_contexts(adata, "liver", schema=SCHEMA, val_fraction=1.5)
    no_controls = adata[
        ~((adata.obs["context"] == "liver") & (adata.obs["perturbation"] == "control")).to_numpy()
    ].copy()
    with pytest.raises(DataValidationError, match="transfer task needs target controls"):
        holdout_contexts(no_controls, "liver", schema=SCHEMA)
    with pytest.raises(DataValidationError, match="'cell_type'"):
        holdout_contexts(adata, "liver", schema=Schema(context_key="cell_type"))
