"""Helpers shared by the cross-species benchmark scripts (markdown tables without tabulate)."""

from __future__ import annotations

import pandas as pd


def markdown(frame: pd.DataFrame, digits: int = 3) -> str:
    """A pipe table of ``frame`` (index included), numbers rounded to ``digits``."""
    table = frame.reset_index() if frame.index.name or frame.index.nlevels > 1 else frame
    header = [str(c) for c in table.columns]

    def cell(value: object) -> str:
        if isinstance(value, float):
            return f"{value:.{digits}f}"
        return str(value)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += [
        "| " + " | ".join(cell(v) for v in row) + " |"
        for row in table.itertuples(index=False, name=None)
    ]
    return "\n".join(lines)
