"""Issue-13 figures, each beside its baseline from the same run: summary and long sweeps, streaming, processes.

Run from the repository root::

    python benchmarks/bench_scale.py            # 2.6·10^5-configuration summary, 10^7/10^8-row RSS, 1-3 processes
    python benchmarks/bench_scale.py --quick    # smaller grids, no 10^8-row run

Printed, in order:

1. summary sweep (Llama-13B on the A40, prefill + decode) in configurations/s, first call
   and steady state, against the per-configuration Python loop over the same formulas
   (:func:`rooflax.evaluate` per configuration and phase: what LLM-Viewer does);
2. the long frame in rows/s against the fresh-memory floor (the time to write the same
   bytes into fresh numpy memory);
3. the streamed parquet dataset (lz4, statistics on) in rows/s against the same floor;
4. peak RSS of streamed sweeps of 10^7 and 10^8 rows (fresh child processes);
5. one streamed sweep on 1, 2 and 3 local processes (JAX distributed runtime), wall time
   from launch (imports and runtime start included) and the sweep's own time.

Helpers shared with ``bench_sweep.py`` (best-of timing, copy floor, child RSS) are
imported from it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

from bench_sweep import best_of, copy_floor, streamed_rss

import rooflax

LOAD = 'model = "llama-13b"\nhardware = "a40"\nphases = ["prefill", "decode"]\n[axes]\n'


def spec_text(batch: int, seq_stop: int) -> str:
    """Llama-13B/A40 prefill + decode over batch 1..``batch`` × seq_len 32..``seq_stop`` step 32."""
    return (
        LOAD + f"batch = {{ start = 1, stop = {batch}, step = 1 }}\n"
        f"seq_len = {{ start = 32, stop = {seq_stop}, step = 32 }}\n"
    )


def per_configuration(spec: rooflax.SweepSpec, limit: int) -> tuple[int, float]:
    """Configurations (× phase) evaluated one at a time in Python, as per-configuration tools do."""
    start, done = time.perf_counter(), 0
    for phase in spec.phases:
        for b in spec.batch:
            for s in spec.seq_len:
                if done >= limit:
                    return done, time.perf_counter() - start
                rooflax.evaluate(model="llama-13b", hardware="a40", phase=phase, batch=b, seq_len=s)
                done += 1
    return done, time.perf_counter() - start


# One process of a multi-process run: prints the seconds its sweep call took (imports excluded).
CHILD = """
import json, sys, time
import rooflax
job = json.loads(sys.argv[1])
start = time.perf_counter()
rooflax.sweep_to_parquet(job["spec"], job["out"], **job["run"])
print(json.dumps({"seconds": time.perf_counter() - start}))
"""


def processes(spec_path: str, out: str, n: int) -> tuple[float, float]:
    """Wall seconds from launch to the last exit, and the slowest process's sweep seconds."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        coordinator = f"127.0.0.1:{s.getsockname()[1]}"
    runs = [{} if n == 1 else {"coordinator": coordinator, "num_processes": n, "process_id": i} for i in range(n)]
    start = time.perf_counter()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, json.dumps({"spec": spec_path, "out": out, "run": r})],
            stdout=subprocess.PIPE,
            text=True,
        )
        for r in runs
    ]
    outputs = [p.communicate(timeout=1800)[0] for p in procs]
    wall = time.perf_counter() - start
    if any(p.returncode for p in procs):
        raise SystemExit(f"a process of the {n}-process run failed")
    shutil.rmtree(out)
    return wall, max(json.loads(o.strip().splitlines()[-1])["seconds"] for o in outputs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller grids, no 10^8-row run")
    parser.add_argument("--runs", type=int, default=5, help="repeats for best-of timings")
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    work = tempfile.mkdtemp(prefix="rooflax-scale-")
    try:
        batch, seq_stop = (256, 8192) if args.quick else (512, 16384)
        path = os.path.join(work, "grid.toml")
        with open(path, "w") as f:
            f.write(spec_text(batch, seq_stop))
        spec = rooflax.load_spec(path)
        configs, rows = spec.configurations(), spec.rows()

        print(f"\n1. summary sweep: Llama-13B/A40, prefill + decode, {configs:,} configurations × phases")
        first = best_of(lambda: rooflax.sweep(spec, summary=True), 1)
        early = best_of(lambda: rooflax.sweep(spec, summary=True), args.runs)
        steady = best_of(lambda: rooflax.sweep(spec, summary=True), args.runs)  # after runs warm-up calls
        loop_n, loop_s = per_configuration(spec, limit=2000 if args.quick else 5000)
        loop = loop_n / loop_s
        print(f"  per-configuration Python loop (rooflax.evaluate, {loop_n:,} timed): {loop:,.0f} configurations/s")
        print(
            f"  rooflax, first call (compile + run): {configs / first / 1e6:.2f} M configurations/s "
            f"({configs / first / loop:,.0f}× the loop)"
        )
        print(
            f"  rooflax, best of the {args.runs} calls after it: {configs / early / 1e6:.2f} M configurations/s "
            f"({configs / early / loop:,.0f}× the loop)"
        )
        print(
            f"  rooflax, steady state (best of {args.runs} more): {configs / steady / 1e6:.2f} M configurations/s "
            f"({configs / steady / loop:,.0f}× the loop; target 1000× ≈ 14 M/s)"
        )

        print(f"\n2. long frame: {rows:,} op rows")
        best_of(lambda: rooflax.sweep(spec), 1)  # compile
        early = best_of(lambda: rooflax.sweep(spec), args.runs)
        long_s = best_of(lambda: rooflax.sweep(spec), args.runs)  # after runs warm-up calls
        frame = rooflax.sweep(spec)
        nbytes = frame.estimated_size()
        del frame
        fresh, warm = copy_floor(nbytes, args.runs)
        print(
            f"  fresh-memory floor ({nbytes / rows:.0f} B/row, {nbytes / 2**30:.2f} GiB): "
            f"{rows / fresh / 1e6:.1f} M rows/s (warm memory: {rows / warm / 1e6:.1f} M rows/s)"
        )
        print(
            f"  rooflax.sweep, best of the {args.runs} calls after compiling: {rows / early / 1e6:.1f} M rows/s = "
            f"{early / fresh:.2f}× the floor"
        )
        print(
            f"  rooflax.sweep, steady state (best of {args.runs} more): {rows / long_s / 1e6:.1f} M rows/s = "
            f"{long_s / fresh:.2f}× the floor (target ≤ 1.5×)"
        )

        print("\n3. streamed parquet (lz4, statistics on), same grid")
        out = os.path.join(work, "stream")
        stream_s = best_of(lambda: rooflax.sweep_to_parquet(spec, out, overwrite=True), max(1, args.runs // 2))
        disk = sum(e.stat().st_size for e in os.scandir(out))
        shutil.rmtree(out)
        print(
            f"  {rows / stream_s / 1e6:.1f} M rows/s ({disk / rows:.1f} B/row on disk) = {stream_s / fresh:.2f}× "
            "the in-memory floor (target ≥ 20 M rows/s)"
        )

        print("\n4. peak RSS of streamed sweeps (fresh processes, default options)")
        sizes = [("10^7", spec_text(512, 20864))] + ([] if args.quick else [("10^8", spec_text(1024, 104320))])
        results = [(label, streamed_rss(text, work, progress=False)) for label, text in sizes]
        for label, r in results:
            print(
                f"  {label}: {r['rows']:,} rows in {r['seconds']:.1f} s ({r['rows'] / r['seconds'] / 1e6:.1f} M "
                f"rows/s), peak RSS {r['max_rss_bytes'] / 2**20:.0f} MiB"
            )
        if len(results) == 2:
            ratio = results[1][1]["max_rss_bytes"] / results[0][1]["max_rss_bytes"]
            print(f"  peak RSS 10^8 / 10^7 = {ratio:.2f} (target ≤ 1.2)")

        grid = spec_text(256, 20864) if args.quick else spec_text(512, 20864)
        with open(path, "w") as f:
            f.write(grid)
        many = rooflax.load_spec(path).rows()
        print(f"\n5. one streamed sweep of {many:,} rows on 1, 2 and 3 local processes ({os.cpu_count()} cores)")
        base = None
        for n in (1, 2, 3):
            wall, sweep_s = processes(path, os.path.join(work, f"mp{n}"), n)
            base = base or (wall, sweep_s)
            print(
                f"  {n} process{'es' if n > 1 else '  '}: wall {wall:5.1f} s ({many / wall / 1e6:4.1f} M rows/s, "
                f"{base[0] / wall:.2f}× one), slowest sweep call {sweep_s:5.1f} s ({base[1] / sweep_s:.2f}× one)"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nload average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
