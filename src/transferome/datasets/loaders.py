"""Loaders of the public perturbation datasets (see the table in ``docs/real-datasets.md``).

Each loader reads one file, checks its layout (a :class:`~transferome.errors.ReaderError`
names the file and what is missing), and returns a new AnnData whose obs has the schema's keys
filled in: ``species``, ``context``, ``perturbation`` (control label ``"control"``), and
``dose`` and ``sample`` where the data know them. The original obs columns are kept (an
original column whose name collides with a schema key is kept as ``<key>_original``). Where
``X`` holds raw counts they move to ``layers["counts"]`` and ``X`` becomes
``log1p(normalize_total(1e4))``. The input file is only read.

Signature files (L1000, Tahoe, Perturb-seq, DrugMatrix) hold changes against control, not
levels: ``uns["transferome"]["values"] == "delta"``, NaN (where present) means "not ranked /
not measured" and is kept, and by default one all-zero ``control`` row is added per context
(the control of a change is zero), as the transfer task expects.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

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
    "load_drugmatrix_signatures",
    "load_kang_muscat",
    "load_kang_scgen",
    "load_l1000_modz",
    "load_perturbseq_signatures",
    "load_sciplex3_pseudobulk",
    "load_tahoe_signatures",
    "load_tggates",
    "load_tggates_rat_liver",
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


def _add_zero_controls(adata: AnnData, species: str) -> AnnData:
    """``adata`` with one all-zero ``control`` row per context appended (change data).

    The rows carry ``species``, ``context`` and ``perturbation``, and ``dose`` = 0 and
    ``sample`` = ``control_<context>`` where ``adata`` has those columns; other obs columns are
    missing (NaN) there. Layers get zero rows of their own dtype; ``uns`` is kept.
    """
    contexts = sorted(adata.obs["context"].astype(str).unique())
    names = [f"control_{c}" for c in contexts]
    columns: dict[str, object] = {
        "species": species,
        "context": contexts,
        "perturbation": CONTROL,
    }
    if "dose" in adata.obs:
        columns["dose"] = 0.0
    if "sample" in adata.obs:
        columns["sample"] = names
    zeros = AnnData(
        X=np.zeros((len(contexts), adata.n_vars), dtype=np.float32),
        obs=pd.DataFrame(columns, index=names),
        var=adata.var,
        layers={
            key: np.zeros((len(contexts), adata.n_vars), dtype=np.asarray(layer).dtype)
            for key, layer in adata.layers.items()
        },
    )
    combined = ad.concat([adata, zeros], join="outer", merge="first")
    combined.var = adata.var.copy()
    combined.uns = dict(adata.uns)
    return combined


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
        adata = _add_zero_controls(adata, "human")
    return mark(adata, "l1000_modz", p, values="delta", zero_controls=bool(add_zero_controls))


def load_tggates(path: str | os.PathLike[str]) -> AnnData:
    """Open TG-GATEs human primary hepatocytes (``tggates_hepatocyte_small.h5ad``).

    ``perturbation`` = ``treatmentid``, or ``control`` where ``dose_level`` is ``Control``
    (each compound's experiment has its own controls, kept together by ``exp_id``);
    ``context`` = ``hepatocyte_<duration>h`` (2, 8 or 24 h); ``dose`` = ``concentration``
    (micromolar; 0 for controls); ``time`` = ``duration`` in hours; ``sample`` = the array
    (``samplename``); ``species`` = ``human`` (the original column is kept as
    ``species_original``). ``X`` is log2 RMA as shipped.
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
    set_obs(obs, "time", obs["duration"].astype(float))
    set_obs(obs, "sample", obs["samplename"].astype(str))
    adata.obs = obs
    return mark(adata, "tggates", p, values="log2")


def load_cmap(path: str | os.PathLike[str]) -> AnnData:
    """Load Connectivity Map build 02, small subset (``cmap_small.h5ad``).

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


def _signatures(
    path: str | os.PathLike[str],
    source: str,
    species: str,
    *,
    add_zero_controls: bool,
) -> AnnData:
    """Read a sigrecon signature file (obs ``context``, ``perturbation``) into the schema."""
    p = Path(path)
    adata = read_checked_h5ad(p, ["context", "perturbation"])
    obs = adata.obs.copy()
    perturbation = obs["perturbation"].astype(str)
    if (perturbation == CONTROL).any():
        raise ReaderError(
            f"{p}: obs 'perturbation' already has {CONTROL!r} rows; signature files hold "
            "changes against control only"
        )
    set_obs(obs, "species", species)
    set_obs(obs, "context", obs["context"].astype(str))
    set_obs(obs, "perturbation", perturbation)
    adata.obs = obs
    adata.X = np.asarray(adata.X, dtype=np.float32)
    if add_zero_controls:
        adata = _add_zero_controls(adata, species)
    return mark(adata, source, p, values="delta", zero_controls=bool(add_zero_controls))


def load_tahoe_signatures(
    path: str | os.PathLike[str], *, add_zero_controls: bool = True
) -> AnnData:
    """Tahoe-100M drug signatures via sigrecon (``sigrecon_tahoe_rank_signatures.h5ad``).

    The file holds 1,010 signatures x 6,764 genes: 101 drugs, each in all 10 cancer cell lines
    (``A498``, ``HCT15``, ``HEC_1_A``, ``LOVO``, ``MIAPACA_2``, ``NCI_H23``, ``PANC03.27``,
    ``SNU_1``, ``SNU_423``, ``SW48``), one signature per (cell line, drug). obs has
    ``context`` (= ``cell_line``), ``perturbation`` (drug), ``n_ranked`` (genes ranked in the
    full signature) and ``species`` (``human``). ``X`` (float32) is the signed rank of each
    gene in the drug (highest dose) vs DMSO pseudobulk DESeq2 result, in [-1, 1] (1 most up,
    -1 most down); 2.3% of the entries are NaN (gene not ranked in that signature; up to 66%
    of one row, no row or gene all NaN) and are kept. ``layers["sig_up"]`` (int8 0/1) marks
    each signature's up-regulated gene set (tens of genes per row); ``uns`` keeps the file's
    provenance notes.

    ``context`` = ``context``; ``perturbation`` = ``perturbation``; ``species`` = ``human``.
    Values are changes against control: ``uns["transferome"]["values"] == "delta"``. With
    ``add_zero_controls`` (the default) one all-zero ``control`` row is added per cell line
    (1,020 rows in all). Validate with ``allow_negative=True`` (and NaN allowed).
    """
    return _signatures(path, "tahoe", "human", add_zero_controls=add_zero_controls)


def load_perturbseq_signatures(
    path: str | os.PathLike[str], *, add_zero_controls: bool = True
) -> AnnData:
    """Replogle 2022 Perturb-seq via sigrecon (``sigrecon_perturbseq_rank_signatures.h5ad``).

    The file holds 1,170 signatures x 7,225 genes: the same 585 CRISPRi knock-downs (the
    knocked-down gene, ``obs.perturbation``; 97% of them are also genes of ``var``) in each of
    ``K562`` and ``RPE1`` (``obs.context``, = ``cell_line``); obs also has ``n_ranked``
    (always 1000) and ``species`` (``human``). ``X`` (float32) is a rank score of only the
    1,000 most up-regulated genes of each knock-down vs non-targeting control,
    ``1 - (rank - 1) / 1000`` in [0.001, 1]; every other entry is NaN (86.2% of the matrix,
    the same in every row) and is kept: NaN here means "not among the top 1,000", not a zero
    change. ``layers["sig_up"]`` (int8 0/1) marks the up-regulated set sigrecon keeps.

    ``context`` = ``context``; ``perturbation`` = ``perturbation``; ``species`` = ``human``.
    Values are changes against control: ``uns["transferome"]["values"] == "delta"``; with
    ``add_zero_controls`` (the default) one all-zero ``control`` row is added per cell line.
    """
    return _signatures(path, "perturbseq", "human", add_zero_controls=add_zero_controls)


def load_drugmatrix_signatures(
    path: str | os.PathLike[str], *, add_zero_controls: bool = True
) -> AnnData:
    """DrugMatrix rat signatures via sigrecon (``sigrecon_drugmatrix_rank_signatures.h5ad``).

    The file holds 78 signatures x 15,248 genes: 39 compounds, each in rat ``liver`` and
    ``kidney`` in vivo (``obs.context``, = ``organ``), limma at the maximum dose and time vs
    control; obs also has ``n_ranked`` (15,248) and ``species`` (``rat``). Genes are named by
    mouse symbols, 870 of them joined ``A /// B`` where a probe maps to several. ``X``
    (float32) is the signed rank score in [-1, 1] (1 most up, -1 most down; half the genes of
    each row positive, half negative), with no NaN. ``layers["sig_up"]`` (int8 0/1) marks
    each signature's up-regulated set.

    ``context`` = ``context`` (organ); ``perturbation`` = ``perturbation``; ``species`` =
    ``rat``. Values are changes against control: ``uns["transferome"]["values"] == "delta"``;
    with ``add_zero_controls`` (the default) one all-zero ``control`` row is added per organ.
    """
    return _signatures(path, "drugmatrix", "rat", add_zero_controls=add_zero_controls)


def load_sciplex3_pseudobulk(path: str | os.PathLike[str]) -> AnnData:
    """sci-Plex3 pseudobulk, 9 drugs x 3 cell lines (``sciplex3_pseudobulk_9drugs_3lines.h5ad``).

    The file holds 30 profiles x 3,000 genes (``var_names`` symbols, ``var.ensembl_id``): the
    mean log-normalised expression of the cells treated with each of 9 drugs at the highest
    dose, and of the vehicle cells (``perturbation`` = ``control``, ``is_control``), in each of
    ``A549``, ``K562`` and ``MCF7`` (``obs.cell_line``); one row per (cell line, perturbation).
    ``X`` (float32) is in [0, 4.51], 76% zeros, no NaN. The dose is not in the file (the
    sci-Plex3 highest dose), so there is no ``dose`` column; nor a sample (pseudobulk).

    ``context`` = ``cell_line``; ``perturbation`` = ``perturbation`` (already ``control`` for
    vehicle, checked against ``is_control`` when present); ``species`` = ``human``. Values are
    log-normalised: ``uns["transferome"]["values"] == "log"``.
    """
    p = Path(path)
    adata = read_checked_h5ad(p, ["cell_line", "perturbation"])
    obs = adata.obs.copy()
    perturbation = obs["perturbation"].astype(str)
    is_control = perturbation == CONTROL
    if not is_control.any():
        raise ReaderError(f"{p}: obs 'perturbation' has no {CONTROL!r} (vehicle) rows")
    if "is_control" in obs and not np.array_equal(obs["is_control"].astype(bool), is_control):
        raise ReaderError(f"{p}: obs 'is_control' disagrees with perturbation == {CONTROL!r}")
    set_obs(obs, "species", "human")
    set_obs(obs, "context", obs["cell_line"].astype(str))
    set_obs(obs, "perturbation", perturbation)
    adata.obs = obs
    adata.X = np.asarray(adata.X, dtype=np.float32)
    return mark(adata, "sciplex3", p, values="log")


def load_tggates_rat_liver(
    path: str | os.PathLike[str], *, perturbation: Literal["dose", "compound"] = "dose"
) -> AnnData:
    """TG-GATEs rat liver, WY-14643 dose x time (``tggates_rat_liver_wy14643_dose_time.h5ad``).

    The file holds 48 arrays x 11,886 genes (rat symbols): repeated oral WY-14643 (a PPAR-alpha
    agonist) at 0 / 10 / 30 / 100 mg/kg (``obs.dose_mg_per_kg``; ``dose_level`` Control /
    Low / Middle / High), sacrificed at 4 / 8 / 15 / 29 days (``obs.time_days``), 3 rats per
    (dose, time), one array per rat (``obs_names``; there is no separate animal id). obs
    also has ``compound``, ``organ`` (``liver``), ``species`` (``rat``), ``study_design``, a
    two-level ``perturbation`` (control / WY-14643) and a constant ``context``
    (``rat_liver_in_vivo``). ``X`` (float32) is log2 array intensity in [4.32, 9.71], no NaN,
    rescaled per gene as shipped by TinderMIX (per-gene standard deviation 0.16 to 1.50):
    compare within a gene only.

    For the transfer task the context is the time point and the perturbation the compound at
    one dose: ``context`` = ``<organ>_<time>d`` (``liver_4d`` ... ``liver_29d``);
    ``perturbation`` = ``<compound>_<dose>mg/kg`` (``WY-14643_10mg/kg``, ``_30mg/kg``,
    ``_100mg/kg``), ``control`` at dose 0, so the controls of a group are the dose-0 rats of
    the same time point. With ``perturbation="compound"`` the label is the compound alone
    (``WY-14643`` at every dose), as the dose tasks (``unseen_dose``, ``unseen_time``,
    ``dose_transfer``) expect: they read the dose from ``dose``. ``dose`` =
    ``dose_mg_per_kg``; ``time`` = ``time_days``; ``sample`` = the array id; ``species`` =
    ``rat``. The file's own ``perturbation`` and ``context``
    columns are kept as ``perturbation_original`` and ``context_original``.
    ``uns["transferome"]["values"] == "log2"`` with ``rescaled_per_gene`` true.
    """
    p = Path(path)
    adata = read_checked_h5ad(p, ["compound", "dose_mg_per_kg", "time_days"])
    obs = adata.obs.copy()
    dose = obs["dose_mg_per_kg"].astype(float)
    if dose.isna().any() or (dose < 0).any():
        raise ReaderError(f"{p}: obs 'dose_mg_per_kg' has missing or negative doses")
    if not (dose == 0).any():
        raise ReaderError(f"{p}: obs 'dose_mg_per_kg' has no dose-0 (control) arrays")
    time = obs["time_days"].astype(float)
    organ = obs["organ"].astype(str) if "organ" in obs else pd.Series("liver", index=obs.index)
    if perturbation not in ("dose", "compound"):
        raise ReaderError(f"perturbation must be 'dose' or 'compound', got {perturbation!r}")
    treated = obs["compound"].astype(str)
    if perturbation == "dose":
        treated = treated + "_" + dose.map(lambda d: f"{d:g}") + "mg/kg"
    set_obs(obs, "species", "rat")
    set_obs(obs, "context", organ + "_" + time.map(lambda t: f"{t:g}") + "d")
    set_obs(obs, "perturbation", treated.where(dose > 0, CONTROL))
    set_obs(obs, "dose", dose)
    set_obs(obs, "time", time)
    set_obs(obs, "sample", obs.index.astype(str))
    adata.obs = obs
    adata.X = np.asarray(adata.X, dtype=np.float32)
    return mark(adata, "tggates_rat_liver", p, values="log2", rescaled_per_gene=True)
