"""Calibration on this machine: fit the achieved terms on half the validation points, predict the rest.

Run from the repository root::

    python benchmarks/bench_calibration.py            # 18 grid points of Toy Llama, fp32, on the CPU
    python benchmarks/bench_calibration.py --quick    # 8 points, fewer repeats

It times the real products of Toy Llama (decode across batch and context, prefill across
length and batch; each product takes from tens of microseconds to tens of milliseconds on a
laptop CPU) with ``rooflax.validate.validate``, fits the achieved terms as ``rooflax validate
--profile`` does (``rooflax.validate.calibrate``: ``rooflax calibrate``'s ``fit_hardware`` on the
timings) on half the grid points (``split_by_shape``), predicts the other half, and prints the
median and 90th-percentile relative error of the predicted time against the measured one:

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
from rooflax.calibration.fit import split_by_shape
from rooflax.calibration.measurements import validation_measurements
from rooflax.calibration.predict import predict_measurements
from rooflax.config.models import get_model
from rooflax.validate import calibrate, validate


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
    profile = result.profile
    train, test = split_by_shape(result.frame)  # whole grid points held out
    default = predict_measurements(validation_measurements(test, profile.name), profile)
    measured = default.get_column("measured_time_s").to_numpy()
    errors = {
        "ideal": np.abs(default.get_column("ideal_time_s").to_numpy() / measured - 1),
        "default": np.abs(default.get_column("error").to_numpy()),
        "calibrated": np.abs(
            predict_measurements(validation_measurements(test, profile.name), calibrate(train, profile))
            .get_column("error")
            .to_numpy()
        ),
    }
    print(
        f"device: {result.device.kind}; measured {profile.peak('fp32') / 1e9:.1f} GFLOP/s fp32 matmul, "
        f"{profile.bandwidth_bytes_per_s / 1e9:.1f} GB/s copy; timer check {result.timer_ratio:.2f}"
    )
    print(
        f"{len(grid)} grid points × 7 products = {result.frame.height} timed ops in {seconds:.0f} s; "
        f"fit on {train.height} ops, errors on the other {test.height} (whole shapes held out)"
    )
    rows = tuple(
        (label, f"{np.median(errors[name]):.1%}", f"{np.quantile(errors[name], 0.9):.1%}")
        for name, label in (("ideal", "ideal roof"), ("default", "default terms"), ("calibrated", "calibrated"))
    )
    print(Table(title="", header=("prediction", "median", "p90"), rows=rows, numeric=(False, True, True)).text())


if __name__ == "__main__":
    main()
