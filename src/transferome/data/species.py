"""Data of several species: one AnnData per species and the ortholog table that links genes.

An ortholog table is read in either layout:

* *long*: one row per pair with columns ``source_species``, ``source_gene``,
  ``target_species``, ``target_gene`` (:data:`LONG_COLUMNS`; the simulator's table), or
* *wide*: one column of gene names per species, one row per pair (``human_gene`` /
  ``mouse_gene`` from :func:`~transferome.datasets.load_orthologs`); a species' column is
  named ``<species>_gene`` or ``<species>``, or given explicitly.

:class:`MultiSpecies` holds the data and the table together; :func:`ortholog_links` reads a
table into tidy links between genes of named species.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import pandas as pd
from anndata import AnnData

from transferome.data.schema import obs_labels
from transferome.errors import DataValidationError

__all__ = ["LINK_COLUMNS", "LONG_COLUMNS", "MultiSpecies", "ortholog_links"]

LONG_COLUMNS = ("source_species", "source_gene", "target_species", "target_gene")
"""Columns of the long layout of an ortholog table."""
LINK_COLUMNS = ("species_a", "gene_a", "species_b", "gene_b")
"""Columns of :func:`ortholog_links`."""


def _wide_columns(
    table: pd.DataFrame, species: Sequence[str], columns: Mapping[str, str] | None
) -> dict[str, str]:
    if columns is not None:
        unknown = {s: c for s, c in columns.items() if c not in table.columns}
        if unknown:
            raise DataValidationError(
                f"ortholog table has no column {sorted(unknown.values())} (asked for species "
                f"{sorted(unknown)}); it has {list(table.columns)}"
            )
        strange = sorted(set(columns) - set(species))
        if strange:
            raise DataValidationError(
                f"ortholog columns are given for species {strange} that are not in the data "
                f"({list(species)})"
            )
        return dict(columns)
    found = {}
    for s in species:
        for name in (f"{s}_gene", s):
            if name in table.columns:
                found[s] = name
                break
    if len(found) < 2:
        raise DataValidationError(
            "cannot tell which ortholog table columns hold the genes of which species: expected "
            f"the long layout {list(LONG_COLUMNS)} or a column '<species>_gene' or '<species>' "
            f"for at least two of the species {list(species)}; the table has "
            f"{list(table.columns)} (pass ortholog_columns={{species: column}})"
        )
    return found


def ortholog_links(
    table: pd.DataFrame,
    species: Sequence[str],
    *,
    columns: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Read the links between genes of different species from an ortholog table.

    Parameters
    ----------
    table
        The ortholog table, long or wide (see the module docstring).
    species
        The species of the data; links of other species are dropped.
    columns
        Wide layout only: ``{species: column}`` naming each species' gene column (default:
        ``<species>_gene`` or ``<species>``).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`LINK_COLUMNS` (strings), one row per distinct link; rows with a
        missing gene name are dropped.
    """
    if not isinstance(table, pd.DataFrame):
        raise DataValidationError(
            f"the ortholog table must be a pandas DataFrame, got {type(table).__name__}"
        )
    species = [str(s) for s in species]
    if columns is None and all(c in table.columns for c in LONG_COLUMNS):
        frame = table[list(LONG_COLUMNS)].dropna()
        frame = frame.astype(str)
        frame.columns = list(LINK_COLUMNS)
        frame = frame[frame["species_a"].isin(species) & frame["species_b"].isin(species)]
        frame = frame[frame["species_a"] != frame["species_b"]]
        return frame.drop_duplicates().reset_index(drop=True)
    chosen = _wide_columns(table, species, columns)
    names = list(chosen)
    parts = []
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            pair = table[[chosen[a], chosen[b]]].dropna().astype(str)
            parts.append(
                pd.DataFrame(
                    {
                        "species_a": a,
                        "gene_a": pair.iloc[:, 0].to_numpy(),
                        "species_b": b,
                        "gene_b": pair.iloc[:, 1].to_numpy(),
                    }
                )
            )
    return pd.concat(parts, ignore_index=True).drop_duplicates().reset_index(drop=True)


@dataclass(frozen=True, eq=False)
class MultiSpecies(Mapping[str, AnnData]):
    """One AnnData per species, and the ortholog table that links their genes.

    A read-only mapping species -> AnnData (the AnnData objects are the caller's, never
    modified) that also carries the ortholog table, so that the functions working across
    species take one argument: :func:`~transferome.benchmark.species.species_transfer`,
    :func:`~transferome.crossspecies.suggest_experiments` and
    :meth:`~transferome.models.UniversalGeneEmbedding.fit`.

    Parameters
    ----------
    adatas
        Species -> AnnData (at least one).
    orthologs
        The ortholog table, long or wide (see the module docstring), or ``None``.
    ortholog_columns
        Wide layout only: ``{species: column}`` naming each species' gene column.

    Raises
    ------
    DataValidationError
        No species, a value that is not an AnnData, or an ortholog table that is not a
        DataFrame.
    """

    adatas: Mapping[str, AnnData]
    orthologs: pd.DataFrame | None = None
    ortholog_columns: Mapping[str, str] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.adatas, Mapping) or not self.adatas:
            raise DataValidationError(
                "expected a non-empty mapping {species: AnnData}, "
                f"got {type(self.adatas).__name__}"
            )
        for species, adata in self.adatas.items():
            if not isinstance(adata, AnnData):
                raise DataValidationError(
                    f"data of species {species!r} is a {type(adata).__name__}, expected an AnnData"
                )
        if self.orthologs is not None and not isinstance(self.orthologs, pd.DataFrame):
            kind = type(self.orthologs).__name__
            raise DataValidationError(f"the ortholog table must be a pandas DataFrame, got {kind}")
        frozen = MappingProxyType({str(s): a for s, a in self.adatas.items()})
        object.__setattr__(self, "adatas", frozen)

    @classmethod
    def from_adata(
        cls,
        adata: AnnData,
        species_key: str | None,
        *,
        name: str,
        orthologs: pd.DataFrame | None = None,
        copy: bool = False,
    ) -> MultiSpecies:
        """Split one AnnData by its ``species_key`` column (sorted species; views unless ``copy``).

        Without the column (or with ``species_key=None``) it is one species, ``name``.
        """
        if not isinstance(adata, AnnData):
            raise DataValidationError(f"expected an AnnData, got {type(adata).__name__}")
        if species_key is None or species_key not in adata.obs.columns:
            return cls({name: adata}, orthologs)
        labels = obs_labels(adata, species_key)
        parts = {s: adata[labels == s] for s in sorted(set(labels))}
        if copy:
            parts = {s: part.copy() for s, part in parts.items()}
        return cls(parts, orthologs)

    def __getitem__(self, species: str) -> AnnData:
        """Return the data of ``species``."""
        if species not in self.adatas:
            raise DataValidationError(f"species {species!r} not in the data ({list(self.adatas)})")
        return self.adatas[species]

    def __contains__(self, species: object) -> bool:
        """Tell whether ``species`` has data here."""
        return species in self.adatas

    def get(self, species: str, default: Any = None) -> Any:
        """Return the data of ``species``, or ``default`` when it has none."""
        return self.adatas.get(species, default)

    def __iter__(self) -> Iterator[str]:
        """Iterate over the species, in order."""
        return iter(self.adatas)

    def __len__(self) -> int:
        """Return the number of species."""
        return len(self.adatas)

    def __repr__(self) -> str:
        """Species, shapes and the size of the ortholog table."""
        shapes = ", ".join(f"{s}: {a.n_obs} x {a.n_vars}" for s, a in self.adatas.items())
        table = "no orthologs" if self.orthologs is None else f"{len(self.orthologs)} orthologs"
        return f"MultiSpecies({shapes}; {table})"

    @property
    def species(self) -> tuple[str, ...]:
        """The species, in order."""
        return tuple(self.adatas)

    def links(self) -> pd.DataFrame:
        """Return the ortholog links between genes of these species (:func:`ortholog_links`).

        Raises
        ------
        DataValidationError
            There is no ortholog table, or its columns cannot be read.
        """
        if self.orthologs is None:
            raise DataValidationError("these data carry no ortholog table")
        return ortholog_links(self.orthologs, self.species, columns=self.ortholog_columns)

    def gene_map(self, source: str, target: str) -> pd.DataFrame:
        """Return the (source gene, target gene) pairs of the ortholog table, read either way.

        Returns
        -------
        pandas.DataFrame
            Columns ``source_gene`` and ``target_gene``, one row per distinct pair.
        """
        for name in (source, target):
            self[name]
        links = self.links()
        forward = links[(links["species_a"] == source) & (links["species_b"] == target)]
        backward = links[(links["species_a"] == target) & (links["species_b"] == source)]
        pairs = pd.concat(
            [
                pd.DataFrame({"source_gene": forward["gene_a"], "target_gene": forward["gene_b"]}),
                pd.DataFrame(
                    {"source_gene": backward["gene_b"], "target_gene": backward["gene_a"]}
                ),
            ],
            ignore_index=True,
        )
        return pairs.drop_duplicates().reset_index(drop=True)
