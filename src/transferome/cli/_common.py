"""Options shared by several subcommands."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from transferome.cli._output import check_output, new_output
from transferome.data.schema import Schema
from transferome.errors import ReaderError

if TYPE_CHECKING:
    import pandas as pd
    from anndata import AnnData

__all__ = [
    "PRESETS",
    "VALUES_HELP",
    "add_data_arguments",
    "add_key_arguments",
    "add_preset_argument",
    "add_reader_arguments",
    "add_values_argument",
    "check_finite",
    "check_output",
    "new_output",
    "parse_params",
    "prepare_input",
    "preset_params",
    "read_input",
    "read_ortholog_csv",
    "reject_unused_keys",
    "schema_from_args",
    "validate_kwargs",
]


def add_key_arguments(parser: argparse.ArgumentParser, *, unused: Sequence[str] = ()) -> None:
    """Add the obs keys of the schema, with the defaults of :class:`~transferome.data.Schema`.

    ``unused`` names optional keys (``dose_key``, ``time_key``, ``sample_key``) that nothing
    behind the command reads: they are left out of the help and giving one is an error
    (:func:`reject_unused_keys`), rather than silently accepted.
    """
    unknown = sorted(set(unused) - set(Schema.optional_keys()))
    if unknown:
        raise ValueError(f"only optional keys can be unused, not {unknown}")
    Schema.add_arguments(parser.add_argument_group("obs keys"), hidden=unused)
    parser.set_defaults(_unused_keys=tuple(unused))


def add_match_controls_argument(parser: Any) -> None:
    """``--match-controls COLUMN`` of the dose commands (a parser or an argument group)."""
    parser.add_argument(
        "--match-controls",
        default=None,
        metavar="COLUMN",
        help="obs column (an experiment, plate or batch id) that a condition's controls must "
        "share with it: each change is taken against its own experiment's controls "
        "(default: all controls of the context)",
    )


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """Options about which values to read."""
    parser.add_argument("--layer", default=None, help="use this layer instead of X")
    parser.add_argument(
        "--allow-negative",
        action="store_true",
        help="accept negative values (changes against control, z-scores)",
    )


VALUES_HELP = (
    "what the values are: auto (default) detects raw counts and fractional counts (e.g. "
    "salmon NumReads) and normalises them (normalize_total + log1p) with a warning, keeps "
    "log-normalised values; log: use them as they are; counts: always normalise; delta: "
    "changes against control (negative allowed, control profile zero)"
)


def add_values_argument(parser: argparse.ArgumentParser) -> None:
    """``--values auto|log|counts|delta`` (see :func:`transferome.data.prepare_values`)."""
    from transferome.data.preprocess import VALUES

    parser.add_argument("--values", choices=VALUES, default="auto", help=VALUES_HELP)


def prepare_input(
    adata: AnnData,
    args: argparse.Namespace,
    where: str,
    *,
    layer: str | None = None,
    schema: Schema | None = None,
    zero_controls: bool = True,
) -> tuple[AnnData, str]:
    """Return the data on the scale the models expect, and ``"log"`` or ``"delta"``.

    Detection and normalisation are :func:`transferome.data.prepare_values` (``--values``);
    with ``delta`` values and ``zero_controls`` the controls are replaced by one zero profile
    per context, as ``benchmark`` does.
    """
    from transferome.data import prepare_values

    prepared = prepare_values(adata, getattr(args, "values", "auto"), layer=layer, where=where)
    if prepared.values == "delta" and zero_controls:
        from transferome.benchmark import with_zero_controls

        return with_zero_controls(prepared.adata, schema=schema or Schema()), "delta"
    return prepared.adata, prepared.values


_KEY_USES = {"dose_key": "dose", "time_key": "time", "sample_key": "animal / donor"}


def reject_unused_keys(args: argparse.Namespace) -> None:
    """Refuse an obs-key option that no model or task of the command reads.

    Raises
    ------
    TransferomeError
        Naming the option; the command line exits with status 2.
    """
    from transferome.errors import TransferomeError

    for dest in getattr(args, "_unused_keys", ()):
        if getattr(args, dest, None) is not None:
            flag = "--" + dest.replace("_", "-")
            raise TransferomeError(
                f"{flag}: no model or task of `transferome {args.command}` uses the "
                f"{_KEY_USES.get(dest, dest)} column yet; leave the option out (it would "
                "change nothing)"
            )


def schema_from_args(args: argparse.Namespace) -> Schema:
    """Return the :class:`~transferome.data.Schema` named by the obs-key options."""
    reject_unused_keys(args)
    return Schema.from_args(args)


PRESETS = ("fast", "paper")


def add_preset_argument(parser: argparse.ArgumentParser) -> None:
    """``--preset fast|paper``: each model's ``fast_params`` or its constructor defaults."""
    parser.add_argument(
        "--preset",
        choices=PRESETS,
        default="paper",
        help="model settings: paper (default) = each model's constructor defaults (the "
        "papers' sizes, many minutes per neural fit on a laptop); fast = its fast_params "
        "(small networks, few epochs: seconds); --param applies on top",
    )


def preset_params(
    model: str, preset: str, given: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Return the hyperparameters of ``model`` under ``preset``, ``given`` applied on top."""
    from transferome.errors import TransferomeError
    from transferome.models import get_model

    if preset not in PRESETS:
        raise TransferomeError(f"preset must be one of {PRESETS}, got {preset!r}")
    base = dict(get_model(model).fast_params) if preset == "fast" else {}
    return {**base, **dict(given or {})}


def parse_params(pairs: Sequence[str], model: str) -> dict[str, Any]:
    """``--param NAME=VALUE`` options (values read as YAML) checked against the model.

    A value is read as plain YAML data only (numbers, strings, lists, mappings): a tag such
    as ``!!python/object:...`` is refused, never constructed, as are anchors and aliases.

    Raises
    ------
    TransferomeError
        Naming the parameter: not ``NAME=VALUE``, not plain YAML, an unknown argument of the
        model, a value of the wrong type or a count below 1
        (:func:`~transferome.pipeline.config.check_arguments`).
    """
    import yaml

    from transferome.errors import DataValidationError
    from transferome.models import get_model
    from transferome.pipeline.config import check_arguments, load_yaml, short_repr, yaml_problem

    params: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        name = name.strip()
        if not sep or not name:
            raise DataValidationError(f"--param {short_repr(pair)}: expected NAME=VALUE")
        try:
            params[name] = load_yaml(value)
        except yaml.YAMLError as exc:
            raise DataValidationError(
                f"--param {name}: {short_repr(value)} is not a plain value ({yaml_problem(exc)}); "
                "give a number, a string or a list"
            ) from exc
    from transferome.models.dose import DOSE_MODELS

    cls = DOSE_MODELS[model] if model in DOSE_MODELS else get_model(model)
    checked = check_arguments(cls.__init__, params, f"--param ({model})")
    return {k: tuple(v) if isinstance(v, list) else v for k, v in checked.items()}


def validate_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """Return the keyword options of :func:`transferome.data.validate` from parsed options.

    Besides the schema, see :func:`schema_from_args`.
    """
    return {
        "layer": getattr(args, "layer", None),
        "allow_negative": getattr(args, "allow_negative", False),
    }


def check_finite(
    adata: AnnData,
    where: str,
    *,
    allow_nan: bool = False,
    group_keys: Sequence[str] = (),
    what: str = "values",
) -> None:
    """Refuse NaN and infinite values in ``adata.X``.

    With ``allow_nan`` (signature data, where NaN means "not measured") NaN is accepted, but
    not a group of rows (by ``group_keys``) that is NaN everywhere, nor infinite values.

    Raises
    ------
    DataValidationError
        Naming ``where``, how many entries are not finite and, for a NaN group, which one.
    """
    import numpy as np
    import scipy.sparse as sp

    from transferome.errors import DataValidationError

    matrix = adata.X
    values = matrix.toarray() if sp.issparse(matrix) else np.asarray(matrix)
    if values.size == 0 or not np.issubdtype(values.dtype, np.floating):
        return
    nan = np.isnan(values)
    n_inf = int(np.isinf(values).sum())
    if n_inf or (nan.any() and not allow_nan):
        raise DataValidationError(
            f"{where}: the {what} hold {int(nan.sum())} NaN and {n_inf} infinite entries; "
            "remove or impute them (NaN is accepted only as 'not measured' in signature data, "
            "--values delta)"
        )
    if not nan.any() or not group_keys:
        return
    obs = adata.obs[list(group_keys)].astype(str).reset_index(drop=True)
    all_nan = nan.all(axis=1)
    for labels, rows in obs.groupby(list(group_keys), sort=False).groups.items():
        if all_nan[np.asarray(rows)].all():
            group = " / ".join(map(str, labels if isinstance(labels, tuple) else (labels,)))
            raise DataValidationError(f"{where}: the {what} of {group} are NaN everywhere")


def read_ortholog_csv(path: str | None) -> pd.DataFrame | None:
    """Read an ortholog table given on the command line (``None`` when not given)."""
    import pandas as pd

    if path is None:
        return None
    try:
        return pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise ReaderError(f"{path}: not a readable CSV table ({exc})") from exc


# Reader options and the formats they apply to (dest -> (reader keyword, formats)).
_READER_OPTIONS = {
    "genes_in": ("genes_in", ("table",)),
    "gene_column": ("gene_column", ("table",)),
    "sample_column": ("sample_column", ("table",)),
    "metadata": ("metadata", ("table",)),
    "metadata_id_column": ("metadata_id_column", ("table",)),
    "sep": ("sep", ("table",)),
    "var_names": ("var_names", ("10x",)),
}


def add_backed_argument(parser: argparse.ArgumentParser) -> None:
    """``--backed``: keep the matrix of an ``.h5ad`` input on disk and stream it."""
    parser.add_argument(
        "--backed",
        action="store_true",
        help=".h5ad input: keep X and the layers on disk and read them a block of rows at a "
        "time (for data larger than memory; validation, group means, the mean-based models and "
        "the scores stream, the neural models read their batches from the file)",
    )


def read_data(path: str, *, backed: bool, **kwargs: Any) -> AnnData:
    """Read ``path`` (any format, reader options ``kwargs``).

    On disk with ``backed`` (an ``.h5ad`` file only).
    """
    from transferome.data.io import format_of, read
    from transferome.errors import ReaderError

    if not backed:
        return read(path, **kwargs)
    if format_of(path) != "h5ad":
        raise ReaderError(f"{path}: --backed applies to .h5ad input, not {format_of(path)}")
    return read(path, backed=True, **kwargs)


def add_reader_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the CSV / TSV table and 10x folder readers (see ``transferome.data.read``)."""
    group = parser.add_argument_group("reading tables and 10x folders")
    group.add_argument(
        "--genes-in",
        choices=("rows", "columns"),
        default=None,
        help="CSV/TSV tables: one gene per row, or one gene per column (required for tables)",
    )
    group.add_argument("--gene-column", default=None, help="column of gene ids (--genes-in rows)")
    group.add_argument(
        "--sample-column", default=None, help="column of sample ids (--genes-in columns)"
    )
    group.add_argument(
        "--metadata", default=None, help="sample metadata table joined to obs by sample id"
    )
    group.add_argument(
        "--metadata-id-column", default=None, help="column of sample ids in --metadata"
    )
    group.add_argument("--sep", default=None, help="field separator (default: from the suffix)")
    group.add_argument(
        "--var-names",
        choices=("gene_symbols", "gene_ids"),
        default=None,
        help="10x folders: use gene symbols (default) or gene ids as gene names",
    )


def read_input(args: argparse.Namespace) -> AnnData:
    """Read ``args.file`` with the reader options that were given.

    An option that does not apply to the file's format is an error rather than ignored.
    """
    from transferome.data.io import format_of
    from transferome.errors import ReaderError

    kind = format_of(args.file)
    kwargs: dict[str, Any] = {}
    for dest, (keyword, formats) in _READER_OPTIONS.items():
        value = getattr(args, dest, None)
        if value is None:
            continue
        if kind not in formats:
            flag = "--" + dest.replace("_", "-")
            raise ReaderError(
                f"{args.file}: {flag} applies to {', '.join(formats)} input, not {kind}"
            )
        kwargs[keyword] = value
    return read_data(args.file, backed=getattr(args, "backed", False), **kwargs)
