"""Figure data: each ``*_frame`` returns exactly what its ``plot_*`` function draws."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from transferome.plotting import (
    acquisition_frame,
    annotation_frame,
    latent_frame,
    mapping_frame,
    model_frame,
    plot_acquisition,
    plot_annotation,
    plot_latent,
    plot_mapping,
    plot_models,
    plot_profile_scatter,
    profile_frame,
)


def _ax():
    return Figure().subplots()


def test_profile_frame_gives_changes_against_control():
    profiles = pd.DataFrame(
        {
            "model": ["m", "m", "m", "other"],
            "context": ["liver", "liver", "brain", "liver"],
            "perturbation": ["p", "p", "p", "p"],
            "gene": ["a", "b", "a", "a"],
            "control": [1.0, 2.0, 0.0, 1.0],
            "observed": [2.0, 1.5, 1.0, 9.0],
            "predicted": [1.5, 1.0, 3.0, 9.0],
        }
    )
    frame = profile_frame(profiles, "m", "liver")
    assert frame["gene"].tolist() == ["a", "b"]
    np.testing.assert_allclose(frame["observed_change"], [1.0, -0.5])
    np.testing.assert_allclose(frame["predicted_change"], [0.5, -1.0])
    ax = plot_profile_scatter(frame, _ax(), title="liver")
    assert ax.get_title() == "liver  r = 1.00"


def test_model_and_annotation_frames():
    summary = pd.DataFrame(
        {
            "model": ["control", "additive", "x", "x"],
            "metric": ["pearson_delta", "pearson_delta", "pearson_delta", "r2"],
            "mean": [np.nan, 0.4, 0.6, 0.9],
            "median": [np.nan, 0.5, 0.55, 0.9],
        }
    )
    frame = model_frame(summary)
    assert frame["model"].tolist() == ["x", "additive", "control"]
    assert len(plot_models(frame, _ax()).patches) == 3
    accuracy = pd.DataFrame(
        {
            "context": ["b", "a", "all"],
            "n": [1, 2, 3],
            "accuracy": [1.0, 0.5, 0.6],
            "chance": [0.3, 0.7, 0.5],
        }
    )
    frame = annotation_frame(accuracy)
    assert frame["context"].tolist() == ["a", "b"]
    assert [p.get_height() for p in plot_annotation(frame, _ax()).patches] == [0.5, 1.0]


def test_mapping_acquisition_and_latent_frames():
    precision = pd.DataFrame(
        {
            "method": ["ortholog", "ortholog", "reactome", "reactome"],
            "group": ["one-to-one", "all", "one-to-one", "all"],
            "precision_at_1": [1.0, 0.9, 0.4, 0.3],
        }
    )
    frame = mapping_frame(precision)
    assert frame.columns.tolist() == ["all", "one-to-one"]
    assert frame.loc["reactome", "all"] == pytest.approx(0.3)
    assert len(plot_mapping(frame, _ax()).patches) == 4
    curve = pd.DataFrame(
        {
            "strategy": ["random", "suggested"] * 4,
            "seed": [0, 0, 0, 0, 1, 1, 1, 1],
            "measured": [10, 10, 12, 12] * 2,
            "error": [1.0, 1.0, 0.8, 0.5, 1.0, 1.0, 0.6, 0.7],
        }
    )
    frame = acquisition_frame(curve).set_index(["strategy", "measured"])
    assert frame.loc[("suggested", 12), "mean"] == pytest.approx(0.6)
    assert frame.loc[("suggested", 12), "sd"] == pytest.approx(np.std([0.5, 0.7], ddof=1))
    assert frame.loc[("random", 10), "sd"] == 0
    assert (frame["seeds"] == 2).all()
    ax = plot_acquisition(frame.reset_index(), _ax())
    assert len(ax.lines) == 2
    assert len(ax.collections) == 2  # one band per strategy
    assert "2 seeds" in ax.get_xlabel()
    with pytest.raises(ValueError, match="error"):
        acquisition_frame(curve.drop(columns="error"))
    latent = pd.DataFrame(
        {
            "species": ["mouse", "rat"],
            "context": ["liver", "liver"],
            "umap_1": [0.0, 1.0],
            "umap_2": [1.0, 0.0],
        }
    )
    frame = latent_frame(latent, "species")
    assert frame["label"].tolist() == ["mouse", "rat"]
    assert len(plot_latent(frame, _ax(), title="t").collections) == 2
