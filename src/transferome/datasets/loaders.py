"""Loaders of the public perturbation datasets (see the "Real datasets" table of the README).

Each loader reads one file, checks its layout (a :class:`~transferome.errors.ReaderError`
names the file and what is missing), and returns a new AnnData whose obs has the schema's keys
filled in: ``species``, ``context``, ``perturbation`` (control label ``"control"``), and
``dose`` and ``sample`` where the data know them. The original obs columns are kept (an
original column whose name collides with a schema key is kept as ``<key>_original``). Where
``X`` holds raw counts they move to ``layers["counts"]`` and ``X`` becomes
``log1p(normalize_total(1e4))``. The input file is only read.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
from anndata import AnnData

from transferome.data.io import read_gct
from transferome.datasets._common import (
    log_normalise,
    mark,
    read_checked_h5ad,
    require_columns,
    set_obs,
)
from transferome.errors import ReaderError

__all__ = [
    "load_cmap",
    "load_kang_muscat",
    "load_kang_scgen",
    "load_l1000_modz",
    "load_tggates",
]

CONTROL = "control"


def load_kang_scgen(path: str | os.PathLike[str]) -> AnnData:
    """Kang 2018 PBMC, scGen validation split (``kang_pbmc_scgen_valid.h5ad``).

    ``context`` = ``cell_type``; ``perturbation`` = ``condition`` (``control`` /
    ``stimulated``, IFN-beta); ``species`` = ``human``. ``X`` is log-normalised as shipped (no
    counts); there is no donor column.
    """
    p = Path(path)
    adata = read_checked_h5ad(p, ["condition", "cell_type"])
    obs = adata.obs.copy()
    condition = obs["condition"].astype(str)
    set_obs(obs, "species", "human")
    set_obs(obs, "context", obs["cell_type"].astype(str))
    set_obs(obs, "perturbation", condition.where(condition != "control", CONTROL))
    adata.obs = obs
    return mark(adata, "kang_scgen", p, values="log")


def load_kang_muscat(path: str | os.PathLike[str]) -> AnnData:
    """Kang 2018 PBMC via muscat (``kang_pbmc_muscat.h5ad``).

    ``context`` = ``cluster_id`` (cell type); ``perturbation`` = ``group_id`` with ``ctrl`` ->
    ``control`` and ``stim`` -> ``stimulated``; ``sample`` = ``sample_id`` (donor x
    condition) and ``donor`` its donor number; ``species`` = ``human``. Raw counts move to
    ``layers["counts"]``, ``X`` becomes log-normalised; ``layers["logcounts"]`` is kept.
    """
    p = Path(path)
    adata = read_checked_h5ad(p, ["cluster_id", "sample_id", "group_id"])
    obs = adata.obs.copy()
    group = obs["group_id"].astype(str).replace({"ctrl": CONTROL, "stim": "stimulated"})
    set_obs(obs, "species", "human")
    set_obs(obs, "context", obs["cluster_id"].astype(str))
    set_obs(obs, "perturbation", group)
    set_obs(obs, "sample", obs["sample_id"].astype(str))
    set_obs(obs, "donor", obs["sample_id"].astype(str).str.replace(r"^\D+", "", regex=True))
    adata.obs = obs
    log_normalise(adata)
    return mark(adata, "kang_muscat", p, values="log")


_DOSE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(\S*)")
# Micromolar per unit; "<b5>M" is how the L1000 GCT files spell the micro sign.
_MICROMOLAR = {"nm": 1e-3, "um": 1.0, "<b5>m": 1.0, "\u00b5m": 1.0, "\u03bcm": 1.0, "mm": 1e3}


def _parse_dose(text: str) -> float:
    """Dose in micromolar from a label such as ``10 uM`` or ``500 nM`` (NaN if unknown)."""
    match = _DOSE.match(str(text))
    if not match:
        return float("nan")
    unit = match.group(2).lower()
    factor = _MICROMOLAR.get(unit, 1.0 if unit == "" else float("nan"))
    return float(match.group(1)) * factor


def load_l1000_modz(path: str | os.PathLike[str], *, add_zero_controls: bool = True) -> AnnData:
    """LINCS L1000 consensus (MODZ) signatures (``l1000_modz_3drugs_65lines.gct``).

    Observations are signatures (columns of the GCT file), genes the 978 landmarks.
    ``context`` = ``cell_id``; ``perturbation`` = ``pert_iname``; ``dose`` = ``pert_idose`` in
    micromolar; ``sample`` = ``brew_prefix`` (plate, cell line and time);
    ``species`` = ``human``. ``var_names`` are the probe ids; ``pr_gene_symbol`` is kept.

    The values are already changes against control (robust z-scores), so
    ``uns["transferome"]["values"] == "delta"`` and the control profile is zero: with
    ``add_zero_controls`` (the default) one all-zero ``control`` row is added per cell line so
    that every context has a control, as the transfer task expects. Validate the result with
    ``allow_negative=True``.
    """
    p = Path(path)
    if p.suffix.lower() != ".gct":
        raise ReaderError(f"{p}: expected a .gct file (GCT 1.3)")
    adata = read_gct(p)
    require_columns(p, adata.obs.columns, ["cell_id", "pert_iname", "pert_idose"], "column meta")
    obs = adata.obs.copy()
    set_obs(obs, "species", "human")
    set_obs(obs, "context", obs["cell_id"].astype(str))
    set_obs(obs, "perturbation", obs["pert_iname"].astype(str))
    set_obs(obs, "dose", obs["pert_idose"].map(_parse_dose).astype(float))
    if "brew_prefix" in obs:
        set_obs(obs, "sample", obs["brew_prefix"].astype(str))
    adata.obs = obs
    adata.X = np.asarray(adata.X, dtype=np.float32)
    if add_zero_controls:
        lines = sorted(obs["context"].unique())
        controls = pd.DataFrame(
            {
                "species": "human",
                "context": lines,
                "perturbation": CONTROL,
                "dose": 0.0,
                "sample": [f"control_{c}" for c in lines],
            },
            index=[f"control_{c}" for c in lines],
        )
        zeros = AnnData(
            X=np.zeros((len(lines), adata.n_vars), dtype=np.float32),
            obs=controls,
            var=adata.var,
        )
        combined = ad.concat([adata, zeros], join="outer", merge="first")
        combined.var = adata.var.copy()
        adata = combined
    return mark(adata, "l1000_modz", p, values="delta", zero_controls=bool(add_zero_controls))


def load_tggates(path: str | os.PathLike[str]) -> AnnData:
    """Open TG-GATEs human primary hepatocytes (``tggates_hepatocyte_small.h5ad``).

    ``perturbation`` = ``treatmentid``, or ``control`` where ``dose_level`` is ``Control``
    (each compound's experiment has its own controls, kept together by ``exp_id``);
    ``context`` = ``hepatocyte_<duration>h`` (2, 8 or 24 h); ``dose`` = ``concentration``;
    ``sample`` = the array (``samplename``); ``species`` = ``human`` (the original column is
    kept as ``species_original``). ``X`` is log2 RMA as shipped.
    """
    p = Path(path)
    required = ["treatmentid", "dose_level", "duration", "concentration", "samplename"]
    adata = read_checked_h5ad(p, required)
    obs = adata.obs.copy()
    is_control = obs["dose_level"].astype(str).str.lower() == "control"
    treatment = obs["treatmentid"].astype(str)
    set_obs(obs, "species", "human")
    set_obs(obs, "context", "hepatocyte_" + obs["duration"].astype(str) + "h")
    set_obs(obs, "perturbation", treatment.where(~is_control, CONTROL))
    set_obs(obs, "dose", obs["concentration"].astype(float).where(~is_control, 0.0))
    set_obs(obs, "sample", obs["samplename"].astype(str))
    adata.obs = obs
    return mark(adata, "tggates", p, values="log2")


def load_cmap(path: str | os.PathLike[str]) -> AnnData:
    """Connectivity Map build 02, small subset (``cmap_small.h5ad``).

    ``context`` = ``sampleid`` (cell line); ``perturbation`` = ``cmap_name`` where ``xptype``
    is ``perturbation``, else ``control`` (vehicle); ``dose`` = ``concentration_M`` in
    micromolar; ``sample`` = the array (``samplename``); ``species`` = ``human``. ``X`` is log2
    expression as shipped. Two cell lines (``SKMEL5``, ``ssMCF7``) hold controls only.
    """
    p = Path(path)
    adata = read_checked_h5ad(p, ["sampleid", "xptype", "cmap_name", "concentration_M"])
    obs = adata.obs.copy()
    xptype = obs["xptype"].astype(str).str.lower()
    unknown = sorted(set(xptype) - {"control", "perturbation"})
    if unknown:
        raise ReaderError(f"{p}: obs 'xptype' has unexpected value(s) {unknown}")
    is_control = xptype == "control"
    set_obs(obs, "species", "human")
    set_obs(obs, "context", obs["sampleid"].astype(str))
    set_obs(obs, "perturbation", obs["cmap_name"].astype(str).where(~is_control, CONTROL))
    micromolar = obs["concentration_M"].astype(float) * 1e6
    set_obs(obs, "dose", micromolar.where(~is_control, 0.0))
    if "samplename" in obs:
        set_obs(obs, "sample", obs["samplename"].astype(str))
    adata.obs = obs
    return mark(adata, "cmap", p, values="log2")
