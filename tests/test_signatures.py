"""Public functions follow the scanpy convention: ``adata`` first, options keyword-only.

A public function that takes ``adata`` takes it first (after the model, for a function that
implements a model's method), then at most one positional argument, then keyword-only options.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import transferome

# A function that implements a model's method may take the model first.
_MODEL_FIRST = {"model", "estimator"}


def _public_functions():
    for info in pkgutil.walk_packages(transferome.__path__, "transferome."):
        if any(part.startswith("_") for part in info.name.split(".")[1:]):
            continue
        module = importlib.import_module(info.name)
        for name in getattr(module, "__all__", []):
            function = getattr(module, name, None)
            if inspect.isfunction(function) and function.__module__ == module.__name__:
                yield f"{info.name}.{name}", function


def _violation(function) -> str | None:
    """Why ``function`` breaks the convention, or None."""
    parameters = list(inspect.signature(function).parameters.values())
    if "adata" not in {p.name for p in parameters}:
        return None
    if parameters[0].name in _MODEL_FIRST:
        parameters = parameters[1:]
    if parameters[0].name != "adata":
        return f"takes {parameters[0].name!r} before 'adata'"
    # One positional argument may follow ``adata``: the subject of the call (a key, a task,
    # the held-out combinations), as in ``sc.tl.rank_genes_groups(adata, groupby)``.
    positional = [
        p.name
        for p in parameters[1:]
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
    ]
    if len(positional) > 1:
        return f"{positional} can all be given by position; make all but the first keyword-only"
    return None


def test_public_functions_take_adata_first_and_keyword_only_options() -> None:
    found = dict(_public_functions())
    assert len(found) > 50  # the walk reaches the package
    problems = {name: why for name, f in found.items() if (why := _violation(f))}
    assert not problems, problems


def test_the_check_catches_a_violation() -> None:
    def positional_option(adata, key, what="dose"):
        return adata, key, what

    def data_second(values, adata, *, k=1):
        return values, adata, k

    def fine(adata, key, *, what="dose"):
        return adata, key, what

    assert "keyword-only" in _violation(positional_option)
    assert "before 'adata'" in _violation(data_second)
    assert _violation(fine) is None
