"""The progress line: this run's rate, no rate before it is known, plain lines off a terminal."""

from __future__ import annotations

import io

from rooflax.data.progress import Progress, format_duration, si


class Clock:
    """A fake monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_rate_counts_only_this_runs_rows_after_the_first_batch():
    clock, stream = Clock(), io.StringIO()
    bar = Progress(10_000, done=8_000, min_rows=0, stream=stream, clock=clock)
    clock.now = 30.0  # compiling: the first batch arrives late
    bar.update(500)
    assert bar.line() == " 85%  8.5k/10.0k rows"  # no rate yet, so no "0 rows/s" and no "ETA 0:00"
    clock.now = 32.0
    bar.update(500)
    # 500 rows in the 2 s after the first batch: 250 rows/s (not 9,000 rows over 32 s); 1,000 left → 4 s
    assert bar.line() == " 90%  9.0k/10.0k rows  250 rows/s  ETA 0:04"


def test_off_a_terminal_plain_lines_come_at_a_bounded_interval():
    clock, stream = Clock(), io.StringIO()
    bar = Progress(31 * 100, min_rows=0, stream=stream, clock=clock, interval_s=10.0)
    for second in range(31):
        clock.now = float(second)
        bar.update(100)
    bar.close()
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue()
    # the rate is known from t = 1 s; then every 10 s; then the closing line (3,100 rows in 30 s)
    assert lines == [
        "  6%  200/3.1k rows  100 rows/s  ETA 0:29",
        " 39%  1.2k/3.1k rows  100 rows/s  ETA 0:19",
        " 71%  2.2k/3.1k rows  100 rows/s  ETA 0:09",
        "100%  3.1k/3.1k rows in 0:30 (103 rows/s)",
    ]


def test_small_or_disabled_work_draws_no_bar():
    stream = io.StringIO()
    bar = Progress(10, stream=stream)  # fewer rows than min_rows
    bar.update(10)
    bar.print("said anyway")
    bar.close()
    quiet = Progress(10**9, enabled=False, stream=stream)
    quiet.update(10**9)
    quiet.print("not said")
    quiet.close()
    assert stream.getvalue() == "said anyway\n"


def test_number_formats():
    assert [si(v) for v in (7, 850e3, 12.34e6, 2e9, 5e12)] == ["7", "850.0k", "12.3M", "2.0G", "5.0T"]
    assert [format_duration(s) for s in (4, 128, 3600 + 62)] == ["0:04", "2:08", "1:01:02"]
