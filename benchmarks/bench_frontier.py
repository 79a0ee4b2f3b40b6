"""Frontier speed: configurations served per second, vectorized, against one configuration at a time.

Run from the repository root::

    python benchmarks/bench_frontier.py           # Llama-2-70B on 8 H100s: dtypes, speculation, chunks, disaggregated
    python benchmarks/bench_frontier.py --quick   # fewer choices

The first call compiles the engine's step functions (one per model, accelerator, dtype,
layout and phase) and is reported apart; steady state is the best of three calls. The
baseline serves a sample of the same configurations one at a time (one
``rooflax.serve`` call each, warm) in this process; the ratio extrapolates it to the
whole search.
"""

from __future__ import annotations

import argparse
import time

import rooflax


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one dtype, no speculation or disaggregation")
    args = parser.parse_args()
    traffic = dict(isl=2048, osl=512)
    search = dict(model="llama-2-70b", hardware="h100-sxm", gpus=8, ttft=2.0, tpot=0.05, **traffic)
    if args.quick:
        search |= dict(dtype=["fp8"])
    else:
        search |= dict(dtype=["fp16", "fp8"], k=[0, 2, 4], chunk=[None, 512], disaggregated=True)

    start = time.perf_counter()
    result = rooflax.frontier(**search)
    cold = time.perf_counter() - start
    warm = []
    for _ in range(3):
        start = time.perf_counter()
        result = rooflax.frontier(**search)
        warm.append(time.perf_counter() - start)
    steady = min(warm)
    n = result.searched
    print(f"frontier: {n:,} configurations ({result.configurations.height:,} feasible, {result.pareto.height} on it)")
    print(f"  first call (compiles): {cold:.2f} s")
    print(f"  steady state:          {steady:.3f} s = {n / steady:,.0f} configurations/s")

    sample = result.configurations.filter(serving="aggregated", speculation="none", prefill="whole").head(12)
    one = dict(model="llama-2-70b", hardware="h100-sxm", **traffic)
    for row in sample.head(1).iter_rows(named=True):  # warm the one-point functions
        rooflax.serve(**one, dtype=row["dtype"], tp=row["tp"], pp=row["pp"], batch=[row["batch"]])
    start = time.perf_counter()
    for row in sample.iter_rows(named=True):
        rooflax.serve(**one, dtype=row["dtype"], tp=row["tp"], pp=row["pp"], batch=[row["batch"]])
    each = (time.perf_counter() - start) / sample.height
    print(
        f"  one at a time:         {each * 1e3:.1f} ms a configuration (a {sample.height}-configuration sample, warm)"
    )
    print(f"  vectorized / one at a time: {each * n / steady:,.0f}× faster over the whole search")


if __name__ == "__main__":
    main()
