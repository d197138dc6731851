"""The types, choices and list items a parameter's hint allows, and the least value of a count."""

from __future__ import annotations

import inspect
import types as types_module
import typing
from collections.abc import Mapping
from typing import Any


def _hint_options(parameter: inspect.Parameter, hints: Mapping[str, Any]) -> tuple[Any, ...]:
    """Return the members of ``parameter``'s type hint (one if plain, several for a union)."""
    hint = hints.get(parameter.name)
    union = typing.get_origin(hint) in (typing.Union, types_module.UnionType)
    return typing.get_args(hint) if union else (hint,)


def _allowed_types(parameter: inspect.Parameter, hints: Mapping[str, Any]) -> tuple[type, ...]:
    """Python types a YAML value of ``parameter`` may have (empty: anything)."""
    types: set[type] = set()
    for option in _hint_options(parameter, hints):
        origin = typing.get_origin(option) or option
        if origin in (int, float, str, bool, type(None), tuple, list, dict):
            types.add(origin)
        elif option is typing.Any or option is None:
            return ()
        elif isinstance(origin, type) and issubclass(origin, tuple | list):
            types.add(tuple)
        elif getattr(origin, "__name__", "") in ("Sequence", "Iterable"):
            types.update((tuple, list))
        elif getattr(origin, "__name__", "") in ("Mapping",):
            types.add(dict)
    if not types and parameter.default is not inspect.Parameter.empty:
        default = parameter.default
        types.add(type(default))
    if float in types:
        types.add(int)
    if tuple in types:
        types.add(list)
    return tuple(types)


def _literal_choices(parameter: inspect.Parameter, hints: Mapping[str, Any]) -> tuple[Any, ...]:
    """Return the values a ``Literal[...]`` hint allows (empty: the hint is not a literal)."""
    choices: list[Any] = []
    for option in _hint_options(parameter, hints):
        if typing.get_origin(option) is typing.Literal:
            choices += typing.get_args(option)
        elif option is type(None):
            choices.append(None)
        else:
            return ()
    return tuple(choices)


def _item_types(parameter: inspect.Parameter, hints: Mapping[str, Any]) -> tuple[type, ...]:
    """Types the items of a list value of ``parameter`` may have (empty: anything).

    ``Sequence[int]`` and ``tuple[int, ...]`` give ``int``; a hint without item types
    (``tuple``, ``list``) or an item type that is not a plain scalar gives no constraint.
    """
    types: set[type] = set()
    for option in _hint_options(parameter, hints):
        origin = typing.get_origin(option)
        sequence = origin in (tuple, list) or getattr(origin, "__name__", "") in (
            "Sequence",
            "Iterable",
        )
        if not sequence:
            continue
        for item in typing.get_args(option):
            if item is Ellipsis:
                continue
            if item not in (int, float, str, bool):
                return ()
            types.add(item)
    if float in types:
        types.add(int)
    return tuple(types)


# Integer arguments that count something (epochs, splits, layer widths, batch and block sizes,
# numbers of layers, folds, genes...) must be at least 1, for every model, task and the
# simulation alike: a count of 0 or below is refused here rather than failing (or silently
# changing what runs, as a negative ``max_splits`` would) once the work has started. Matched
# by name: these names and prefixes / suffixes, except the counts where 0 means "none".
_COUNT_NAMES = frozenset(
    {
        "hidden",
        "epochs",
        "steps",
        "budget",
        "top_k",
        "devices",
        "early_stopping",
        "lr_step_size",
        "d_model",
        "d_ff",
        "control_multiplier",
    }
)
_COUNT_PREFIXES = ("n_", "max_")
_COUNT_SUFFIXES = ("_epochs", "_size", "_dim", "_block", "_per_group", "_splits")
# Integers that may be 0 but not negative: seeds, and counts where 0 means "none".
_NON_NEGATIVE_NAMES = frozenset({"seed", "random_state", "n_residual", "ranks", "combinations"})


def _integer_minimum(name: str) -> int | None:
    """Return the smallest integer argument ``name`` accepts (``None``: no bound checked here)."""
    if name in _NON_NEGATIVE_NAMES:
        return 0
    if name in _COUNT_NAMES or name.startswith(_COUNT_PREFIXES) or name.endswith(_COUNT_SUFFIXES):
        return 1
    return None


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
