"""The labels the report singles out: the baselines, the bounds and the key metrics."""

from __future__ import annotations

from transferome.benchmark import REFERENCE_ROWS

BASELINES = ("control", "additive", "linear", "similar", "collaborative", "additive (orthologs)")
"""Model labels that are baselines; the strongest of those present (by mean ``pearson_delta``)
is the bar the summary compares the best model against. ``additive (orthologs)`` is the
additive baseline across species."""

# Labels of the rows of a result table that are bounds, not models (never a winner): the noise
# ceiling and the simulator's noise-free truth.
_BOUNDS = REFERENCE_ROWS

KEY_METRICS = (
    "pearson_delta",
    "scaled_pearson_delta",
    "pearson_delta_deg",
    "r2",
    "pearson_deg",
    "r2_deg",
    "deg_direction",
    "discrimination",
)
"""Metrics of the transfer tables in the report (``pearson_delta`` decides the winner)."""
