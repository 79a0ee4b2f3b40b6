"""``rooflax validate``: flags in, files and a summary table out."""

from __future__ import annotations

import sys
from pathlib import Path

from rooflax.answers.tables import Table, show
from rooflax.data._atomic import write_output
from rooflax.errors import SpecError

__all__ = ["run_validate"]


def summary_table(frame) -> Table:
    """Per phase and op group: measured time against the ideal roof, and the achieved model's error.

    ``median``, ``min``, ``max``: ideal time at the measured ceilings over measured time;
    ``vs datasheet``: the same at the datasheet's; ``achieved err`` and ``calibrated err``:
    median relative error of the achieved model's time before and after calibration.
    """
    import polars as pl

    def error(column: str) -> pl.Expr:
        return (pl.col(column) / pl.col("measured_time_s") - 1).abs().median()

    table = frame.group_by("phase", "group", maintain_order=True).agg(
        pl.len().alias("ops"),
        pl.col("efficiency").median().alias("median"),
        pl.col("efficiency").min().alias("min"),
        pl.col("efficiency").max().alias("max"),
        pl.col("datasheet_efficiency").median().alias("datasheet"),
        error("predicted_achieved_time_s").alias("before"),
        error("calibrated_time_s").alias("after"),
    )
    header = ("phase", "group", "ops", "median", "min", "max", "vs datasheet", "achieved err", "calibrated err")
    rows = tuple(
        (
            r["phase"],
            r["group"],
            str(r["ops"]),
            *(f"{r[key]:.1%}" for key in ("median", "min", "max")),
            "-" if r["datasheet"] is None else f"{r['datasheet']:.1%}",
            f"{r['before']:.1%}",
            f"{r['after']:.1%}",
        )
        for r in table.iter_rows(named=True)
    )
    return Table(title="", header=header, rows=rows, numeric=(False, False) + (True,) * (len(header) - 2))


def raised_ceilings(measured, calibrated) -> list[str]:
    """Where the calibrated profile's ceilings exceed the measured ones, one line each.

    Calibration raises a ceiling the timed ops beat (:func:`rooflax.validate.run.calibrate`): on the
    CPU the decode matvecs read memory many times faster than XLA's one-thread copy.
    """
    lines = []
    pairs = [
        ("bandwidth_bytes_per_s", calibrated.bandwidth_bytes_per_s, measured.bandwidth_bytes_per_s, "GB/s", 1e9, "copy")
    ]
    pairs += [
        (f"peak_flops.{dtype}", peak, measured.peak(dtype), "TFLOP/s", 1e12, f"{dtype} matmul")
        for dtype, peak in calibrated.peak_flops
        if dtype in measured.dtypes
    ]
    for key, profile, ceiling, unit, scale, what in pairs:
        if profile > ceiling:
            lines.append(
                f"{key} = {profile / scale:.4g} {unit} is {profile / ceiling:.3g}× the measured {what} "
                f"({ceiling / scale:.4g} {unit}): the timed ops ran faster than it, so the fit raised the "
                "ceiling to the fastest rate they reached (rooflax.validate.run.calibrate)"
            )
    return lines


def run_validate(args) -> int:
    """The body of ``rooflax validate``: every output is checked before anything is timed."""
    from rooflax import plot
    from rooflax.config.hardware import hardware_to_toml
    from rooflax.config.spec import load_spec
    from rooflax.data._atomic import output_file
    from rooflax.plot.files import chart_path
    from rooflax.plot.measured import validation_path, write_validation
    from rooflax.validate.run import DEFAULT_POINTS, points_from_spec, spec_dtype, spread_points, validate

    output = validation_path(args.output, overwrite=args.overwrite, field="-o/--output")
    chart = profile = None
    if args.plot:
        chart = chart_path(args.plot, overwrite=args.overwrite, field="--plot")
    if args.profile:
        profile = output_file(args.profile, "--profile", suffixes=(".toml",), overwrite=args.overwrite)
    named = [p for p in (output, chart, profile) if p is not None]
    if len(set(map(Path.resolve, named))) < len(named):
        raise SpecError(f"-o/--output, --plot, --profile: name different files (given {', '.join(map(str, named))})")

    def say(line: str) -> None:
        if not args.quiet:
            print(line, file=sys.stderr, flush=True)

    dtype = args.dtype
    if args.spec:
        spec = load_spec(args.spec)
        model, points = points_from_spec(spec, args.max_points)
        dtype, note = spec_dtype(spec, args.dtype)
        if note:
            say(note)
    else:
        model, points = None, spread_points(DEFAULT_POINTS, args.max_points)
    result = validate(
        model=model,
        points=points,
        dtype=dtype,
        repeats=args.repeats,
        require_accelerator=args.require_accelerator,
        quick=args.quick,
        skip_unfit=args.skip_unfit,
        progress=say,
    )
    write_validation(
        result.frame,
        output,
        profile=result.profile,
        calibrated=result.calibrated,
        timer_ratio=result.timer_ratio,
        overwrite=True,
        field="-o/--output",
    )
    if chart is not None:
        plot.save(
            plot.measured(result.frame, result.profile, datasheet=result.device.preset),
            chart,
            overwrite=args.overwrite,
            field="--plot",
        )
    raised = raised_ceilings(result.profile, result.calibrated)
    if profile is not None:
        comments = "".join(f"# {line}\n" for line in raised)
        write_output(profile, lambda tmp: tmp.write_text(comments + hardware_to_toml(result.calibrated)), "--profile")
    if not args.quiet:
        notes = [f"note: profile {line}" for line in raised]
        show([summary_table(result.frame), *notes, f"wrote {', '.join(map(str, named))}"])
    return 0
