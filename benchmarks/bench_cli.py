"""Start-up time of the command line: ``rooflax --help`` and an argument error, against a bare interpreter.

Run from the repository root::

    python benchmarks/bench_cli.py            # 5 runs of each, medians printed

Each command runs in a fresh interpreter (``python -m rooflax.cli ...``), as a user's shell
runs it. The baseline is ``python -c pass`` in the same run, so the ratio says what rooflax
adds to an interpreter's own start-up; ``import rooflax`` with JAX and polars loaded (what
every command paid before the CLI imported lazily) is timed too, for scale.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from rooflax.answers.tables import Table

ROOT = Path(__file__).resolve().parent.parent

CASES = {
    "python -c pass (baseline)": ["-c", "pass"],
    "rooflax --help": ["-m", "rooflax.cli", "--help"],
    "rooflax sweep --help": ["-m", "rooflax.cli", "sweep", "--help"],
    "rooflax plot --bogus (error)": ["-m", "rooflax.cli", "plot", "--bogus"],
    "import rooflax, jax, polars": ["-c", "import rooflax, jax, polars"],
}


def seconds(argv: list[str], runs: int) -> float:
    """Median wall time of ``python argv`` over ``runs`` fresh interpreters."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, *argv], env=env, cwd=ROOT, capture_output=True, check=False)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="interpreters started per case (default 5)")
    args = parser.parse_args()
    times = {name: seconds(argv, args.runs) for name, argv in CASES.items()}
    base = next(iter(times.values()))
    rows = tuple((name, f"{t:.3f} s", f"{t / base:.1f}×") for name, t in times.items())
    print(Table(title="", header=("case", "median", "baseline"), rows=rows, numeric=(False, True, True)).text())


if __name__ == "__main__":
    main()
