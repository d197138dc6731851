"""The self-contained HTML report of a run (figures embedded, every label escaped)."""

from __future__ import annotations

from transferome.report.html import (
    BASELINES,
    KEY_METRICS,
    render_report,
    summary_table,
    write_report,
)

__all__ = ["BASELINES", "KEY_METRICS", "render_report", "summary_table", "write_report"]
