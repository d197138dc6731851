"""The commented configuration template written by ``transferome init-config``."""

from __future__ import annotations

import inspect
from typing import Any

import yaml

__all__ = ["config_template"]

_HEADER = """\
# transferome run configuration.
# Run it with:  transferome run --config {name}
# Every field maps one-to-one onto the library: models.<name>.<argument> is a keyword
# argument of that estimator, data.simulate.<argument> one of transferome.datasets.simulate.
# The whole file is checked before any training; an error names the field.

# Seed of the simulation, the splits and every model's random_state.
seed: {seed}
# Genes counted as differentially expressed per held-out group in the *_deg metrics.
n_degs: {n_degs}

# The data. Give exactly one of `simulate` (the built-in atlas, no file needed) or `path`.
data:
{data}  # Your own data instead of `simulate` (log-normalised values, or counts normalised below):
  # path: my_data.h5ad          # h5ad, CSV/TSV table, GCT or 10x folder; or one file a species:
  # path: {{mouse: mouse.h5ad, rat: rat.h5ad}}
  # orthologs: orthologs.csv    # ortholog table (one row per gene pair) for cross-species tasks
  # layer: null                 # read this layer instead of X
  # values: auto                # auto: counts and fractional counts are normalised
  #                             # (normalize_total + log1p) with a warning; log: use X as it
  #                             # is; counts: always normalise
  # reader: {{genes_in: rows}}    # options of transferome.data.read for tables
  # obs columns (the defaults are shown):
  # species_key: species
  # context_key: context        # organ / cell type / cell line
  # perturbation_key: perturbation
  # control: control            # label of the unperturbed observations
  # dose_key: dose
  # sample_key: sample
  # time_key: time
  # combination_sep: "+"        # combinations are labels joined by this

# Data of the `combination` task (same fields as `data`); remove to use `data`.
combination_data:
{combination}
# Models and their arguments. Remove a model to leave it out. The arguments not set here
# take their defaults, listed in the comment under each model.
models:
{models}
# Tasks, in the order they run, with their options. Remove a task to skip it.
tasks:
{tasks}"""


def _indent(text: str, spaces: int) -> str:
    pad = " " * spaces
    return "".join(pad + line + "\n" for line in text.splitlines())


def _dump(value: Any) -> str:
    return yaml.safe_dump(value, sort_keys=False, default_flow_style=None).rstrip("\n")


def _model_block(name: str, params: dict[str, Any]) -> str:
    from transferome.models import get_model

    signature = inspect.signature(get_model(name).__init__)
    lines = [f"{name}:" + (" {}" if not params else "")]
    if params:
        block = yaml.safe_dump(params, sort_keys=False, default_flow_style=False)
        lines.append(_indent(block.rstrip("\n"), 2).rstrip("\n"))
    defaults = [
        f"{p.name}={p.default!r}"
        for p in signature.parameters.values()
        if p.name != "self" and p.name not in params and p.default is not inspect.Parameter.empty
    ]
    line = "  # other arguments: "
    for item in defaults:
        if len(line) + len(item) > 94:
            lines.append(line.rstrip(", ").rstrip())
            line = "  #   "
        line += item + ", "
    if defaults:
        lines.append(line.rstrip(", "))
    return "\n".join(lines)


def config_template(name: str = "config.yaml", *, quick: bool = False) -> str:
    """Return a commented YAML configuration equal to the built-in run (``quick``: ``--quick``)."""
    from transferome.pipeline.config import default_config

    config = default_config(quick=quick)
    models = "\n".join(_model_block(n, p) for n, p in config["models"].items())
    return _HEADER.format(
        name=name,
        seed=config["seed"],
        n_degs=config["n_degs"],
        data=_indent(_dump({"simulate": config["data"]["simulate"]}), 2),
        combination=_indent(_dump(config["combination_data"]), 2),
        models=_indent(models, 2),
        tasks=_indent(_dump(config["tasks"]), 2),
    )
