"""In-memory sweeps against the memory-write floor: how close rooflax.sweep comes to writing its frame's bytes.

Run from the repository root::

    python benchmarks/bench_frames.py            # 1M configurations × prefill+decode (issue 18 item 9)
    python benchmarks/bench_frames.py --quick    # a quarter of the grid

The floor is the time to write the frame's own bytes (``estimated_size``) into fresh memory,
which every new frame pays; the ratio divides a sweep's steady-state time by it. Both are
measured in this process, interleaved run by run (so a busy machine slows them alike), best
of ``--runs``; compile time is the first call's excess over the steady state. Summary sweeps
aim at ≤ 2× the floor, long ones at about 1.5×.
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np

import rooflax


def grid(seq_stop: int) -> rooflax.SweepSpec:
    """Llama-13B on the A40: batch 1..1024 × seq_len 32..seq_stop (step 32) × prefill and decode."""
    return rooflax.parse_spec(
        batch={"start": 1, "stop": 1024, "step": 1},
        seq_len={"start": 32, "stop": seq_stop, "step": 32},
        phases=["prefill", "decode"],
    )


def interleaved(fns: dict, runs: int) -> dict[str, float]:
    """Best wall-clock seconds of each function, the functions taking turns run after run."""
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(runs):
        for name, fn in fns.items():
            start = time.perf_counter()
            result = fn()
            best[name] = min(best[name], time.perf_counter() - start)
            del result
    return best


def against_floor(label: str, spec: rooflax.SweepSpec, summary: bool, runs: int) -> float:
    """Print a sweep's compile time, steady state and its ratio to the fresh-memory floor; return the ratio."""
    start = time.perf_counter()
    frame = rooflax.sweep(spec, summary=summary)
    first = time.perf_counter() - start
    rows, nbytes = frame.height, frame.estimated_size()
    del frame
    source = np.ones(nbytes // 8)
    best = interleaved({"sweep": lambda: rooflax.sweep(spec, summary=summary), "floor": lambda: np.copy(source)}, runs)
    ratio = best["sweep"] / best["floor"]
    print(f"\n{label}: {rows:,} rows × {nbytes / rows:.0f} B/row = {nbytes / 2**20:,.0f} MiB")
    print(f"  first call (compile + run): {first:.3f} s; compile ≈ {first - best['sweep']:.3f} s")
    print(f"  steady state: {best['sweep']:.3f} s = {rows / best['sweep'] / 1e6:.1f} M rows/s")
    print(
        f"  floor (the frame's bytes copied into fresh memory): {best['floor']:.3f} s "
        f"-> the sweep takes {ratio:.2f}× the floor"
    )
    return ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a quarter of the grid")
    parser.add_argument("--runs", type=int, default=7, help="repeats for best-of timings")
    args = parser.parse_args()
    summary_spec = grid(8192 if args.quick else 32768)
    long_spec = grid(2048 if args.quick else 8192)
    print(f"llama-13b on a40, prefill+decode; JAX devices: {len(jax.local_devices())}")
    summary = against_floor(
        f"summary, {summary_spec.configurations() // 2:,} configurations × 2 phases", summary_spec, True, args.runs
    )
    long = against_floor(
        f"long, {long_spec.configurations() // 2:,} configurations × 2 phases × 15 ops", long_spec, False, args.runs
    )
    print(f"\nratio to the floor: summary {summary:.2f}× (aim ≤ 2×), long {long:.2f}×")


if __name__ == "__main__":
    main()
