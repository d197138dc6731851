"""Command-line interface: ``transferome <command>``.

Each subcommand lives in its own module with ``NAME``, ``HELP``, ``add_arguments(parser)`` and
``run(args) -> int``; the library is imported lazily inside ``run`` so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

__all__ = ["build_parser", "main"]

# Modules of transferome.cli, one per subcommand, in the order --help lists them.
_SUBCOMMANDS = (
    "run",
    "init_config",
    "info",
    "validate",
    "simulate",
    "benchmark",
    "fit",
    "predict",
    "evaluate",
    "map_genes",
    "suggest",
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered."""
    from transferome import __version__

    parser = argparse.ArgumentParser(
        prog="transferome",
        description=(
            "Predict how gene expression responds to a perturbation in a context where it was "
            "never measured; map genes across species by function; suggest the next experiment."
        ),
    )
    parser.add_argument("--version", action="version", version=f"transferome {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more messages")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _SUBCOMMANDS:
        module = importlib.import_module(f"transferome.cli.{name}")
        sub = subparsers.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.add_arguments(sub)
        sub.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``transferome`` console script; returns the exit code."""
    from transferome._logging import console_logging
    from transferome.errors import TransferomeError

    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "_run", None) is None:
        parser.print_help()
        return 0
    from transferome.cli._common import reject_unused_keys

    try:
        reject_unused_keys(args)
        with console_logging(-1 if args.quiet else args.verbose):
            return int(args._run(args) or 0)
    except TransferomeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except FileExistsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
