"""The configuration of ``transferome run``: a YAML file validated in full before any training.

The file maps one-to-one onto the library: ``models.<name>`` holds keyword arguments of that
estimator's ``__init__``, ``data.simulate`` keyword arguments of
:func:`transferome.datasets.simulate`, ``data.*_key`` the :class:`~transferome.data.Schema`
fields. Every error names the field (``models.xtransfer.lr``) and what was expected.
"""

from __future__ import annotations

import inspect
import os
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from transferome.data.schema import Schema
from transferome.errors import TransferomeError
from transferome.pipeline._checks import (
    _allowed_types,
    _integer_minimum,
    _is_integer,
    _item_types,
    _literal_choices,
)
from transferome.pipeline._defaults import (
    _FULL_PARAMS,
    _FULL_SIMULATION,
    _QUICK_OVERRIDES,
    _QUICK_SIMULATION,
    _plain,
)
from transferome.pipeline._simulation import _simulated_samples
from transferome.pipeline._yaml import load_yaml, short_repr, yaml_problem

__all__ = [
    "ConfigError",
    "RunConfig",
    "check_arguments",
    "default_config",
    "load_config",
    "load_yaml",
    "short_repr",
    "validate_config",
    "yaml_problem",
]

_SCHEMA_FIELDS = tuple(f.name for f in fields(Schema))
_DATA_FIELDS = (*_SCHEMA_FIELDS, "simulate", "path", "orthologs", "layer", "values", "reader")
_RUN_VALUES = ("auto", "log", "counts")
_TOP_FIELDS = ("seed", "n_degs", "data", "combination_data", "models", "tasks")
_READER_FIELDS = (
    "genes_in",
    "gene_column",
    "sample_column",
    "metadata",
    "metadata_id_column",
    "sep",
    "var_names",
)


class ConfigError(TransferomeError, ValueError):
    """The run configuration is invalid; the message names the field."""


@dataclass(frozen=True)
class RunConfig:
    """A validated run configuration.

    Attributes
    ----------
    seed
        Seed of the simulation, the splits and every model's ``random_state``.
    n_degs
        DEGs per held-out group in the metrics.
    data
        Where the main data come from: ``simulate`` (keyword arguments of
        :func:`~transferome.datasets.simulate`) or ``path`` (one file, or species -> file),
        plus the obs keys, ``orthologs`` (a CSV table), ``layer``, ``values`` (``auto``,
        ``log`` or ``counts``, see :func:`~transferome.data.prepare_values`) and ``reader``
        options.
    combination_data
        Data of the ``combination`` task in the same layout (``None``: use ``data``).
    models
        Model name -> keyword arguments of its estimator.
    tasks
        Task name -> options (see :data:`transferome.pipeline.STAGES`), in run order.
    raw
        The configuration as given (after defaults), written beside the results.
    """

    seed: int
    n_degs: int
    data: Mapping[str, Any]
    combination_data: Mapping[str, Any] | None
    models: Mapping[str, Mapping[str, Any]]
    tasks: Mapping[str, Mapping[str, Any]]
    raw: Mapping[str, Any] = field(repr=False)

    def schema(self, data: Mapping[str, Any] | None = None) -> Any:
        """Return the :class:`~transferome.data.Schema` of ``data`` (default: the main data)."""
        section = self.data if data is None else data
        return Schema(**{k: section[k] for k in _SCHEMA_FIELDS if k in section})

    def model_params(self, name: str) -> dict[str, Any]:
        """Keyword arguments of model ``name``, tuple-typed values restored from YAML lists."""
        return _restore_tuples(name, dict(self.models.get(name, {})))


def _fail(where: str, message: str) -> ConfigError:
    return ConfigError(f"config field {where}: {message}")


def _type_name(value: Any) -> str:
    return type(value).__name__


def _check_value(
    where: str, name: str, value: Any, items: tuple[type, ...], *, integer_hint: bool
) -> None:
    """Refuse a list item of the wrong type and a count below its minimum."""
    if isinstance(value, tuple | list) and items:
        for index, item in enumerate(value):
            wrong_bool = isinstance(item, bool) and bool not in items
            if wrong_bool or not isinstance(item, items):
                names = sorted({t.__name__ for t in items})
                raise _fail(
                    where,
                    f"expected a list of {' or '.join(names)}, got item {index} "
                    f"{short_repr(item)} ({_type_name(item)}) in {short_repr(value)}",
                )
    minimum = _integer_minimum(name)
    if minimum is None:
        return
    if _is_integer(value) and integer_hint and value < minimum:
        raise _fail(where, f"expected an integer >= {minimum}, got {short_repr(value)}")
    if isinstance(value, tuple | list) and int in items and float not in items:
        low = [v for v in value if _is_integer(v) and v < minimum]
        if low:
            raise _fail(
                where,
                f"expected integers >= {minimum}, got {short_repr(low[0])} in {short_repr(value)}",
            )


def check_arguments(
    function: Callable[..., Any], given: Mapping[str, Any], where: str, *, skip: tuple = ()
) -> dict[str, Any]:
    """Check ``given`` against the keyword parameters of ``function``; return a copy.

    Unknown names, values of the wrong type (list items included: ``hidden: [a, b]`` where
    ``Sequence[int]`` is declared), and counts below 1 (epochs, splits, sizes, widths; see
    :func:`_integer_minimum`) raise :class:`ConfigError` naming ``where.<name>``.
    """
    if not isinstance(given, Mapping):
        raise _fail(
            where, f"expected a mapping of argument names to values, got {short_repr(given)}"
        )
    signature = inspect.signature(function)
    try:
        hints = typing.get_type_hints(function)
    except (NameError, TypeError):
        hints = {}
    parameters = {
        name: p
        for name, p in signature.parameters.items()
        if name not in ("self", *skip) and p.kind is not inspect.Parameter.VAR_KEYWORD
    }
    for name, value in given.items():
        if name not in parameters:
            raise _fail(
                f"{where}.{name}",
                f"unknown argument; expected one of {sorted(parameters)}",
            )
        allowed = _allowed_types(parameters[name], hints)
        if isinstance(value, bool) and bool not in allowed and allowed:
            ok = False
        else:
            ok = not allowed or isinstance(value, allowed)
        if not ok:
            names = sorted({t.__name__ for t in allowed})
            raise _fail(
                f"{where}.{name}",
                f"expected a value of type {' or '.join(names)}, got {short_repr(value)} "
                f"({_type_name(value)})",
            )
        choices = _literal_choices(parameters[name], hints)
        if choices and value not in choices:
            raise _fail(
                f"{where}.{name}", f"expected one of {list(choices)}, got {short_repr(value)}"
            )
        integer_hint = int in allowed and float not in allowed
        items = _item_types(parameters[name], hints)
        _check_value(f"{where}.{name}", name, value, items, integer_hint=integer_hint)
    return dict(given)


def _restore_tuples(model: str, params: dict[str, Any]) -> dict[str, Any]:
    from transferome.models import get_model

    signature = inspect.signature(get_model(model).__init__)
    for name, value in params.items():
        default = signature.parameters[name].default if name in signature.parameters else None
        if isinstance(value, list) and isinstance(default, tuple):
            params[name] = tuple(value)
    return params


def _check_path(value: Any, where: str, base: Path) -> str:
    if not isinstance(value, str) or not value:
        raise _fail(where, f"expected a file path, got {short_repr(value)}")
    path = Path(value) if Path(value).is_absolute() else base / value
    if not path.exists():
        raise _fail(where, f"file {short_repr(str(path))} does not exist")
    return str(path)


def _check_data(section: Any, where: str, base: Path, seed: int) -> dict[str, Any]:
    from transferome.datasets import simulate

    if not isinstance(section, Mapping):
        raise _fail(where, f"expected a mapping, got {short_repr(section)}")
    unknown = sorted(set(section) - set(_DATA_FIELDS))
    if unknown:
        raise _fail(f"{where}.{unknown[0]}", f"unknown field; expected one of {_DATA_FIELDS}")
    data = dict(section)
    if ("simulate" in data) == ("path" in data):
        raise _fail(where, "give exactly one of 'simulate' (built-in atlas) or 'path' (files)")
    if "simulate" in data:
        kwargs = dict(data["simulate"] or {})
        check_arguments(simulate, kwargs, f"{where}.simulate")
        _check_simulation_size(kwargs, f"{where}.simulate")
        kwargs.setdefault("seed", seed)
        data["simulate"] = kwargs
    else:
        paths = data["path"]
        if isinstance(paths, Mapping):
            data["path"] = {
                str(s): _check_path(p, f"{where}.path.{s}", base) for s, p in paths.items()
            }
        else:
            data["path"] = _check_path(paths, f"{where}.path", base)
    if data.get("orthologs") is not None:
        data["orthologs"] = _check_path(data["orthologs"], f"{where}.orthologs", base)
    for key in _SCHEMA_FIELDS:
        value = data.get(key)
        optional = key in Schema.optional_keys()
        if (
            key in data
            and not (isinstance(value, str) and value)
            and not (optional and value is None)
        ):
            raise _fail(f"{where}.{key}", f"expected a non-empty string, got {short_repr(value)}")
    if data.get("layer") is not None and not isinstance(data["layer"], str):
        raise _fail(f"{where}.layer", f"expected a layer name, got {short_repr(data['layer'])}")
    if data.get("values", "auto") not in _RUN_VALUES:
        raise _fail(
            f"{where}.values",
            f"expected one of {_RUN_VALUES}, got {short_repr(data['values'])}",
        )
    reader = data.get("reader") or {}
    if not isinstance(reader, Mapping):
        raise _fail(f"{where}.reader", f"expected a mapping, got {short_repr(reader)}")
    for name in reader:
        if name not in _READER_FIELDS:
            raise _fail(f"{where}.reader.{name}", f"unknown option; expected {_READER_FIELDS}")
    data["reader"] = dict(reader)
    return data


#: Most genes per species the simulation accepts (more than any genome has).
MAX_SIMULATED_GENES = 200_000
#: Most values (species x genes x samples) of a simulated atlas: about 4 GB per stored copy.
MAX_SIMULATED_VALUES = 1_000_000_000


def _check_simulation_size(kwargs: Mapping[str, Any], where: str) -> None:
    """Refuse a simulated atlas too large to hold in memory before anything is simulated."""
    n_genes = kwargs.get("n_genes", 2000)
    if n_genes > MAX_SIMULATED_GENES:
        raise _fail(
            f"{where}.n_genes",
            f"at most {MAX_SIMULATED_GENES} genes per species are simulated, got "
            f"{short_repr(n_genes)}",
        )
    n_species, samples = _simulated_samples(kwargs)
    values = n_species * n_genes * samples
    if values > MAX_SIMULATED_VALUES:
        raise _fail(
            where,
            f"the atlas would hold about {values:.3g} values ({n_species} species x {n_genes} "
            f"genes x {samples} samples), more than the {MAX_SIMULATED_VALUES:.0e} simulated "
            "at most; lower n_genes or the samples per group",
        )


def _check_int(raw: Mapping[str, Any], name: str, default: int, minimum: int) -> int:
    value = raw.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _fail(name, f"expected an integer >= {minimum}, got {short_repr(value)}")
    return value


def _check_models(raw: Any) -> dict[str, dict[str, Any]]:
    from transferome.models import available_models, get_model

    if not isinstance(raw, Mapping) or not raw:
        raise _fail("models", f"expected a non-empty mapping of model names, got {short_repr(raw)}")
    models = {}
    for name, params in raw.items():
        if name not in available_models():
            raise _fail(f"models.{name}", f"unknown model; available: {sorted(available_models())}")
        models[str(name)] = check_arguments(
            get_model(name).__init__, params or {}, f"models.{name}"
        )
    return models


def _check_tasks(raw: Any, models: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    from transferome.pipeline.stages import STAGES

    if isinstance(raw, list):
        raw = {name: {} for name in raw}
    if not isinstance(raw, Mapping) or not raw:
        raise _fail("tasks", f"expected a list or mapping of task names, got {short_repr(raw)}")
    tasks = {}
    for name, options in raw.items():
        if name not in STAGES:
            raise _fail(f"tasks.{name}", f"unknown task; available: {list(STAGES)}")
        tasks[str(name)] = check_arguments(
            STAGES[name].run, options or {}, f"tasks.{name}", skip=("context",)
        )
        check = STAGES[name].check
        if check is not None:
            check(tasks[str(name)], models, f"tasks.{name}")
    return tasks


def validate_config(raw: Mapping[str, Any], *, base: str | os.PathLike[str] = ".") -> RunConfig:
    """Validate a configuration mapping (as read from YAML) and return a :class:`RunConfig`.

    Parameters
    ----------
    raw
        The configuration; see ``transferome init-config`` for every field.
    base
        Folder that relative file paths are resolved against (the config file's folder).

    Raises
    ------
    ConfigError
        Naming the first invalid field.
    """
    if not isinstance(raw, Mapping):
        raise ConfigError(f"the configuration must be a mapping of fields, got {short_repr(raw)}")
    unknown = sorted(set(raw) - set(_TOP_FIELDS))
    if unknown:
        raise _fail(unknown[0], f"unknown field; expected one of {_TOP_FIELDS}")
    base = Path(base)
    seed = _check_int(raw, "seed", 0, 0)
    n_degs = _check_int(raw, "n_degs", 50, 1)
    data = _check_data(raw.get("data", {"simulate": {}}), "data", base, seed)
    combination = raw.get("combination_data")
    if combination is not None:
        combination = _check_data(combination, "combination_data", base, seed)
    models = _check_models(raw.get("models"))
    tasks = _check_tasks(raw.get("tasks"), models)
    normalised = {
        "seed": seed,
        "n_degs": n_degs,
        "data": data,
        "combination_data": combination,
        "models": models,
        "tasks": tasks,
    }
    return RunConfig(
        seed=seed,
        n_degs=n_degs,
        data=data,
        combination_data=combination,
        models=models,
        tasks=tasks,
        raw=normalised,
    )


def load_config(path: str | os.PathLike[str]) -> RunConfig:
    """Read and validate a YAML configuration file."""
    import yaml

    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"config file {short_repr(str(file))} does not exist")
    try:
        raw = load_yaml(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {short_repr(str(file))} is not valid YAML: {exc}") from exc
    if not isinstance(raw, Mapping):
        raise ConfigError(f"config file {short_repr(str(file))} must hold a mapping of fields")
    return validate_config(raw, base=file.parent)


def default_config(*, quick: bool = False) -> dict[str, Any]:
    """Return the configuration of ``transferome run`` without ``--config``.

    ``quick`` gives that of ``--quick``. Every registered model is included: with its
    ``fast_params`` for ``quick``, with the full-run settings otherwise (defaults of the
    estimator for models without them).
    """
    from transferome.models import available_models, get_model
    from transferome.pipeline.stages import RUN_ORDER, STAGES, transfer_models

    def transfer_models_of(models: dict[str, Any]) -> list[str]:
        return transfer_models(SimpleNamespace(models=models))

    models = {}
    for name in available_models():
        if quick:
            params = {**get_model(name).fast_params, **_QUICK_OVERRIDES.get(name, {})}
        else:
            params = _FULL_PARAMS.get(name, {})
        models[name] = _plain(params)
    simulation = _QUICK_SIMULATION if quick else _FULL_SIMULATION
    order = [n for n in RUN_ORDER if n in STAGES] + [n for n in STAGES if n not in RUN_ORDER]
    tasks: dict[str, dict[str, Any]] = {n: dict(STAGES[n].defaults(quick)) for n in order}
    # The cross-species model is fitted once per held-out drug in species_transfer; refitting
    # it on every split of the single-species tasks would dominate the run time.
    single = [m for m in transfer_models_of(models) if m != "uge"]
    for name in ("transfer", "combination"):
        if name in tasks and single != transfer_models_of(models):
            tasks[name]["models"] = single
    return {
        "seed": 0,
        "n_degs": 50,
        "data": {"simulate": dict(simulation["bulk"])},
        "combination_data": {"simulate": dict(simulation["single_cell"])},
        "models": models,
        "tasks": _plain(tasks),
    }
