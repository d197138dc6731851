"""Progress display of a run: one line per stage with an estimate, updated after every fit."""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from typing import TextIO

__all__ = ["SECONDS_PER_FIT", "Progress", "estimate_seconds"]

SECONDS_PER_FIT: Mapping[str, float] = {
    "control": 0.2,
    "additive": 0.3,
    "linear": 1.5,
    "fe": 8.0,
    "xtransfer": 6.0,
    "uge": 20.0,
    "completion ensemble": 5.0,
}
"""Rough seconds per fit of each model on the default atlas (2 CPU cores); others: 5 s."""


def estimate_seconds(fits: Sequence[str], scale: float = 1.0) -> float:
    """Estimated duration of the given fits (model names), times ``scale``."""
    return scale * sum(SECONDS_PER_FIT.get(name, 5.0) for name in fits) + 1.0


def _clock(seconds: float) -> str:
    seconds = max(0.0, seconds)
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


class Progress:
    """Prints stage starts, per-fit updates with the time left, and stage ends.

    Parameters
    ----------
    stream
        Where to print (``"stderr"``, the default: the standard error of the moment);
        ``None`` prints nothing.
    """

    def __init__(self, stream: TextIO | str | None = "stderr") -> None:
        self.stream = stream
        self.records: list[tuple[str, float, float]] = []
        self._start = time.perf_counter()
        self._stage = ""
        self._stage_start = 0.0
        self._estimate = 0.0
        self._steps = 0
        self._total = 0

    def _print(self, text: str) -> None:
        if self.stream is not None:
            stream = sys.stderr if isinstance(self.stream, str) else self.stream
            print(text, file=stream, flush=True)

    def plan(self, stages: Sequence[tuple[str, float]]) -> None:
        """Announce the stages and their estimated durations."""
        total = sum(s for _, s in stages)
        names = ", ".join(f"{name} (~{_clock(s)})" for name, s in stages)
        self._print(f"{len(stages)} stages, about {_clock(total)} in all: {names}")

    def start(self, name: str, index: int, count: int, estimate: float, steps: int) -> None:
        """Announce that a stage begins; ``steps`` fits are expected."""
        self._stage, self._estimate, self._total, self._steps = name, estimate, steps, 0
        self._stage_start = time.perf_counter()
        self._print(f"[{index}/{count}] {name}: started, ~{_clock(estimate)}")

    def step(self, message: str) -> None:
        """One unit of work of the current stage is done."""
        self._steps += 1
        elapsed = time.perf_counter() - self._stage_start
        if self._total and self._steps <= self._total:
            left = elapsed / self._steps * (self._total - self._steps)
            self._print(
                f"    {self._stage} {self._steps}/{self._total} ({message}), ~{_clock(left)} left"
            )
        else:
            self._print(f"    {self._stage}: {message} ({_clock(elapsed)})")

    def end(self, note: str = "done") -> float:
        """Announce that the current stage ended; return its duration."""
        elapsed = time.perf_counter() - self._stage_start
        self.records.append((self._stage, self._estimate, elapsed))
        self._print(f"    {self._stage}: {note} in {_clock(elapsed)}")
        return elapsed

    @property
    def elapsed(self) -> float:
        """Seconds since the display was created."""
        return time.perf_counter() - self._start
