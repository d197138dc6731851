"""What each prediction leaned on: its source contexts and the stack's coefficients."""

from __future__ import annotations

import pandas as pd

from transferome.report._markup import _table


def provenance_summary(provenance: pd.DataFrame, top: int = 3) -> pd.DataFrame:
    """Return the ``top`` source contexts of every prediction, with their weights.

    One row each target (``model``, ``context``, ``perturbation``, ``sources``).
    """
    sources = provenance[provenance["kind"] == "source_context"]
    rows = []
    keys = (
        ["model", "context", "perturbation"] if "model" in sources else ["context", "perturbation"]
    )
    for key, group in sources.groupby(keys, sort=True):
        ranked = group.sort_values("weight", ascending=False).head(top)
        text = ", ".join(
            f"{n} {w:.2f}" for n, w in zip(ranked["name"], ranked["weight"], strict=True)
        )
        rows.append((*key, text))
    return pd.DataFrame(rows, columns=[*keys, "sources"])


def _provenance_html(provenance: pd.DataFrame) -> str:
    summary = provenance_summary(provenance)
    stack = provenance[provenance["kind"] == "base_predictor"]
    parts = [
        "<p>What each prediction leaned on: the source contexts with the largest effective "
        "weights on their measured change (the full table, with the base predictors' "
        "coefficients and the neighbouring perturbations, is in "
        "<code>tables/</code>).</p>",
        _table(summary),
    ]
    if not stack.empty:
        keys = [k for k in ("model", "name") if k in stack]
        mean = stack.groupby(keys, sort=False)["weight"].mean().reset_index()
        mean = mean.rename(columns={"name": "base predictor", "weight": "mean coefficient"})
        parts.append("<p>Coefficients of the stack, mean over the splits:</p>")
        parts.append(_table(mean))
    return "\n".join(parts)
