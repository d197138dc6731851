"""Figures of a run: ``*_frame`` functions prepare tidy tables, ``plot_*`` functions draw them."""

from __future__ import annotations

from transferome.plotting.figures import (
    acquisition_frame,
    annotation_frame,
    latent_frame,
    mapping_frame,
    model_frame,
    plain_text,
    plot_acquisition,
    plot_annotation,
    plot_latent,
    plot_mapping,
    plot_models,
    plot_profile_scatter,
    profile_frame,
)

__all__ = [
    "acquisition_frame",
    "annotation_frame",
    "latent_frame",
    "mapping_frame",
    "model_frame",
    "plain_text",
    "plot_acquisition",
    "plot_annotation",
    "plot_latent",
    "plot_mapping",
    "plot_models",
    "plot_profile_scatter",
    "profile_frame",
]
