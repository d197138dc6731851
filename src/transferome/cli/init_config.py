"""``transferome init-config FILE``: write a commented configuration for ``transferome run``."""

from __future__ import annotations

import argparse

from transferome.cli._common import new_output

NAME = "init-config"
HELP = "write a commented YAML configuration for `transferome run --config`"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``transferome init-config`` to ``parser``."""
    parser.add_argument(
        "file", nargs="?", default="transferome.yaml", help="where to write it (transferome.yaml)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="the settings of `transferome run --quick`"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing file")


def run(args: argparse.Namespace) -> int:
    """Run ``transferome init-config`` on the parsed ``args``; return the exit status."""
    from transferome.data import atomic_write_text
    from transferome.pipeline.template import config_template

    path = new_output(args.file, overwrite=args.overwrite, option="")
    text = config_template(path.name, quick=args.quick)
    atomic_write_text(path, text)
    print(f"wrote {path}; edit it, then run: transferome run --config {path}")
    return 0
