"""Command-line interface: ``transferome <command>``.

Each subcommand lives in its own module with ``NAME``, ``HELP``, ``add_arguments(parser)`` and
``run(args) -> int``; the library is imported lazily inside ``run`` so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import signal
import sys
from collections.abc import Iterator, Sequence
from types import FrameType

__all__ = ["INTERRUPTED_MESSAGE", "build_parser", "main"]

#: The one line printed when a signal stops a command.
INTERRUPTED_MESSAGE = "interrupted, nothing written"

# Signals that stop a command cleanly (outputs removed, exit 128 + signal number).
_STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)

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
    "dose_curve",
)


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every subcommand registered."""
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


class _Stopped(KeyboardInterrupt):
    """Raised by the signal handlers of :func:`_stop_on_signals`.

    A KeyboardInterrupt, so every ``except BaseException`` clean-up of partial outputs runs.
    """


@contextlib.contextmanager
def _stop_on_signals(received: list[int]) -> Iterator[None]:
    """Turn SIGINT, SIGTERM and SIGHUP into an exception; record the signal in ``received``.

    A signal the process inherited as ignored (``nohup``, a background job) stays ignored.
    Libraries that catch the exception and exit on their own (Lightning exits 1 on a
    KeyboardInterrupt) cannot hide the signal: :func:`main` reads ``received``.
    """

    def handler(signum: int, frame: FrameType | None) -> None:
        if received:  # a repeated signal must not interrupt the clean-up of the first
            return
        received.append(signum)
        raise _Stopped(signum)

    previous = {}
    for signum in _STOP_SIGNALS:
        current = signal.getsignal(signum)
        if current == signal.SIG_IGN:
            continue
        with contextlib.suppress(ValueError, OSError):  # not the main thread
            previous[signum] = current
            signal.signal(signum, handler)
    try:
        yield
    finally:
        for signum, current in previous.items():
            with contextlib.suppress(ValueError, OSError, TypeError):
                signal.signal(signum, current)


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

    received: list[int] = []
    try:
        with _stop_on_signals(received):
            reject_unused_keys(args)
            with console_logging(-1 if args.quiet else args.verbose):
                return int(args._run(args) or 0)
    except TransferomeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except FileExistsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, SystemExit):
        # A library may turn the interrupt into SystemExit (Lightning: exit 1, or 0 on SIGTERM)
        if not received and sys.exc_info()[0] is SystemExit:
            raise
        signum = received[0] if received else signal.SIGINT
        print(INTERRUPTED_MESSAGE, file=sys.stderr)
        return 128 + int(signum)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
