"""In-memory sweeps against the memory-write floor: how close rooflax.sweep comes to writing its frame's bytes.

Run from the repository root::

    python benchmarks/bench_frames.py            # 1M configurations × prefill+decode (issue 18 item 9)
    python benchmarks/bench_frames.py --quick    # a quarter of the grid
    python benchmarks/bench_frames.py --band     # what the error band costs (issue 19), on the same grids

The floor is the time to write the frame's own bytes (``estimated_size``) into fresh memory,
which every new frame pays; the ratio divides a sweep's steady-state time by it. Both are
measured in this process, interleaved run by run (so a busy machine slows them alike), best
of ``--runs``; compile time is the first call's excess over the steady state. Summary sweeps
aim at ≤ 2× the floor, long ones at about 1.5×.

``--band`` times the same sweeps on the A40 and on a copy of it with its error band removed
(every ``band_low`` and ``band_high`` term dropped, as on a preset no measurement covers, whose
band columns are null), interleaved the same way: the band alone differs, and a sweep with it
aims at ≤ 1.1× the one without (issue 19).
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


def interleaved(fns: dict, runs: int) -> dict[str, tuple[float, float]]:
    """Best wall-clock and best process CPU seconds of each function, the functions taking turns run after run.

    CPU time (every thread of the process) is the steadier figure on a shared machine: other
    processes stretch the wall clock, not the work done here.
    """
    best = dict.fromkeys(fns, (float("inf"), float("inf")))
    for _ in range(runs):
        for name, fn in fns.items():
            wall, cpu = time.perf_counter(), time.process_time()
            result = fn()
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            best[name] = (min(best[name][0], wall), min(best[name][1], cpu))
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
    timed = interleaved({"sweep": lambda: rooflax.sweep(spec, summary=summary), "floor": lambda: np.copy(source)}, runs)
    best = {name: wall for name, (wall, _) in timed.items()}
    ratio = best["sweep"] / best["floor"]
    print(f"\n{label}: {rows:,} rows × {nbytes / rows:.0f} B/row = {nbytes / 2**20:,.0f} MiB")
    print(f"  first call (compile + run): {first:.3f} s; compile ≈ {first - best['sweep']:.3f} s")
    print(f"  steady state: {best['sweep']:.3f} s = {rows / best['sweep'] / 1e6:.1f} M rows/s")
    print(
        f"  floor (the frame's bytes copied into fresh memory): {best['floor']:.3f} s "
        f"-> the sweep takes {ratio:.2f}× the floor"
    )
    return ratio


def band_cost(label: str, spec: rooflax.SweepSpec, summary: bool, runs: int) -> tuple[float, float]:
    """Print the sweep's steady state with its error band and without it; return the ratios (wall, CPU)."""
    plain = spec.with_keys(hardware=[hw.without_band() for hw in spec.hardware])
    for each in (spec, plain):  # compile both first
        rooflax.sweep(each, summary=summary)
    best = interleaved(
        {
            "band": lambda: rooflax.sweep(spec, summary=summary),
            "no band": lambda: rooflax.sweep(plain, summary=summary),
        },
        runs,
    )
    (wall, cpu), (plain_wall, plain_cpu) = best["band"], best["no band"]
    print(f"\n{label}")
    print(f"  wall: with the band {wall:.3f} s, without {plain_wall:.3f} s -> {wall / plain_wall:.3f}×")
    print(f"  CPU:  with the band {cpu:.3f} s, without {plain_cpu:.3f} s -> {cpu / plain_cpu:.3f}×")
    return wall / plain_wall, cpu / plain_cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a quarter of the grid")
    parser.add_argument("--band", action="store_true", help="time the sweeps with and without the error band")
    parser.add_argument("--runs", type=int, default=7, help="repeats for best-of timings")
    args = parser.parse_args()
    summary_spec = grid(8192 if args.quick else 32768)
    long_spec = grid(2048 if args.quick else 8192)
    print(f"llama-13b on a40, prefill+decode; JAX devices: {len(jax.local_devices())}")
    if args.band:
        summary = band_cost(
            f"summary, {summary_spec.configurations() // 2:,} configurations × 2 phases", summary_spec, True, args.runs
        )
        long = band_cost(
            f"long, {long_spec.configurations() // 2:,} configurations × 2 phases × 15 ops", long_spec, False, args.runs
        )
        print(
            f"\nwith the band over without (wall, CPU): summary {summary[0]:.3f}×, {summary[1]:.3f}×; "
            f"long {long[0]:.3f}×, {long[1]:.3f}× (aim ≤ 1.1×)"
        )
        return
    summary = against_floor(
        f"summary, {summary_spec.configurations() // 2:,} configurations × 2 phases", summary_spec, True, args.runs
    )
    long = against_floor(
        f"long, {long_spec.configurations() // 2:,} configurations × 2 phases × 15 ops", long_spec, False, args.runs
    )
    print(f"\nratio to the floor: summary {summary:.2f}× (aim ≤ 2×), long {long:.2f}×")


if __name__ == "__main__":
    main()
