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
        validate(counts_adata, Schema(**kwargs))


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


def test_fit_trusts_a_description_for_checks_it_passed(counts_adata) -> None:
    from transferome.data.schema import as_schema, checked_schema

    logged = counts_adata.copy()
    logged.X = np.log1p(logged.X)
    description = validate(logged, require_controls=False)
    part = logged[logged.obs["context"] != "heart"]
    # keys and genes only: a part of the described data passes without a scan of its values
    assert checked_schema(part, description, require_controls=False) == description.schema
    assert as_schema(description) == description.schema
    assert as_schema(None) == Schema()
    with pytest.raises(DataValidationError, match="2 genes but were described with"):
        checked_schema(part[:, :2], description, require_controls=False)
    missing = part.copy()
    del missing.obs["perturbation"]
    with pytest.raises(DataValidationError, match="obs key 'perturbation'"):
        checked_schema(missing, description, require_controls=False)
    # a stricter check than the description passed runs validate in full
    broken = part.copy()
    broken.X[0, 0] = np.nan
    with pytest.raises(DataValidationError, match="NaN"):
        checked_schema(broken, validate(broken, allow_nan=True, require_controls=False))
    with pytest.raises(DataValidationError, match="raw counts are required"):
        checked_schema(part, description, require_controls=False, require_counts=True)
    # the same data trusted: NaN allowed by both
    assert (
        checked_schema(
            broken,
            validate(broken, allow_nan=True, require_controls=False),
            require_controls=False,
            allow_nan=True,
        )
        == description.schema
    )
    with pytest.raises(DataValidationError, match="schema must be a Schema"):
        validate(logged, {"context_key": "context"})


def test_schema_fields_make_the_command_line_options() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    Schema.add_arguments(parser, hidden=("dose_key",))
    args = parser.parse_args(["--context-key", "tissue", "--combination-sep", "_"])
    schema = Schema.from_args(args)
    assert schema == Schema(context_key="tissue", combination_sep="_")
    assert "--dose-key" not in parser.format_help()
    assert "--time-key" in parser.format_help()
    assert Schema.optional_keys() == ("species_key", "dose_key", "sample_key", "time_key")
    assert Schema(dose_key="d").without_optional_keys() == Schema(
        species_key=None, dose_key=None, sample_key=None, time_key=None
    )
