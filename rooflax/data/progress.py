"""Progress of long sweeps on standard error: rows done, rows/s and ETA (drawn with rich).

The rate counts only the rows of this run (not those a resumed sweep already had) and
starts with the second batch of rows, so neither resumed rows nor the compile time
before the first batch skew it; until it is known, no rate or ETA is shown.
"""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, ProgressColumn, Task, TaskProgressColumn
from rich.progress import Progress as _RichProgress
from rich.text import Text

from rooflax.units import si as si_prefixed

__all__ = ["Progress", "format_duration", "si"]


#: A count with an SI prefix, one decimal from 1k on: ``12.3M``, ``850.0k``, ``7``.
si = functools.partial(si_prefixed, spec=".1f", lowest="k", plain=".0f")


def format_duration(seconds: float) -> str:
    """``m:ss``, or ``h:mm:ss`` from an hour on."""
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def _percent(task: Task) -> str:
    return f"{100 * min(task.completed / (task.total or 1), 1.0):3.0f}%"


def _counts(task: Task) -> str:
    return f"{si(task.completed)}/{si(task.total or 0)} {task.description}"


def _rate(task: Task) -> str:
    speed = task.speed
    return f"{si(speed)} {task.description}/s" if speed else ""


def _eta(task: Task) -> str:
    remaining = task.time_remaining
    return f"ETA {format_duration(remaining)}" if remaining is not None and task.speed else ""


class _Column(ProgressColumn):
    """A column drawn by one of the text functions above (shared with the plain line)."""

    def __init__(self, text: Callable[[Task], str]) -> None:
        super().__init__()
        self._text = text

    def render(self, task: Task) -> Text:
        return Text(self._text(task))


class Progress:
    """Shows ``━━━━━━━╸━━━━  45%  12.3M/27.1M rows  85.2M rows/s  ETA 0:03`` as rows arrive.

    On an interactive terminal a rich progress bar redraws in place. Elsewhere (a log
    file, a pipe) a plain line is printed as soon as the rate is known, then at most every
    ``interval_s`` seconds, and a last line at :meth:`close`. Disabled, it prints nothing;
    with fewer than ``min_rows`` rows left (work that ends in moments) it draws no bar,
    but :meth:`print` still prints.

    Args:
        total: rows of the whole job.
        done: rows already done before this run (a resumed sweep); not counted in the rate.
        label: what is counted.
        enabled: print anything at all.
        min_rows: fewest rows left for which a bar is drawn.
        stream: where to write (standard error by default).
        interval_s: seconds between plain lines when not on a terminal.
        clock: seconds, monotonic (tests pass a fake one).
    """

    def __init__(
        self,
        total: int,
        *,
        done: int = 0,
        label: str = "rows",
        enabled: bool = True,
        min_rows: int = 1_000_000,
        stream: TextIO | None = None,
        interval_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.enabled = enabled
        self._stream = stream or sys.stderr
        self._console = Console(file=self._stream, highlight=False)
        self._drawn = enabled and total - done >= min_rows
        self._live = self._drawn and self._console.is_interactive
        self._clock, self._interval_s = clock, interval_s
        self._start, self._next_line = clock(), clock()
        self._done_before = done
        self._bar = _RichProgress(
            BarColumn(),
            TaskProgressColumn(),
            _Column(_counts),
            _Column(_rate),
            _Column(_eta),
            console=self._console,
            get_time=clock,
            disable=not self._live,
        )
        self._task = self._bar.add_task(label, total=max(total, 1), completed=done)
        if self._live:
            self._bar.start()

    @property
    def _state(self) -> Task:
        return self._bar.tasks[0]

    def update(self, rows: int) -> None:
        """Count ``rows`` more rows as done."""
        self._bar.advance(self._task, rows)
        if self._drawn and not self._live and self._state.speed and self._clock() >= self._next_line:
            self._next_line = self._clock() + self._interval_s
            self._write(self.line())

    def line(self) -> str:
        """The progress as one plain line."""
        task = self._state
        return "  ".join(part for part in (_percent(task), _counts(task), _rate(task), _eta(task)) if part)

    def print(self, message: str) -> None:
        """Print a message (above the bar while one is drawn), if enabled."""
        if self._live:
            self._console.print(message, markup=False)
        elif self.enabled:
            self._write(message)

    def _write(self, text: str) -> None:
        self._stream.write(text + "\n")
        self._stream.flush()

    def close(self) -> None:
        """Finish: stop the bar, or print a last plain line with this run's average rate."""
        if self._live:
            self._bar.stop()
        elif self._drawn:
            task, elapsed = self._state, self._clock() - self._start
            rows = task.completed - self._done_before
            rate = f" ({si(rows / elapsed)} {task.description}/s)" if elapsed > 0 else ""
            self._write(f"{_percent(task)}  {_counts(task)} in {format_duration(elapsed)}{rate}")
        self._drawn = self._live = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
