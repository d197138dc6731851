"""The data of a run: the built-in simulated atlas or the user's files, one AnnData a species."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData

from transferome.data.preprocess import prepare_values
from transferome.data.schema import Schema, validate
from transferome.data.species import MultiSpecies
from transferome.errors import DataValidationError, ReaderError

__all__ = ["RunData", "load_data"]


@dataclass(frozen=True)
class RunData:
    """What the stages work on.

    Attributes
    ----------
    adatas
        Species -> AnnData (log-normalised ``X``: counts and fractional counts are normalised
        by :func:`~transferome.data.prepare_values`, as ``data.values`` says); one entry
        named after the data when the data have no species column.
    schema
        The obs keys.
    orthologs
        Ortholog table (``source_species, source_gene, target_species, target_gene, ...``) or
        ``None``.
    atlas
        The :class:`~transferome.datasets.SimulatedAtlas` when simulated (its truth scores the
        gene mapping), else ``None``.
    origin
        A line saying where the data came from (for the report).
    """

    adatas: Mapping[str, AnnData]
    schema: Schema
    orthologs: pd.DataFrame | None = None
    atlas: Any = field(default=None, repr=False)
    origin: str = ""
    _reactomes: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def species(self) -> tuple[str, ...]:
        """The species, in order."""
        return tuple(self.adatas)

    @property
    def multi_species(self) -> MultiSpecies:
        """The data of every species with the ortholog table."""
        return MultiSpecies(self.adatas, self.orthologs)

    def reactome(self, species: str) -> Any:
        """Compute the :func:`~transferome.crossspecies.reactome` of ``species``, once a run."""
        if species not in self._reactomes:
            from transferome.crossspecies import reactome

            self._reactomes[species] = reactome(self.adatas[species], schema=self.schema)
        return self._reactomes[species]


def _read(path: str, section: Mapping[str, Any]) -> AnnData:
    from transferome.data.io import read

    return read(path, **dict(section.get("reader") or {}))


def use_layer(adata: AnnData, layer: str | None, where: str) -> AnnData:
    if layer is None:
        return adata
    if layer not in adata.layers:
        raise DataValidationError(
            f"{where}: layer {layer!r} not found; layers are {sorted(adata.layers)}"
        )
    out = adata.copy()
    out.X = out.layers[layer].copy()
    return out


def load_data(section: Mapping[str, Any], schema: Schema) -> RunData:
    """Simulate or read the data described by a validated ``data`` config section."""
    if "simulate" in section:
        from transferome.datasets import simulate

        kwargs = dict(section["simulate"])
        for name in ("drugs", "species", "contexts", "doses", "blood_days"):
            if isinstance(kwargs.get(name), list):
                kwargs[name] = tuple(kwargs[name])
        if isinstance(kwargs.get("combinations"), list):
            kwargs["combinations"] = tuple(kwargs["combinations"])
        atlas = simulate(**kwargs)
        simulated = dict(atlas.adatas)
        shapes = ", ".join(f"{s} {a.n_obs} x {a.n_vars}" for s, a in simulated.items())
        origin = f"built-in simulated atlas ({atlas.mode}, seed {atlas.seed}): {shapes}"
        return RunData(simulated, schema, atlas.orthologs, atlas, origin)
    paths = section["path"]
    layer = section.get("layer")
    adatas: dict[str, AnnData] = {}
    if isinstance(paths, Mapping):
        for species, path in paths.items():
            adatas[species] = use_layer(_read(path, section), layer, path)
        origin = ", ".join(f"{s}: {p}" for s, p in paths.items())
    else:
        whole = use_layer(_read(paths, section), layer, paths)
        adatas = dict(MultiSpecies.from_adata(whole, schema.species_key, name="data", copy=True))
        origin = str(paths)
    checked = None
    for species, adata in adatas.items():
        where = f"data of {species!r}" if len(adatas) > 1 else f"data {origin}"
        prepared = prepare_values(adata, section.get("values", "auto"), where=where)
        if prepared.values != "log":
            raise DataValidationError(
                f"{where} hold changes against control; transferome run expects expression "
                "values (log-normalised, or counts it normalises)"
            )
        checked = validate(prepared.adata, schema, require_controls=False)
        adatas[species] = prepared.adata
    schema = checked.schema if checked is not None else schema
    orthologs = None
    if section.get("orthologs"):
        try:
            orthologs = pd.read_csv(section["orthologs"])
        except (OSError, ValueError) as exc:
            raise ReaderError(f"{section['orthologs']}: not a readable CSV table ({exc})") from exc
    return RunData(adatas, schema, orthologs, None, origin)


def dense(adata: AnnData) -> np.ndarray:
    """``X`` as a dense float64 array."""
    matrix = adata.X
    return np.asarray(matrix.toarray() if hasattr(matrix, "toarray") else matrix, np.float64)
