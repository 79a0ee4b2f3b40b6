"""Calibration on this machine: fit the achieved terms on half the validation points, predict the rest.

Run from the repository root::

    python benchmarks/bench_calibration.py            # 18 grid points of Toy Llama, fp32, on the CPU
    python benchmarks/bench_calibration.py --quick    # 8 points, fewer repeats

It times the real products of Toy Llama (decode across batch and context, prefill across
length and batch; each product takes from tens of microseconds to tens of milliseconds on a
laptop CPU) with ``rooflax.validate.validate``, fits overhead and efficiencies per op group
(``fit_terms``) on the even grid points, predicts the odd ones, and prints the median and
90th-percentile relative error of the predicted time against the measured one:

- ``ideal roof``: ``max(flops / peak, bytes / bandwidth)`` at the measured ceilings, the
  datasheet-style prediction every point of a roofline chart sits on;
- ``default terms``: the achieved model at the measured ceilings with the default overhead
  and efficiencies (before calibration);
- ``calibrated``: the achieved model with the terms fitted on the other half.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from rooflax.answers.tables import Table
from rooflax.config.models import get_model
from rooflax.validate import validate
from rooflax.validate.calibrate import holdout_errors


def points(quick: bool) -> tuple:
    """Grid points, decode and prefill interleaved so that both halves span both phases."""
    if quick:
        decode = [("decode", b, s, None) for b in (1, 16, 64) for s in (256, 2048)]
        prefill = [("prefill", b, s, None) for b, s in ((1, 256), (2, 512))]
    else:
        decode = [("decode", b, s, None) for b in (1, 4, 16, 64) for s in (256, 1024, 4096)]
        prefill = [("prefill", b, s, None) for b in (1, 4) for s in (128, 256, 512)]
    mixed = []
    while decode or prefill:
        mixed += decode[:2] + prefill[:1]
        decode, prefill = decode[2:], prefill[1:]
    return tuple(mixed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer points and repeats")
    args = parser.parse_args()
    grid = points(args.quick)
    start = time.perf_counter()
    result = validate(
        model=get_model("toy-llama"),
        points=grid,
        dtype="fp32",
        repeats=3 if args.quick else 5,
        matmul_n=1024,
        copy_bytes=2**27,
        rotate_bytes=2**25,
    )
    seconds = time.perf_counter() - start
    errors = holdout_errors(result.frame, result.profile, "fp32")
    profile = result.profile
    print(
        f"device: {result.device.kind}; measured {profile.peak('fp32') / 1e9:.1f} GFLOP/s fp32 matmul, "
        f"{profile.bandwidth_bytes_per_s / 1e9:.1f} GB/s copy; timer check {result.timer_ratio:.2f}"
    )
    print(
        f"{len(grid)} grid points × 7 products = {result.frame.height} timed ops in {seconds:.0f} s; "
        f"fit on {(len(grid) + 1) // 2} points, errors on the other {len(grid) // 2} "
        f"({len(errors['calibrated'])} ops)"
    )
    rows = tuple(
        (label, f"{np.median(errors[name]):.1%}", f"{np.quantile(errors[name], 0.9):.1%}")
        for name, label in (("ideal", "ideal roof"), ("default", "default terms"), ("calibrated", "calibrated"))
    )
    print(Table(title="", header=("prediction", "median", "p90"), rows=rows, numeric=(False, True, True)).text())


if __name__ == "__main__":
    main()
