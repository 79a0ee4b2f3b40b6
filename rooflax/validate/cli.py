"""``rooflax validate``: flags in, files and a summary table out."""

from __future__ import annotations

import sys
from pathlib import Path

from rooflax._atomic import atomic_write
from rooflax.errors import SpecError

__all__ = ["run_validate"]


def summary_table(frame) -> str:
    """Efficiency by phase and op group: median and range of measured time over predicted."""
    import polars as pl

    table = (frame.group_by("phase", "group", maintain_order=True)
             .agg(pl.len().alias("ops"), pl.col("efficiency").median().alias("median"),
                  pl.col("efficiency").min().alias("min"), pl.col("efficiency").max().alias("max"),
                  pl.col("datasheet_efficiency").median().alias("datasheet")))
    lines = [f"{'phase':<9}{'group':<14}{'ops':>4}{'median':>9}{'min':>8}{'max':>8}{'vs datasheet':>14}"]
    for r in table.iter_rows(named=True):
        sheet = "-" if r["datasheet"] is None else f"{r['datasheet']:.1%}"
        lines.append(f"{r['phase']:<9}{r['group']:<14}{r['ops']:>4}{r['median']:>9.1%}{r['min']:>8.1%}"
                     f"{r['max']:>8.1%}{sheet:>14}")
    return "\n".join(lines)


def run_validate(args) -> int:
    """The body of ``rooflax validate``."""
    from rooflax.cli import _atomic_savefig, _chart_format
    from rooflax.hardware import hardware_to_toml
    from rooflax.spec import load_spec
    from rooflax.validate.run import points_from_spec, validate

    output = Path(args.output)
    if output.suffix != ".parquet":
        raise SpecError(f"-o/--output: expected a .parquet file name, got {str(output)!r}")
    if args.plot:
        _chart_format(Path(args.plot))
    if args.profile and not args.profile.endswith(".toml"):
        raise SpecError(f"--profile: expected a .toml file name, got {args.profile!r}")
    model = points = None
    if args.spec:
        model, points = points_from_spec(load_spec(args.spec), args.max_points)

    def say(line: str) -> None:
        if not args.quiet:
            print(line, file=sys.stderr, flush=True)

    result = validate(model=model, points=points, dtype=args.dtype, repeats=args.repeats,
                      require_accelerator=args.require_accelerator, progress=say)
    atomic_write(output, lambda tmp: result.frame.write_parquet(tmp, metadata={
        "rooflax.kind": "validate", "rooflax.profile": hardware_to_toml(result.profile),
        "rooflax.timer_ratio": f"{result.timer_ratio:.4f}"}))
    if args.plot:
        from rooflax import plot

        _atomic_savefig(plot.measured(result.frame, result.profile, datasheet=result.device.preset), Path(args.plot))
    if args.profile:
        atomic_write(Path(args.profile), lambda tmp: tmp.write_text(hardware_to_toml(result.profile)))
    if not args.quiet:
        print(summary_table(result.frame))
        written = [str(output), *(p for p in (args.plot, args.profile) if p)]
        print(f"wrote {', '.join(written)}")
    return 0
