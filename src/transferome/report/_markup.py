"""The report's stylesheet and the escaping and formatting of its values and tables."""

from __future__ import annotations

import html
import math
from typing import Any

import numpy as np
import pandas as pd

_STYLE = """
body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 1100px; color: #222; line-height: 1.45; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc;
     padding-bottom: 0.2em; margin-top: 2em; } h3 { margin-bottom: 0.3em; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.6em 0; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: right; }
th { background: #f4f4f4; } td:first-child, th:first-child { text-align: left; }
.summary td, .summary th { font-size: 1.05em; }
.note { color: #555; font-size: 0.9em; } .win { color: #1b7837; font-weight: bold; }
.lose { color: #b2182b; font-weight: bold; } figure { margin: 1em 0; }
figcaption { color: #555; font-size: 0.85em; } img { max-width: 100%; }
pre { background: #f7f7f7; padding: 0.8em; overflow-x: auto; font-size: 0.8em; }
"""


def _heading(name: str, result: Any) -> tuple[str, str]:
    """Title and description of a stage result (its name when it has no title)."""
    return (
        str(getattr(result, "title", "") or name),
        str(getattr(result, "description", "") or ""),
    )


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: Any) -> str:
    if isinstance(value, float | np.floating):
        return "n/a" if not math.isfinite(float(value)) else f"{float(value):.3f}"
    return _e(value)


def _table(frame: pd.DataFrame, *, css: str = "") -> str:
    return frame.to_html(
        index=False, escape=True, classes=css or None, border=0, float_format=_fmt, na_rep="n/a"
    )
