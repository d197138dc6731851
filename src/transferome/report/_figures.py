"""The report's figures: new matplotlib figures, saved as PNG + SVG and embedded."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

from transferome.data import atomic_path
from transferome.report._markup import _e


class _Figures:
    """Saves figures as PNG + SVG under ``folder/figures`` and returns ``<figure>`` HTML."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder / "figures"

    def add(self, fig: Any, name: str, caption: str) -> str:
        import matplotlib.pyplot as plt

        png = io.BytesIO()
        fig.savefig(png, format="png", dpi=110, bbox_inches="tight")
        with atomic_path(self.folder / f"{name}.png") as tmp:
            tmp.write_bytes(png.getvalue())
        with atomic_path(self.folder / f"{name}.svg") as tmp:
            fig.savefig(tmp, format="svg", bbox_inches="tight")
        plt.close(fig)
        data = base64.b64encode(png.getvalue()).decode("ascii")
        return (
            f'<figure id="fig-{_e(name)}"><img alt="{_e(caption)}" '
            f'src="data:image/png;base64,{data}"><figcaption>{_e(caption)}</figcaption></figure>'
        )


def _new_figure(width: float, height: float, ncols: int = 1, nrows: int = 1) -> tuple:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes
