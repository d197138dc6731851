"""Validation of AnnData against the schema: the description and every error."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from tests.conftest import make_counts_adata
from transferome.data import Schema, validate
from transferome.data.schema import split_combination
from transferome.errors import DataValidationError


def test_description_of_valid_counts(counts_adata) -> None:
    before = counts_adata.copy()
    d = validate(counts_adata)
    assert d.value_type == "counts"
    assert d.contexts == ("heart", "kidney", "liver")
    assert d.perturbations == ("drug_a", "drug_b")
    assert dict(d.control_counts) == {"heart": 5, "kidney": 5, "liver": 5}
    assert d.schema.species_key is None  # default name, absent: optional
    assert d.schema.sample_key == "sample"
    assert d.table().loc["liver", "drug_a"] == 5
    # the user's object is untouched
    np.testing.assert_array_equal(before.X, counts_adata.X)
    assert before.obs.equals(counts_adata.obs)
    with pytest.raises(AttributeError):
        d.n_obs = 3  # type: ignore[misc]


def test_combinations_split() -> None:
    adata = make_counts_adata(perturbations=("control", "a", "b", "a+b"))
    d = validate(adata)
    assert d.combinations == ("a+b",)
    assert d.components["a+b"] == ("a", "b")
    assert d.singles == ("a", "b")
    assert split_combination(" b + a ") == ("a", "b")


def test_log_values_detected(counts_adata) -> None:
    adata = counts_adata.copy()
    adata.X = np.log1p(adata.X / 3.0)
    assert validate(adata).value_type == "log"
    adata.X = sp.csr_matrix(adata.X)
    assert validate(adata).value_type == "log"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"context_key": "tissue"}, "obs key 'tissue'"),
        ({"sample_key": "donor"}, "obs key 'donor'"),
        ({"control": "vehicle"}, "labels present: ['control', 'drug_a', 'drug_b']"),
    ],
)
def test_key_errors(counts_adata, kwargs, message) -> None:
    with pytest.raises(DataValidationError, match=message.replace("[", r"\[").replace("]", r"\]")):
        validate(counts_adata, **kwargs)


def test_context_without_control(counts_adata) -> None:
    adata = counts_adata[
        ~((counts_adata.obs.context == "heart") & (counts_adata.obs.perturbation == "control"))
    ].copy()
    with pytest.raises(DataValidationError, match=r"\['heart'\].*no 'control'"):
        validate(adata)
    assert validate(adata, require_controls=False).control_counts.get("heart") is None


@pytest.mark.parametrize(
    ("value", "message"), [(np.nan, "1 NaN"), (np.inf, "1 infinite"), (-1.0, "negative")]
)
def test_bad_values(counts_adata, value, message) -> None:
    adata = counts_adata.copy()
    adata.X[3, 4] = value
    with pytest.raises(DataValidationError, match=message):
        validate(adata)


def test_negative_allowed_as_signed(counts_adata) -> None:
    adata = counts_adata.copy()
    adata.X[0, 0] = -2.5
    assert validate(adata, allow_negative=True).value_type == "signed"


def test_counts_required(counts_adata) -> None:
    adata = counts_adata.copy()
    adata.X = adata.X + 0.5
    with pytest.raises(DataValidationError, match="raw counts are required"):
        validate(adata, require_counts=True)


def test_duplicated_names(counts_adata) -> None:
    adata = counts_adata.copy()
    names = list(adata.var_names)
    names[1] = names[0]
    adata.var_names = names
    with pytest.raises(DataValidationError, match="duplicated var names"):
        validate(adata)


def test_empty(counts_adata) -> None:
    with pytest.raises(DataValidationError, match="empty"):
        validate(counts_adata[:0].copy())


def test_schema_round_trip() -> None:
    schema = Schema(context_key="cell_type")
    assert Schema.from_dict(schema.to_dict()) == schema
    with pytest.raises(DataValidationError, match="unknown schema field"):
        Schema.from_dict({"tissue_key": "x"})
