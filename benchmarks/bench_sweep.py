"""Sweep speed and memory: rooflax against a Python loop, numpy broadcasting and a copy floor.

Run from the repository root::

    python benchmarks/bench_sweep.py            # everything, including a 10^9-row streamed sweep
    python benchmarks/bench_sweep.py --quick    # smaller grids, no 10^9-row run

Every figure comes from this process (or its children, for peak RSS) on the same grid;
ratios are against baselines run here, never against remembered numbers. Throughput is
op rows (one row per grid point × phase × op) per second. Compile time is reported
apart from steady state (best of several runs).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import polars as pl

import rooflax
from rooflax.cost.ops import OP_NAMES, make_step, op_costs
from rooflax.cost.roofline import Roof, op_achieved_time, op_row
from rooflax.cost.shape import Shape
from rooflax.data.frames import BOUND, GROUP, OP, PHASE, schemas
from rooflax.names import BOUNDS, GROUPS


def grid(quick: bool) -> rooflax.SweepSpec:
    stop = 4096 if quick else 16384
    return rooflax.parse_spec(
        batch={"start": 1, "stop": 1024, "step": 1},
        seq_len={"start": 32, "stop": stop, "step": 32},
        phases=["prefill", "decode"],
    )


def best_of(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
        del result
    return min(times)


def python_loop(spec: rooflax.SweepSpec, limit: int) -> tuple[int, float]:
    """What per-configuration tools do: a Python loop over the same formulas, rows into lists."""
    model, hw, dt = spec.models[0], spec.hardware[0], spec.dtypes[0]
    roof = Roof.of(hw, dt)
    rows = {
        k: []
        for k in (
            "batch",
            "seq_len",
            "phase",
            "op",
            "flops",
            "bytes",
            "intensity",
            "attainable_flops",
            "time_s",
            "achieved_time_s",
            "achieved_flops",
            "bound",
        )
    }
    start = time.perf_counter()
    done = 0
    for phase in spec.phases:
        for b in spec.batch:
            for s in spec.seq_len:
                if done >= limit:
                    break
                step = make_step(Shape.of(model, dt, phase=phase, batch=b, seq_len=s))
                for op, f, by in op_costs(step):
                    row = op_row(op, step, f, by, roof)
                    for key, value in (
                        ("batch", b),
                        ("seq_len", s),
                        ("phase", phase),
                        ("op", op.name),
                        ("flops", f),
                        ("bytes", by),
                        ("intensity", row.intensity),
                        ("attainable_flops", row.attainable_flops),
                        ("time_s", row.time_s),
                        ("achieved_time_s", row.achieved_time_s),
                        ("achieved_flops", row.achieved_flops),
                        ("bound", BOUNDS[row.bound]),
                    ):
                        rows[key].append(value)
                done += 1
    frame = pl.DataFrame(rows)
    return frame.height, time.perf_counter() - start


def numpy_broadcast(spec: rooflax.SweepSpec) -> pl.DataFrame:
    """The same formulas on numpy arrays broadcast over the grid, then the same frame."""
    model, hw, dt = spec.models[0], spec.hardware[0], spec.dtypes[0]
    peak, bw = hw.peak(dt.compute), hw.bandwidth_bytes_per_s
    ops_schema, _ = schemas(spec)
    grid = (len(spec.batch), len(spec.seq_len))
    b = np.broadcast_to(np.asarray(spec.batch, np.float64)[:, None], grid)
    s = np.broadcast_to(np.asarray(spec.seq_len, np.float64)[None, :], grid)
    frames = []
    roof = Roof.of(hw, dt)
    for phase in spec.phases:
        step = make_step(Shape.of(model, dt, phase=phase, batch=b, seq_len=s))
        costs = op_costs(step)
        ops = [c[0] for c in costs]
        flops = np.stack([np.broadcast_to(c[1], grid) for c in costs], axis=-1).reshape(-1)
        bytes_ = np.stack([np.broadcast_to(c[2], grid) for c in costs], axis=-1).reshape(-1)
        achieved = np.stack(
            [np.broadcast_to(op_achieved_time(op, step, f, by, roof, xp=np), grid) for op, f, by in costs], axis=-1
        ).reshape(-1)
        n, n_ops = flops.size, len(ops)
        batch = np.broadcast_to(np.asarray(spec.batch)[:, None], grid).reshape(-1)
        seq_len = np.broadcast_to(np.asarray(spec.seq_len)[None, :], grid).reshape(-1)
        coords = {
            "batch": np.repeat(batch, n_ops),
            "seq_len": np.repeat(seq_len, n_ops),
            "hidden": np.full(n, model.hidden, np.int64),
            **{degree: np.ones(n, np.int64) for degree in ("tp", "pp", "ep")},
        }
        codes = np.tile(np.array([OP_NAMES.index(o.name) for o in ops], np.uint32), n // n_ops)
        groups = np.tile(np.array([GROUPS.index(o.group) for o in ops], np.uint32), n // n_ops)
        frames.append(
            pl.DataFrame(
                {
                    "model": pl.repeat(model.name, n, dtype=ops_schema["model"], eager=True),
                    "hardware": pl.repeat(hw.name, n, dtype=ops_schema["hardware"], eager=True),
                    "dtype": pl.repeat(dt.name, n, dtype=ops_schema["dtype"], eager=True),
                    **coords,
                    "spec_k": pl.repeat(None, n, dtype=pl.Int64, eager=True),
                    "phase": pl.repeat(phase, n, dtype=PHASE, eager=True),
                    "op": pl.Series(codes).cat.to(OP),
                    "group": pl.Series(groups).cat.to(GROUP),
                    "flops": flops,
                    "bytes": bytes_,
                    "intensity": flops / bytes_,
                    "attainable_flops": np.minimum(peak, bw * (flops / bytes_)),
                    "time_s": np.maximum(flops / peak, bytes_ / bw),
                    "achieved_flops": flops / achieved,
                    "achieved_time_s": achieved,
                    "bound": pl.select(
                        pl.when(pl.Series(flops * bw >= peak * bytes_))
                        .then(pl.lit("compute", BOUND))
                        .otherwise(pl.lit("memory", BOUND))
                    ).to_series(),
                },
                schema=ops_schema,
            )
        )
    return pl.concat(frames, rechunk=False)


def copy_floor(nbytes: int, runs: int) -> tuple[float, float]:
    """Seconds to copy ``nbytes`` into fresh memory (what any new frame costs) and into warm memory."""
    src = np.ones(nbytes // 8)
    fresh = best_of(lambda: np.copy(src), runs)
    dst = np.empty_like(src)
    np.copyto(dst, src)
    warm = best_of(lambda: np.copyto(dst, src), runs)
    return fresh, warm


# Peak RSS is the child's own VmHWM: ru_maxrss would carry the parent's peak across fork and exec.
CHILD = """
import json, sys, time, rooflax
start = time.perf_counter()
out = rooflax.sweep_to_parquet(sys.argv[1], sys.argv[2], progress=sys.argv[3] == "1")
seconds = time.perf_counter() - start
spec = rooflax.load_spec(sys.argv[1])
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"rows": spec.rows(), "seconds": seconds, "max_rss_bytes": hwm * 1024}))
"""


def streamed_rss(spec_text: str, folder: str, progress: bool) -> dict:
    """Run a streamed sweep in a fresh process and report its rows, time and peak RSS."""
    spec_path = os.path.join(folder, "spec.toml")
    with open(spec_path, "w") as f:
        f.write(spec_text)
    out = os.path.join(folder, "ds")
    result = subprocess.run(
        [sys.executable, "-c", CHILD, spec_path, out, "1" if progress else "0"],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    shutil.rmtree(out)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller grids and no 10^9-row run")
    parser.add_argument("--runs", type=int, default=5, help="repeats for best-of timings")
    parser.add_argument("--workdir", default=None, help="where streamed datasets go (default: a temp folder)")
    args = parser.parse_args()
    spec = grid(args.quick)
    rows = spec.rows()
    print(
        f"grid: llama-13b on a40, batch 1..1024 × {len(spec.seq_len)} seq_len × prefill+decode × 15 ops "
        f"= {rows:,} op rows; JAX devices: {len(__import__('jax').local_devices())}"
    )

    first = best_of(lambda: rooflax.sweep(spec), 1)
    steady = best_of(lambda: rooflax.sweep(spec), args.runs)
    frame = rooflax.sweep(spec)
    nbytes = frame.estimated_size()
    del frame
    print(f"\nrooflax.sweep -> in-memory frame ({nbytes / rows:.0f} B/row, {nbytes / 2**30:.2f} GiB)")
    print(f"  first call (compile + run): {first:.3f} s; compile ≈ {first - steady:.3f} s")
    print(f"  steady state: {steady:.3f} s = {rows / steady / 1e6:.1f} M rows/s")

    loop_rows, loop_s = python_loop(spec, limit=2000)
    loop_rate = loop_rows / loop_s
    numpy_s = best_of(lambda: numpy_broadcast(spec), max(2, args.runs // 2))
    fresh, warm = copy_floor(nbytes, args.runs)
    print("\nbaselines on the same grid")
    print(
        f"  Python loop (per configuration, {loop_rows:,} rows timed): {loop_rate / 1e6:.3f} M rows/s "
        f"-> rooflax is {rows / steady / loop_rate:,.0f}×"
    )
    print(
        f"  numpy broadcasting (same formulas, same frame): {numpy_s:.3f} s = {rows / numpy_s / 1e6:.1f} M rows/s "
        f"-> rooflax is {numpy_s / steady:.2f}×"
    )
    print(
        f"  copy floor, fresh memory: {fresh:.3f} s = {rows / fresh / 1e6:.1f} M rows/s "
        f"-> rooflax takes {steady / fresh:.2f}× the floor"
    )
    print(
        f"  copy floor, warm memory:  {warm:.3f} s = {rows / warm / 1e6:.1f} M rows/s "
        f"-> rooflax takes {steady / warm:.2f}× the floor"
    )

    workdir = args.workdir or tempfile.mkdtemp(prefix="rooflax-bench-")
    print("\nrooflax.sweep_to_parquet (streamed dataset, same grid)")
    out = os.path.join(workdir, "stream")
    for compression, statistics in (("lz4", True), ("lz4", False), ("snappy", True), ("uncompressed", False)):
        seconds = best_of(
            lambda c=compression, s=statistics: rooflax.sweep_to_parquet(
                spec, out, overwrite=True, compression=c, statistics=s
            ),
            max(1, args.runs // 2),
        )
        size = sum(e.stat().st_size for e in os.scandir(out))
        stats = "on " if statistics else "off"
        print(
            f"  {compression:>12}, statistics {stats}: {rows / seconds / 1e6:5.1f} M rows/s, "
            f"{size / rows:.1f} B/row on disk"
        )
        shutil.rmtree(out)

    print("\npeak RSS of streamed sweeps (fresh processes, default options)")
    small = (
        'model = "llama-13b"\nphases = ["prefill", "decode"]\n[axes]\n'
        "batch = { start = 1, stop = 1024, step = 1 }\nseq_len = { start = 32, stop = 20864, step = 32 }\n"
    )
    results = [("10^7", streamed_rss(small, workdir, progress=False))]
    if not args.quick:
        with open(os.path.join(os.path.dirname(__file__), "..", "sweeps", "benchmark_large.toml")) as f:
            results.append(("10^9", streamed_rss(f.read(), workdir, progress=True)))
    for label, r in results:
        print(
            f"  {label}: {r['rows']:,} rows in {r['seconds']:.1f} s ({r['rows'] / r['seconds'] / 1e6:.1f} M rows/s), "
            f"peak RSS {r['max_rss_bytes'] / 2**20:.0f} MiB"
        )
    if len(results) == 2:
        print(f"  peak RSS 10^9 / 10^7 = {results[1][1]['max_rss_bytes'] / results[0][1]['max_rss_bytes']:.2f}")
    print(f"\nthis process: peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10:.0f} MiB")
    if not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
