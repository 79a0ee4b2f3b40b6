"""A progress line for long sweeps: rows done, rows/s and ETA, on standard error."""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["Progress"]


def _si(value: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= scale:
            return f"{value / scale:.1f}{unit}"
    return f"{value:.0f}"


class Progress:
    """Draws ``[####----]  45%  12.3M/27.1M rows  85.2M rows/s  ETA 0:03`` as rows arrive.

    On a terminal the line redraws in place (at most ten times a second); elsewhere a
    line is printed at every tenth of the work. Disabled, or for fewer than ``min_rows``
    rows (work that ends in moments), it prints nothing.
    """

    def __init__(self, total: int, *, label: str = "rows", enabled: bool = True, min_rows: int = 1_000_000,
                 stream: TextIO | None = None) -> None:
        self.total, self.label = max(total, 1), label
        self.enabled = enabled and total >= min_rows
        self.stream = stream or sys.stderr
        self.done = 0
        self._start = time.perf_counter()
        self._last_draw = 0.0
        self._last_tenth = -1
        self._tty = self.stream.isatty()

    def update(self, rows: int) -> None:
        """Count ``rows`` more rows as done."""
        self.done += rows
        if not self.enabled:
            return
        now = time.perf_counter()
        tenth = 10 * self.done // self.total
        if self._tty and now - self._last_draw > 0.1:
            self._last_draw = now
            self.stream.write("\r" + self.line())
            self.stream.flush()
        elif not self._tty and tenth > self._last_tenth:
            self._last_tenth = tenth
            self.stream.write(self.line() + "\n")

    def line(self) -> str:
        """The progress line as it stands."""
        elapsed = max(time.perf_counter() - self._start, 1e-9)
        rate = self.done / elapsed
        fraction = min(self.done / self.total, 1.0)
        eta = (self.total - self.done) / rate if rate > 0 else 0.0
        bar = "#" * int(20 * fraction) + "-" * (20 - int(20 * fraction))
        return (f"[{bar}] {100 * fraction:3.0f}%  {_si(self.done)}/{_si(self.total)} {self.label}  "
                f"{_si(rate)} {self.label}/s  ETA {int(eta) // 60}:{int(eta) % 60:02d}")

    def close(self) -> None:
        """Finish the line."""
        if self.enabled and self._tty:
            self.stream.write("\r" + self.line() + "\n")
            self.stream.flush()
