"""``transferome run``: the whole project on the built-in atlas, or on your data with --config.

Without arguments it simulates the default atlas and runs every task with every model and the
baselines, writing ``report.html``, tables, figures, models and the configuration used to
``transferome-results/``. The results appear under the output name only when the run
succeeded; an existing folder needs ``--overwrite``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

NAME = "run"
HELP = "run every task (transfer, species, combinations, annotation, gene mapping) + report"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``transferome run`` to ``parser``."""
    parser.add_argument(
        "--config",
        default=None,
        help="YAML configuration (see `transferome init-config`); default: the built-in run",
    )
    parser.add_argument(
        "--out", default="transferome-results", help="output folder (default transferome-results)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a small atlas and fast model settings for a first look (about a minute)",
    )
    parser.add_argument(
        "--seed", type=int, default=None, help="seed of the run (overrides the config's seed)"
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace the results in an existing folder"
    )
    parser.add_argument("--check", action="store_true", help="validate the configuration and stop")


def run(args: argparse.Namespace) -> int:
    """Run ``transferome run`` on the parsed ``args``; return the exit status."""
    import sys

    import yaml

    from transferome.cli._common import check_output
    from transferome.pipeline import (
        ConfigError,
        Progress,
        default_config,
        run_pipeline,
        validate_config,
    )
    from transferome.pipeline.config import load_yaml
    from transferome.pipeline.run import prepare_output

    if args.config is not None and args.quick:
        raise ConfigError("--quick applies to the built-in run; set small settings in --config")
    text = None
    if args.config is not None:
        path = Path(args.config)
        if not path.is_file():
            raise ConfigError(f"config file {str(path)!r} does not exist")
        text = path.read_text(encoding="utf-8")
        try:
            raw = load_yaml(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {str(path)!r} is not valid YAML: {exc}") from exc
        if not isinstance(raw, dict):
            raise ConfigError(f"config file {str(path)!r} must hold a mapping of fields")
        base = path.parent
    else:
        raw = default_config(quick=args.quick)
        base = Path(".")
    if args.seed is not None:
        raw = {**raw, "seed": args.seed}
        for section in ("data", "combination_data"):
            simulation = (raw.get(section) or {}).get("simulate")
            if isinstance(simulation, dict):
                raw[section] = {**raw[section], "simulate": {**simulation, "seed": args.seed}}
    config = validate_config(raw, base=base)
    if args.check:
        print(f"configuration is valid: tasks {list(config.tasks)}, models {list(config.models)}")
        return 0
    # Refuse an output that must not or cannot be written, and an existing folder, before
    # any work (run_pipeline checks the folder again).
    check_output(
        args.out,
        overwrite=args.overwrite,
        inputs=[args.config, *_input_paths(config)],
        folder=True,
        replaces=True,
    )
    probe = prepare_output(args.out, overwrite=args.overwrite)
    probe.rmdir()
    progress = Progress(stream=None if getattr(args, "quiet", False) else "stderr")
    result = run_pipeline(
        config, args.out, overwrite=args.overwrite, config_text=text, progress=progress
    )
    for name, reason in result.skipped.items():
        print(f"task {name} skipped: {reason}", file=sys.stderr)
    for line in verdicts(result.stages):
        print(line)
    print(f"wrote {result.out / 'report.html'} ({len(result.stages)} tasks)")
    return 0


def _input_paths(config) -> list[str]:
    """Every file a configuration reads: data, ortholog and metadata tables."""
    paths = []
    for data in (config.data, config.combination_data):
        if not data:
            continue
        path = data.get("path")
        paths += list(path.values()) if isinstance(path, dict) else [path]
        paths += [data.get("orthologs"), (data.get("reader") or {}).get("metadata")]
    return [p for p in paths if isinstance(p, str)]


def verdicts(stages) -> list[str]:
    """Return one line per scored task: who wins, and the bounds.

    The best model against the strongest baseline, and the bounds (noise ceiling; the truth
    on simulated data).
    """
    import math

    from transferome.report import summary_table

    def fmt(value) -> str:
        return (
            "n/a"
            if not isinstance(value, int | float) or not math.isfinite(value)
            else (f"{value:.3f}")
        )

    lines = []
    for row in summary_table(stages).itertuples():
        text = f"{row.task}: {row.winner} wins on {row.metric}; {row.model} {fmt(row.score)}"
        if row.baseline is not None and row.baseline != row.model:
            text += f" vs strongest baseline {row.baseline} {fmt(row.baseline_score)}"
            if math.isfinite(row.margin):
                text += f" ({row.margin:+.3f})"
        bounds = []
        if isinstance(row.ceiling, float) and math.isfinite(row.ceiling):
            bounds.append(f"noise ceiling {fmt(row.ceiling)}")
        if isinstance(row.truth, float) and math.isfinite(row.truth):
            bounds.append(f"truth {fmt(row.truth)}")
        if bounds:
            text += "; " + ", ".join(bounds)
        lines.append(text)
    return lines
