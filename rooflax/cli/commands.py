"""The ``rooflax`` command: each subcommand parses flags and calls one library function.

Bad input prints ``error: …`` on one line and exits with status 2; a real bug still
shows its traceback.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, cast

from rooflax.data._atomic import outside_datasets
from rooflax.errors import RooflaxError, SpecError, close_matches
from rooflax.names import (
    AXES,
    CELL,
    COMPRESSIONS,
    DEFAULT_CHUNK_SIZE,
    DEFAULT_SUMMARY_CHUNK_SIZE,
    FACETS,
    GRID,
    MAX_CHUNK_SIZE,
    PEAK_DTYPES,
)

if TYPE_CHECKING:
    from rooflax.config.spec import SpecKeys

__all__ = ["main"]


def _filter(lf, where: str | None):
    """``lf`` filtered by ``--where`` (:func:`rooflax.data.scan.filter_where`)."""
    from rooflax.data.scan import filter_where

    return filter_where(lf, where, field="--where")


def _cmd_check(args) -> int:
    from rooflax.answers.report import spec_line
    from rooflax.config.spec import SweepSpec
    from rooflax.data.scan import check_dataset

    info = check_dataset(args.dataset, deep=args.deep)
    meta = info.metadata
    parts = f"{len(info.parts)} parts" if len(info.parts) > 1 else f"1 part (part {meta['part']} of {meta['parts']})"
    print(f"ok: {args.dataset}: {info.rows:,} rows in {parts}, {meta['kind']} frame, rooflax {meta['version']}")
    print(f"spec: {spec_line(SweepSpec.from_dict(meta['spec']))}")
    if info.checked == "sha256":
        print(f"checksums: every part's bytes match the SHA-256 recorded when it was written ({len(info.parts)} parts)")
    elif info.checked == "decoded":
        print(
            "checksums: none (written before rooflax recorded them); every page decoded instead, which finds "
            "damaged compressed pages but not every flipped bit"
        )
    return 0


def _cmd_sweep(args) -> int:
    from rooflax.data.dataset import sweep_to_parquet
    from rooflax.engine import distributed

    spec = _spec(args)
    chart = plan = None
    if args.plot:  # everything the chart needs is checked before the sweep runs
        from rooflax.plot.files import chart_path
        from rooflax.plot.plan import plan_chart

        chart = chart_path(args.plot, overwrite=args.overwrite, field="--plot")
        outside_datasets(chart, "--plot", dataset=Path(args.output))
        try:
            plan = plan_chart(spec, summary=args.summary)
        except SpecError as exc:
            raise SpecError(
                f"--plot: {exc}; so leave out --plot, and draw the dataset afterwards with "
                "`rooflax plot` and those options"
            ) from None
    if args.ideal and (plan is None or plan.kind == "map"):
        raise SpecError(
            "--ideal: puts a roofline's points on the roof; give --plot CHART of a long (per-op) sweep (not --summary)"
        )
    out = sweep_to_parquet(
        spec,
        args.output,
        summary=args.summary,
        resume=args.resume,
        overwrite=args.overwrite,
        chunk_size=args.chunk_size,
        compression=args.compression,
        statistics=not args.no_statistics,
        progress=not args.quiet,
        command=args.command_line,
        distributed=args.distributed,
        coordinator=args.coordinator,
        num_processes=args.num_processes,
        process_id=args.process_id,
    )
    if distributed.process_index() != 0:  # process 0 reports and draws for a multi-process sweep
        return 0
    rows = spec.configurations() if args.summary else spec.rows()
    if not args.quiet:
        print(f"wrote {rows:,} rows to {out}/")
        _show_report(out)
    if plan is not None and chart is not None:  # both or neither (--plot)
        _plot(
            str(out),
            chart,
            kind=plan.kind,
            facet=plan.facet,
            quiet=args.quiet,
            overwrite=args.overwrite,
            field="--plot",
            ideal=args.ideal,
        )
    return 0


def _show_report(dataset) -> None:
    """Print what a dataset holds (rooflax.describe): rich tables on a terminal, plain text otherwise."""
    from rooflax.answers.report import describe
    from rooflax.answers.tables import show

    show(describe(dataset).tables())


def _cmd_show(args) -> int:
    _show_report(args.dataset)
    return 0


def _plot(dataset: str, output: Path, *, quiet: bool, overwrite: bool, field: str, **options) -> None:
    """Draw ``dataset`` (:func:`rooflax.plot.draw`) into ``output``, printing the measured points' errors."""
    from rooflax import plot
    from rooflax.answers.tables import show
    from rooflax.plot.measured import error_table

    fig, errors = plot.draw(dataset, **options)
    if errors is not None:
        show([error_table(errors)])
    plot.save(fig, output, overwrite=overwrite, field=field)
    if not quiet:
        print(f"wrote {output}")


#: Flags that only one chart kind reads: given with another kind, they would be ignored.
_MAP_ONLY = ("x", "y", "value", "versus")
_ROOFLINE_ONLY = ("color_by", "connect", "groups", "ideal", "measured", "ridge", "subtitle")


def _cmd_plot(args) -> int:
    for name in _ROOFLINE_ONLY if args.kind == "map" else _MAP_ONLY:
        if getattr(args, name):
            kinds = "--kind map" if name in _MAP_ONLY else "--kind roofline or family"
            raise SpecError(f"--{name.replace('_', '-')}: only read by {kinds}, not --kind {args.kind}")
    from rooflax.plot.files import chart_path

    output = chart_path(args.output, overwrite=args.overwrite, field="-o/--output")
    _plot(
        args.dataset,
        output,
        kind=args.kind,
        quiet=args.quiet,
        overwrite=args.overwrite,
        field="-o/--output",
        where=args.where,
        color_by=args.color_by,
        connect=args.connect,
        facet=args.facet,
        groups=args.groups,
        x=args.x or "batch",
        y=args.y or "seq_len",
        value=args.value,
        versus=args.versus,
        ideal=args.ideal,
        measured=args.measured,
        ridge=args.ridge,
        subtitle=args.subtitle,
    )
    return 0


def _cmd_hardware(args) -> int:
    from rooflax.answers.tables import hardware_table, show
    from rooflax.config.hardware import HARDWARE

    sources = [""] + [f"{hw.name}: {hw.source}" for hw in HARDWARE.values()] if args.verbose else []
    show([hardware_table(HARDWARE.values(), PEAK_DTYPES), *sources])
    return 0


def _cmd_models(args) -> int:
    from rooflax.answers.tables import models_table, show
    from rooflax.config.models import MODELS

    show([models_table(MODELS.values())])
    return 0


def _listed(flag: str, text: str | None, kind: type = str) -> list | None:
    """A comma-separated flag value as a list of names or integers (None when the flag is absent)."""
    if text is None:
        return None
    items = [item.strip() for item in text.split(",")]
    try:
        return [kind(item) for item in items]
    except ValueError:
        raise SpecError(f"{flag}: expected comma-separated integers, got {text!r}") from None


#: Flags that replace a spec's keys, with what they list: the same on every command that takes a spec.
_SPEC_FLAGS = (
    ("model", "model presets or files", str),
    ("hardware", "accelerators", str),
    ("dtype", "dtype policies", str),
    ("phases", "phases (prefill, decode, verify)", str),
    ("batch", "batch sizes", int),
    ("seq_len", "sequence lengths", int),
    ("hidden", "model widths", int),
    ("spec_k", "verify draft lengths", int),
    ("tp", "tensor-parallel degrees", int),
    ("pp", "pipeline-parallel degrees", int),
    ("ep", "expert-parallel degrees", int),
)


def _add_spec_flags(p: argparse.ArgumentParser, *, skip: tuple[str, ...] = ()) -> None:
    """The flags of :data:`_SPEC_FLAGS` (but ``skip``) on a subcommand."""
    for name, what, _ in _SPEC_FLAGS:
        if name in skip:
            continue
        p.add_argument(
            f"--{name.replace('_', '-')}",
            dest=name,
            metavar="A,B",
            help=f"{what}, comma-separated, in place of the spec's",
        )


def _spec_keys(args) -> dict:
    """The spec keys the flags of :data:`_SPEC_FLAGS` give (absent flags left out)."""
    keys = {
        name: _listed(f"--{name.replace('_', '-')}", getattr(args, name, None), kind) for name, _, kind in _SPEC_FLAGS
    }
    return {name: value for name, value in keys.items() if value is not None}


def _spec(args):
    """The spec of a command: its SPEC file (or the reference axes) with the flags' keys in place."""
    from rooflax.data.frames import resolve_spec

    return resolve_spec(args.spec, cast("SpecKeys", _spec_keys(args)), reference_axes=True)


def _add_table_flags(p: argparse.ArgumentParser) -> None:
    """``-o`` (the table as .parquet or .csv), ``--overwrite`` and ``--quiet`` of a command that prints a table."""
    p.add_argument("-o", "--output", help="also write the table (.parquet or .csv)")
    p.add_argument("--overwrite", action="store_true", help="replace OUTPUT (and a chart) if it exists")
    p.add_argument("--quiet", action="store_true", help="print no table or notes")


def _table_output(args) -> Path | None:
    """The checked ``-o`` file of a table command (before any work), or None."""
    from rooflax.answers.tables import table_path

    return None if args.output is None else table_path(args.output, overwrite=args.overwrite, field="--output")


def _write_table(df, output: Path | None, *, quiet: bool) -> None:
    """Write ``df`` to ``output`` (:func:`rooflax.answers.tables.write_table`) and say so."""
    from rooflax.answers.tables import write_table

    if output is None:
        return
    write_table(df, output, overwrite=True, field="--output")
    if not quiet:
        print(f"wrote {df.height:,} rows to {output}")


def _cmd_crossover(args) -> int:
    from rooflax.answers.crossover import crossover, crossover_table

    output = _table_output(args)
    spec = _spec(args)
    given = getattr(args, args.along, None) if args.along in GRID else None
    if given is not None:
        flag = f"--{args.along.replace('_', '-')}"
        raise SpecError(
            f"{flag}: crossover --along {args.along} searches every {args.along} up to 2**40, so "
            f"{flag} {given} is not read; leave {flag} out, or cross another axis"
        )
    df = crossover(spec, along=args.along)
    df = _filter(df.lazy(), args.where).collect()
    if not args.quiet:
        print(crossover_table(df))
    _write_table(df, output, quiet=args.quiet)
    return 0


def _acceptance(args) -> dict | None:
    """The acceptance model of ``--alpha`` or ``--acceptance FILE|PRESET`` (a TOML table or a name), or None."""
    import tomllib

    from rooflax.config._files import read_text

    if args.alpha is not None and args.acceptance is not None:
        raise SpecError("--alpha: give --alpha or --acceptance, not both")
    if args.alpha is not None:
        return {"kind": "geometric", "alpha": args.alpha}
    if args.acceptance is None:
        return None
    if not args.acceptance.strip():
        raise SpecError("--acceptance: expected a TOML file or a preset name, got ''")
    if not Path(args.acceptance).exists() and "/" not in args.acceptance and not args.acceptance.endswith(".toml"):
        return args.acceptance  # a preset name: parse_acceptance checks it, with close matches
    try:
        return tomllib.loads(read_text(Path(args.acceptance), "--acceptance", "a TOML acceptance table"))
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"--acceptance: {args.acceptance} is not valid TOML ({exc})") from None


def _cmd_speculate(args) -> int:
    from rooflax.answers.speculate import (
        best_k,
        check_map_spec,
        choices,
        speculate,
        speculation_table,
        unfit_cells,
    )

    plot = getattr(args, "plot", None)
    if args.overwrite and not plot and args.output is None:
        outputs = "-o or --plot" if hasattr(args, "plot") else "-o"
        raise SpecError(f"--overwrite: given without {outputs}; it only lets {outputs} replace an existing file")
    trees = [{"top_k": _listed("--top-k", t, int)} for t in args.top_k or ()]
    trees += [{"sparse": size} for size in _listed("--sparse-tree", args.sparse_tree, int) or ()]
    chosen = choices(
        args.spec,
        k=_listed("--k", args.k, int),
        tree=trees or None,
        medusa_heads=args.medusa_heads,
        acceptance=_acceptance(args),
        mtp=args.mtp,
        **_spec_keys(args),
    )
    output = _table_output(args)
    chart = None
    if plot:
        check_map_spec(chosen.spec, "--plot")
        from rooflax.plot.files import chart_path

        chart = chart_path(plot, overwrite=args.overwrite, field="--plot")
    df = speculate(
        chosen.spec,
        k=chosen.k,
        tree=trees or None,
        draft_model=args.draft_model,
        medusa_heads=args.medusa_heads,
        shared_lm_head=args.shared_lm_head,
        acceptance=chosen.acceptance,
        mtp=args.mtp,
    )
    from rooflax.answers.extrapolation import extrapolation_notes

    notes = list(chosen.notes)
    notes += extrapolation_notes(chosen.spec.with_keys(phases=["decode"], spec_k=None, tree=None))
    if args.command == "best-k":
        if args.fits:
            unfit = unfit_cells(df)
            if unfit.height:
                shown = "; ".join(
                    f"batch {r['batch']}, seq_len {r['seq_len']} ({r['reason']})"
                    for r in unfit.head(4).iter_rows(named=True)
                )
                more = f"; and {unfit.height - 4} more" if unfit.height > 4 else ""
                notes.append(
                    f"--fits: {unfit.height} of {df.select(CELL).n_unique()} cells have no row, as no round "
                    f"fits in memory there: {shown}{more}"
                )
        df = best_k(df, achieved=args.achieved, fits=args.fits)
    if not args.quiet:
        for note in notes:
            print(f"note: {note}", file=sys.stderr)
        print(speculation_table(df))
    _write_table(df, output, quiet=args.quiet)
    if chart is not None:
        from rooflax.plot import save, speculation_map

        save(speculation_map(df, achieved=args.achieved), chart, overwrite=args.overwrite, field="--plot")
        if not args.quiet:
            print(f"wrote {chart}")
    return 0


def _chunks(text: str | None) -> list[int | None] | None:
    """``--chunk whole,512``: prefill modes (``whole``: whole prompts), or None when absent."""
    if text is None:
        return None
    out: list[int | None] = []
    for item in (part.strip() for part in text.split(",")):
        if item == "whole":
            out.append(None)
            continue
        try:
            out.append(int(item))
        except ValueError:
            raise SpecError(
                f"--chunk: expected 'whole' or prompt tokens per step, comma-separated, got {text!r}"
            ) from None
    return out


def _requests(args) -> list[tuple[int, int, float]] | None:
    """``--requests 2048:512:0.7,8192:256:0.3``: a mix of ``isl:osl:share`` kinds, or None when absent
    (``--isl`` and ``--osl`` then, not both)."""
    if args.requests is None:
        if args.isl is None or args.osl is None:
            raise SpecError("--isl: give --isl and --osl (fixed requests) or --requests (a mix)")
        return None
    if args.isl is not None or args.osl is not None:
        raise SpecError("--requests: give --isl and --osl or --requests, not both")
    kinds = []
    for item in (part.strip() for part in args.requests.split(",")):
        fields = item.split(":")
        try:
            if len(fields) != 3:
                raise ValueError(item)
            kinds.append((int(fields[0]), int(fields[1]), float(fields[2])))
        except ValueError:
            raise SpecError(
                f"--requests: expected comma-separated isl:osl:share kinds (2048:512:0.7,8192:256:0.3), got {item!r}"
            ) from None
    return kinds


def _prices(text: str | None) -> float | dict[str, float] | None:
    """``--gpu-hour-usd``: one price for every accelerator (``2.5``) or one each (``h200=3.8,b200=5.5``)."""
    from rooflax.errors import positive_float

    if text is None:
        return None
    wrong = SpecError(f"--gpu-hour-usd: expected USD or HARDWARE=USD,HARDWARE=USD, got {text!r}")

    def usd(item: str) -> float:
        try:
            return float(item)
        except ValueError:
            raise wrong from None

    if "=" not in text:
        return positive_float("--gpu-hour-usd", usd(text))
    prices: dict[str, float] = {}
    for item in text.split(","):
        name, sep, price = (part.strip() for part in item.partition("="))
        if not (name and sep):
            raise wrong
        if name in prices:
            raise SpecError(f"--gpu-hour-usd: {name} is priced twice in {text!r}")
        prices[name] = positive_float(f"--gpu-hour-usd {name}", usd(price))
    return prices


def _milliseconds(flag: str, value: float | None) -> float | None:
    """A flag in milliseconds as seconds (None when absent); a positive number or a one-line error."""
    from rooflax.errors import positive_float

    return None if value is None else positive_float(flag, value) / 1e3


def _cmd_frontier(args) -> int:
    from rooflax.answers.frontier import frontier, frontier_table
    from rooflax.answers.tables import show
    from rooflax.errors import positive_float

    output = _table_output(args)
    chart = None
    if args.plot:
        from rooflax.plot.files import chart_path

        chart = chart_path(args.plot, overwrite=args.overwrite, field="--plot")
    keys = _spec_keys(args)
    if args.concurrency is not None:
        keys["batch"] = _listed("--concurrency", args.concurrency, int)
    trees = [{"top_k": _listed("--top-k", t, int)} for t in args.top_k or ()]
    mix = _requests(args)
    result = frontier(
        args.spec,
        isl=args.isl,
        osl=args.osl,
        requests=mix,
        gpus=args.gpus,
        ttft=_milliseconds("--ttft-ms", args.ttft_ms),
        tpot=_milliseconds("--tpot-ms", args.tpot_ms),
        chunk=_chunks(args.chunk),
        block_size=args.block_size,
        k=_listed("--k", args.k, int),
        tree=trees or None,
        draft_model=args.draft_model,
        medusa_heads=args.medusa_heads,
        acceptance=_acceptance(args),
        mtp=args.mtp,
        disaggregated=args.disaggregated,
        kv_link_bytes_per_s=None if args.kv_link is None else positive_float("--kv-link", args.kv_link) * 1e9,
        gpu_hour_usd=_prices(args.gpu_hour_usd),
        ideal=args.ideal,
        top=args.top,
        **keys,
    )
    if not args.quiet:
        found = result.configurations
        print(
            f"{result.searched:,} configurations on {args.gpus} GPUs, {found.height:,} feasible, "
            f"{result.pareto.height} on the frontier (tokens/s per GPU against tokens/s per user)"
        )
        show([frontier_table(result), *([result.reason] if result.reason else [])])
    _write_table(result.configurations, output, quiet=args.quiet)
    if chart is not None:
        from rooflax.plot import frontier_chart, save

        save(frontier_chart(result), chart, overwrite=args.overwrite, field="--plot")
        if not args.quiet:
            print(f"wrote {chart}")
    return 0


def _cmd_compare(args) -> int:
    from rooflax.answers.compare import compare, compare_table
    from rooflax.answers.extrapolation import extrapolation_notes
    from rooflax.answers.tables import show
    from rooflax.data.frames import resolve_spec

    output = _table_output(args)
    df = compare(args.spec, a=args.a, b=args.b, **_spec_keys(args))
    if not args.quiet:
        show([compare_table(df)])
        spec = resolve_spec(args.spec, {**_spec_keys(args), "hardware": [args.a, args.b]}, reference_axes=True)
        for note in extrapolation_notes(spec):
            print(f"note: {note}", file=sys.stderr)
    _write_table(df, output, quiet=args.quiet)
    return 0


def _cmd_export(args) -> int:
    from rooflax.data.export import export_dataset

    rows = export_dataset(args.dataset, args.output, overwrite=args.overwrite)
    if not args.quiet:
        print(f"wrote {rows:,} rows to {args.output}")
    return 0


def _cmd_calibrate(args) -> int:
    from rooflax.calibration.fit import calibrate
    from rooflax.calibration.measurements import read_measurements
    from rooflax.config.hardware import hardware_to_toml
    from rooflax.data._atomic import output_file, write_output

    output = output_file(args.output, "-o/--output", suffixes=(".toml",), overwrite=args.overwrite)
    profile = calibrate(read_measurements(args.measurements, hardware=args.hardware), args.hardware)
    write_output(output, lambda tmp: tmp.write_text(hardware_to_toml(profile)), "-o/--output")
    if not args.quiet:
        print(f"wrote {output}: {profile.name}, fitted to {len(args.measurements)} measurement path(s)")
    return 0


def _cmd_accuracy(args) -> int:
    from rooflax.answers.tables import Table, number, show
    from rooflax.calibration.fit import accuracy, calibrate, split_by_shape
    from rooflax.calibration.measurements import read_measurements

    chart = None
    if args.plot:
        from rooflax.plot.files import chart_path

        chart = chart_path(args.plot, overwrite=args.overwrite, field="--plot")
    measured = read_measurements(args.measurements)
    hardware = args.hardware
    if args.held_out:
        train, measured = split_by_shape(measured)
        hardware = {
            name: calibrate(train.filter(hardware=name), args.hardware or name, name=name)
            for name in sorted(set(train["hardware"].to_list()))
        }
    score = accuracy(measured, hardware)
    rows = tuple(
        (
            r["hardware"],
            r["kind"],
            str(r["n"]),
            *(
                number(r[c])
                for c in (
                    "predicted_median",
                    "predicted_p90",
                    "ideal_median",
                    "predicted_p10_ratio",
                    "predicted_p90_ratio",
                    "band_coverage",
                )
            ),
        )
        for r in score.iter_rows(named=True)
    )
    title = "accuracy: |time / measured - 1| per hardware and kind" + (
        " (fitted on half the shapes, scored on the others)" if args.held_out else ""
    )
    header = ("hardware", "kind", "n", "median", "p90", "ideal median", "p10 ratio", "p90 ratio", "in band")
    show([Table(title=title, header=header, rows=rows, numeric=(False, False, *(True,) * 7))])
    if chart is not None:
        from rooflax.calibration.fit import scored_rows
        from rooflax.calibration.predict import predict_measurements
        from rooflax.plot.accuracy import accuracy_chart
        from rooflax.plot.files import save

        save(
            accuracy_chart(predict_measurements(scored_rows(measured), hardware)),
            chart,
            overwrite=args.overwrite,
            field="--plot",
        )
    return 0


def _cmd_validate(args) -> int:
    from rooflax.validate.cli import run_validate

    return run_validate(args)


class _UsageError(SpecError):
    """A command line argparse refuses (unknown flag or subcommand, a value of the wrong type)."""


class _Parser(argparse.ArgumentParser):
    """An argparse parser whose errors are one line (no usage block), with close matches for a bad choice."""

    def error(self, message: str):
        import re

        choice = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if choice:
            hint = close_matches(choice[1], re.findall(r"'([^']*)'", choice[2]))
            message += f"; did you mean {' or '.join(map(repr, hint))}?" if hint else ""
        raise _UsageError(f"{self.prog}: {message}")


def _unknown_flags(parser: argparse.ArgumentParser, command: str, extras: list[str]) -> _UsageError:
    """The error for arguments no flag of ``command`` takes, with the close matches among its flags."""
    # argparse keeps its subcommands in private fields typed loosely (Optional, Iterable): they are set here
    sub = parser._subparsers._group_actions[0].choices[command]  # type: ignore[union-attr, index]
    flags = [flag for flag in sub._option_string_actions if flag.startswith("--") and flag != "--help"]
    hints = []
    for token in extras:
        if token.startswith("-"):
            hints += close_matches(token.split("=")[0], flags)
    hint = f"; did you mean {' or '.join(hints)}?" if hints else f"; see rooflax {command} --help"
    return _UsageError(f"rooflax {command}: unrecognized arguments: {' '.join(extras)}{hint}")


def _parser() -> argparse.ArgumentParser:
    from rooflax._version import __version__

    parser = _Parser(prog="rooflax", description="Roofline analysis of LLM inference.")
    parser.add_argument("--version", action="version", version=f"rooflax {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("sweep", help="evaluate a sweep spec into a parquet dataset")
    p.add_argument("spec", nargs="?", help="sweep spec TOML (default: the Llama-13B/A40 reference sweep)")
    p.add_argument("-o", "--output", default="rooflax-out", help="dataset folder to write (default: rooflax-out)")
    p.add_argument("--summary", action="store_true", help="one row per configuration and phase (model totals)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted sweep from OUTPUT.partial/")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the dataset OUTPUT if it exists, or start over from OUTPUT.partial/",
    )
    p.add_argument(
        "--chunk-size",
        type=int,
        help=f"grid points per part file, 1 to {MAX_CHUNK_SIZE:,} (default "
        f"{DEFAULT_CHUNK_SIZE:,}, with --summary {DEFAULT_SUMMARY_CHUNK_SIZE:,})",
    )
    p.add_argument("--compression", default="lz4", choices=COMPRESSIONS, help="parquet codec (default: lz4)")
    p.add_argument(
        "--no-statistics",
        action="store_true",
        help="write no row-group statistics (faster; scans cannot skip row groups)",
    )
    p.add_argument("--plot", metavar="CHART", help="also draw the chart (.png, .svg or .pdf)")
    p.add_argument("--ideal", action="store_true", help="--plot: points on the roof (ideal), not achieved")
    _add_spec_flags(p)
    p.add_argument("--quiet", action="store_true", help="no size estimate, progress, messages or report")
    p.add_argument(
        "--distributed",
        action="store_true",
        help="one sweep over many processes (JAX distributed runtime; cluster detected: SLURM, Open MPI)",
    )
    p.add_argument("--coordinator", metavar="HOST:PORT", help="process 0's address (implies --distributed)")
    p.add_argument("--num-processes", type=int, metavar="N", help="processes in a --coordinator run")
    p.add_argument("--process-id", type=int, metavar="I", help="this process, 0 to N-1, in a --coordinator run")
    p.set_defaults(run=_cmd_sweep)

    p = sub.add_parser("plot", help="draw a chart of a dataset")
    p.add_argument("dataset", help="dataset folder or parquet file written by rooflax")
    p.add_argument("-o", "--output", required=True, help="chart file (.png, .svg or .pdf)")
    p.add_argument("--overwrite", action="store_true", help="replace the chart file if it exists")
    p.add_argument("--kind", default="roofline", choices=("roofline", "family", "map"), help="chart kind")
    p.add_argument("--color-by", choices=AXES, help="colour points by an axis")
    p.add_argument("--connect", choices=AXES, help="join points along an axis")
    p.add_argument("--facet", choices=FACETS, help="one panel per value (maps: hardware, dtype or model)")
    p.add_argument("--groups", nargs="+", help="op groups to draw (default: the matmul groups)")
    p.add_argument("--where", metavar="EXPR", help="SQL filter, e.g. \"phase = 'decode' AND batch >= 8\"")
    p.add_argument("--x", help="map: horizontal axis (default: batch)")
    p.add_argument("--y", help="map: vertical axis (default: seq_len)")
    p.add_argument("--value", help="map: bound, attainable_flops, time_s, tokens_per_s, fits_in_memory, ...")
    p.add_argument("--versus", metavar="DATASET", help="map: ratio of this dataset's value to another's")
    p.add_argument("--ideal", action="store_true", help="roofline: points on the roof (ideal), not achieved")
    p.add_argument("--ridge", action="store_true", help="roofline: mark the ridge (circle, dotted line, 'ridge N')")
    p.add_argument(
        "--subtitle",
        action="store_true",
        help="roofline: a line under the title saying what was swept and how points sit",
    )
    p.add_argument(
        "--measured",
        metavar="PARQUET",
        help="roofline: measured points of a validation result over the achieved points of the same "
        "configurations; prints the median error per op group",
    )
    p.add_argument("--quiet", action="store_true", help="no messages")
    p.set_defaults(run=_cmd_plot)

    p = sub.add_parser("check", help="check that a dataset is whole (every part present, readable, of one sweep)")
    p.add_argument("dataset", help="dataset folder or parquet part file written by rooflax")
    p.add_argument(
        "--deep",
        action="store_true",
        help="also compare every part's bytes with the checksum recorded when it was written (reads the whole dataset)",
    )
    p.set_defaults(run=_cmd_check)

    p = sub.add_parser("show", help="say what a dataset found: bound shares, crossovers, tokens/s, memory")
    p.add_argument("dataset", help="dataset folder or parquet part file written by rooflax")
    p.set_defaults(run=_cmd_show)

    p = sub.add_parser("export", help="write a dataset as CSV or NDJSON (streamed)")
    p.add_argument("dataset", help="dataset folder or parquet part file written by rooflax")
    p.add_argument("-o", "--output", required=True, help="file to write (.csv or .ndjson)")
    p.add_argument("--overwrite", action="store_true", help="replace OUTPUT if it exists")
    p.add_argument("--quiet", action="store_true", help="no message")
    p.set_defaults(run=_cmd_export)

    p = sub.add_parser("hardware", help="list accelerator presets and their figures")
    p.add_argument("-v", "--verbose", action="store_true", help="also print each preset's source")
    p.set_defaults(run=_cmd_hardware)
    p = sub.add_parser("models", help="list model presets")
    p.set_defaults(run=_cmd_models)

    p = sub.add_parser("crossover", help="the smallest batch, seq_len or hidden at which each op is compute-bound")
    p.add_argument("spec", nargs="?", help="sweep spec TOML (default: the reference sweep's axes)")
    p.add_argument("--along", default="batch", help="axis to cross: batch (default), seq_len or hidden")
    _add_spec_flags(p)
    p.add_argument("--where", metavar="EXPR", help="SQL filter on the result, e.g. \"op = 'up_proj'\"")
    _add_table_flags(p)
    p.set_defaults(run=_cmd_crossover)

    for name, text in (
        (
            "speculate",
            "speculative decoding: tokens per round, round time, effective tokens/s, "
            "speedup per grid point and draft length",
        ),
        ("best-k", "the draft length (or tree) with the highest effective tokens/s per grid point"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("spec", nargs="?", help="the target's sweep spec TOML (its models, hardware, dtypes, axes)")
        _add_spec_flags(p, skip=("phases", "spec_k"))
        p.add_argument(
            "--k",
            metavar="A,B",
            help="draft lengths K, each verified as a chain (default 0..8, at "
            "most one per Medusa head and those a medusa acceptance prices)",
        )
        p.add_argument(
            "--top-k",
            action="append",
            metavar="A,B",
            help="a Medusa tree by top-k per head (repeat for several trees), instead of --k",
        )
        p.add_argument(
            "--sparse-tree",
            metavar="Q1,Q2",
            help="the likeliest trees of Q candidates under a medusa acceptance (with or "
            "instead of --top-k trees), instead of --k",
        )
        p.add_argument("--draft-model", metavar="MODEL", help="draft model preset or file (K decode steps a round)")
        p.add_argument("--medusa-heads", type=int, metavar="N", help="Medusa heads instead of a draft model")
        p.add_argument("--shared-lm-head", action="store_true", help="Medusa heads share the base LM head")
        p.add_argument(
            "--mtp",
            action="store_true",
            help="the model's multi-token prediction modules draft (DeepSeek-V3: one token a round)",
        )
        p.add_argument(
            "--alpha",
            type=float,
            help="geometric acceptance: P(draft token accepted) (default 0.8; "
            "with --medusa-heads, the target's Medusa preset)",
        )
        p.add_argument(
            "--acceptance",
            metavar="TOML|PRESET",
            help='acceptance table file (kind = "table" | "medusa", ...) or a preset: '
            "medusa-vicuna-7b, medusa-vicuna-13b, medusa-vicuna-33b, deepseek-v3-mtp",
        )
        if name == "best-k":
            p.add_argument("--achieved", action="store_true", help="rank by predicted achieved tokens/s")
            p.add_argument(
                "--fits",
                action="store_true",
                help="rank only rounds that fit in one device's memory (a note names the cells where none does)",
            )
            p.add_argument("--plot", metavar="CHART", help="also draw the regime map of speedup and best K")
        _add_table_flags(p)
        p.set_defaults(run=_cmd_speculate)

    p = sub.add_parser(
        "frontier",
        help="serving: the most tokens/s per GPU at each tokens/s per user over layouts, concurrency, dtypes "
        "and speculation, and the best under an SLA",
    )
    p.add_argument("spec", nargs="?", help="sweep spec TOML: its models, hardware, dtypes and batch (concurrency)")
    _add_spec_flags(p, skip=("phases", "batch", "seq_len", "hidden", "spec_k", "tp", "pp", "ep"))
    p.add_argument("--isl", type=int, help="prompt tokens per request (with --osl; or --requests)")
    p.add_argument("--osl", type=int, help="output tokens per request (at least 2)")
    p.add_argument(
        "--requests",
        metavar="ISL:OSL:SHARE,...",
        help="a mix of requests instead of --isl/--osl: each kind's lengths and share, the shares summing to 1",
    )
    p.add_argument("--gpus", type=int, required=True, help="the GPU budget: layouts whose tp·pp·ep divides it")
    p.add_argument("--ttft-ms", type=float, help="SLA: longest time to first token, milliseconds")
    p.add_argument("--tpot-ms", type=float, help="SLA: longest time per output token, milliseconds")
    p.add_argument(
        "--concurrency", metavar="A,B", help="sequences in flight per pipeline stage (default 1, 2, 4, ..., 1024)"
    )
    p.add_argument("--chunk", metavar="whole,C", help="prefill modes: whole prompts and/or chunks of C tokens a step")
    p.add_argument("--block-size", type=int, default=16, help="tokens per KV-cache page (default 16)")
    p.add_argument("--k", metavar="A,B", help="speculation: draft lengths searched beside none")
    p.add_argument("--top-k", action="append", metavar="A,B", help="speculation: a Medusa tree by top-k per head")
    p.add_argument("--draft-model", metavar="MODEL", help="draft model preset or file (K decode steps a round)")
    p.add_argument("--medusa-heads", type=int, metavar="N", help="Medusa heads instead of a draft model")
    p.add_argument(
        "--mtp",
        action="store_true",
        help="speculation: the model's multi-token prediction modules draft (rows mtp k=K; DeepSeek-V3: K ≤ 1)",
    )
    p.add_argument("--alpha", type=float, help="geometric acceptance: P(draft token accepted) (default 0.8)")
    p.add_argument("--acceptance", metavar="TOML|PRESET", help="acceptance table file or Medusa preset")
    p.add_argument("--disaggregated", action="store_true", help="search disaggregated prefill/decode instances too")
    p.add_argument(
        "--kv-link", type=float, metavar="GB/s", help="the link KV crosses between instances (default: interconnect)"
    )
    p.add_argument(
        "--gpu-hour-usd",
        metavar="USD|HW=USD,...",
        help="price per GPU-hour, one for all or one per accelerator (h200=3.8,b200=5.5): adds $ per million tokens",
    )
    p.add_argument("--ideal", action="store_true", help="rank and check the SLA on the ideal (roof) times")
    p.add_argument("--top", type=int, default=5, help="best configurations shown per accelerator (default 5)")
    p.add_argument("--plot", metavar="CHART", help="also draw the frontier")
    _add_table_flags(p)
    p.set_defaults(run=_cmd_frontier)

    p = sub.add_parser("compare", help="speedup of accelerator B over A per phase and op group")
    p.add_argument("a", metavar="A", help="the baseline accelerator (preset name or hardware TOML)")
    p.add_argument("b", metavar="B", help="the accelerator compared with it")
    p.add_argument("--spec", help="sweep spec TOML (default: the reference sweep's axes); its hardware is ignored")
    _add_spec_flags(p, skip=("hardware",))
    _add_table_flags(p)
    p.set_defaults(run=_cmd_compare)

    p = sub.add_parser("calibrate", help="fit a hardware profile's achieved terms to measured kernel times")
    p.add_argument(
        "measurements",
        metavar="MEAS",
        nargs="+",
        help="aiconfigurator tables or `rooflax validate -o` files (or folders of them), one GPU",
    )
    p.add_argument("--hardware", help="preset or hardware TOML the times were measured on (default: their device)")
    p.add_argument("-o", "--output", required=True, help="the fitted profile (.toml), usable as --hardware anywhere")
    p.add_argument("--overwrite", action="store_true", help="replace the output if it exists")
    p.add_argument("--quiet", action="store_true", help="no summary line")
    p.set_defaults(run=_cmd_calibrate)

    p = sub.add_parser("accuracy", help="the scorecard: predicted against measured kernel times per GPU and kind")
    p.add_argument(
        "measurements", metavar="MEAS", nargs="+", help="aiconfigurator tables or `rooflax validate -o` files"
    )
    p.add_argument("--hardware", help="preset or profile TOML to price every row on (default: each row's preset)")
    p.add_argument(
        "--held-out",
        action="store_true",
        help="fit on half the shapes and score on the other half (split by shape, not by row)",
    )
    p.add_argument("--plot", metavar="CHART", help="also draw predicted against measured, one panel per kind")
    p.add_argument("--overwrite", action="store_true", help="replace the chart if it exists")
    p.set_defaults(run=_cmd_accuracy)

    p = sub.add_parser("validate", help="time the real matrix products on this device")
    p.add_argument("--spec", help="sweep spec whose grid points to time (default: a decode and prefill set)")
    p.add_argument("--dtype", default=None, help="dtype to run in (default: bf16 on a GPU, fp32 on the CPU)")
    p.add_argument("--repeats", type=int, default=None, help="timed runs per shape (median reported)")
    p.add_argument(
        "--max-points",
        type=int,
        default=12,
        help="most points timed, evenly spread over --spec's grid or the default set (default: 12)",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="smoke run in seconds: small ceiling measurements, little buffer rotation, 2 repeats",
    )
    p.add_argument("--require-accelerator", action="store_true", help="fail unless a GPU or TPU is the device")
    p.add_argument(
        "--skip-unfit",
        action="store_true",
        help="skip the points whose products do not fit in device memory (default: stop before timing)",
    )
    p.add_argument("-o", "--output", required=True, help="parquet file of measured against predicted")
    p.add_argument("--plot", metavar="CHART", help="chart of measured points on the predicted roofline")
    p.add_argument(
        "--profile",
        metavar="TOML",
        help="write a calibrated hardware profile (measured ceilings, fitted overhead and efficiencies)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace the output, chart and profile files if they exist")
    p.add_argument("--quiet", action="store_true", help="no progress or summary table")
    p.set_defaults(run=_cmd_validate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    from rooflax.answers.tables import ascii_fallback

    for stream in (sys.stdout, sys.stderr):  # every line printed goes through these
        ascii_fallback(stream)
    parser = _parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args, extras = parser.parse_known_args(argv)
        if extras:
            raise _unknown_flags(parser, args.command, extras)
    except _UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args.command_line = shlex.join(["rooflax", *argv])
    try:
        if getattr(args, "dataset", None) is None:
            return args.run(args)
        from rooflax.data.scan import reading

        with reading(args.dataset):  # a damaged part met while reading rows: one line naming it
            return args.run(args)
    except RooflaxError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        hint = ""
        if args.command == "sweep":
            hint = f"; finished parts are kept in {args.output}.partial/, run the same command with --resume"
        print(f"\ninterrupted{hint}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
