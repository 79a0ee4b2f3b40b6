"""Measured points (from ``rooflax validate``) beside the predicted ones: the validation
chart, and a dataset's achieved points with the measured points of the same configurations."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import polars as pl
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from rooflax.answers.tables import Table
from rooflax.config.hardware import Hardware, hardware_to_toml
from rooflax.data._atomic import output_file, write_output
from rooflax.data.frames import GROUP, PHASE
from rooflax.errors import SpecError
from rooflax.plot._common import MATMUL_GROUPS, decade_below, matching, number, require_columns, require_frame
from rooflax.plot.roofline import bandwidth_label, draw_ceilings, peak_label, roofline, series

__all__ = [
    "MATCH_KEYS",
    "error_table",
    "measured",
    "measured_errors",
    "over_measured",
    "read_validation",
    "validation_path",
    "write_validation",
]

#: Columns a validation row and a dataset row must share to be the same configuration.
MATCH_KEYS = ("model", "phase", "batch", "seq_len", "spec_k", "op")
#: Names of the measured FLOP/s column of a validation frame, newest first.
_MEASURED = ("measured_flops", "achieved_flops")


def _measured_column(frame: pl.DataFrame) -> str:
    """The measured FLOP/s column: ``measured_flops``, or ``achieved_flops`` in older results."""
    for name in _MEASURED:
        if name in frame.columns:
            return name
    raise SpecError(
        f"measured: the validation frame has no measured FLOP/s column ({' or '.join(_MEASURED)}); "
        "pass the parquet file `rooflax validate -o` wrote"
    )


def validation_path(path: str | Path, *, overwrite: bool = False, field: str = "path") -> Path:
    """``path`` as a validation result to write (.parquet), or a one-line SpecError naming ``field``.

    Call it before timing anything, so a bad name fails fast.
    """
    return output_file(path, field, suffixes=(".parquet",), overwrite=overwrite)


def write_validation(
    frame: pl.DataFrame,
    path: str | Path,
    *,
    profile: Hardware,
    calibrated: Hardware,
    timer_ratio: float,
    overwrite: bool = False,
    field: str = "path",
) -> Path:
    """Write a validation result as the parquet file :func:`read_validation` reads; a reader never sees half a file.

    Args:
        frame: measured against predicted, one row per timed op (``Validation.frame``).
        path: a .parquet file name.
        profile: the device's measured ceilings, kept as TOML under ``rooflax.profile``.
        calibrated: the calibrated profile, kept under ``rooflax.calibrated``.
        timer_ratio: time of twice the work over time of the work (about 2 when timing is sound),
            kept under ``rooflax.timer_ratio``.
        overwrite: replace an existing file (otherwise it is an error).
        field: how errors name the path (a CLI flag, say).
    """
    path = validation_path(path, overwrite=overwrite, field=field)
    metadata = {
        "rooflax.kind": "validate",
        "rooflax.profile": hardware_to_toml(profile),
        "rooflax.calibrated": hardware_to_toml(calibrated),
        "rooflax.timer_ratio": f"{timer_ratio:.4f}",
    }
    return write_output(path, lambda tmp: frame.write_parquet(tmp, metadata=metadata), field)


def read_validation(path: str | os.PathLike[str], *, field: str = "measured") -> pl.DataFrame:
    """A validation result (the parquet file ``rooflax validate -o`` writes), or a one-line error."""
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"{field}: {str(path)!r} is not a file; give the parquet file `rooflax validate -o` wrote")
    try:
        frame = pl.read_parquet(path)
    except (pl.exceptions.PolarsError, OSError) as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SpecError(f"{field}: cannot read {str(path)!r} as parquet: {message}") from None
    require_columns(frame, (*MATCH_KEYS, "group", "intensity", "measured_time_s"), field)
    _measured_column(frame)
    return frame


def _series_color(ax: Axes, label: str):
    """The colour a roofline drew series ``label`` in."""
    for collection in ax.collections:
        if collection.get_label() == label:
            colors = collection.get_edgecolor() if len(collection.get_edgecolor()) else collection.get_facecolor()
            return tuple(np.asarray(colors)[0])
    return "0.3"


def _measured_points(
    ax: Axes, frame: pl.DataFrame, keyed, columns: tuple[str, str], *, size: float, width: float
) -> None:
    """Each series' measured points of ``frame`` (``columns``: x and y) as open circles in its roofline colour,
    kept out of the legend (``gid="measured"``)."""
    for key, label in keyed:
        points = frame.filter(*matching(("group", "phase", "spec_k"), key))
        ax.scatter(
            points.get_column(columns[0]).to_numpy(),
            points.get_column(columns[1]).to_numpy(),
            marker="o",
            facecolors="none",
            edgecolors=[_series_color(ax, label)],
            s=size,
            linewidths=width,
            zorder=4,
            label=f"_{label} measured",
            gid="measured",
        )


def _legend(ax: Axes, predicted: str, extra: Sequence[Line2D] = ()) -> None:
    """The roofline's legend, ``extra`` lines, and one entry for each kind of point: predicted ``x``, measured ``o``."""
    legend = ax.get_legend()
    assert legend is not None, "a roofline draws its legend"
    handles = [
        *legend.legend_handles,
        *extra,
        Line2D([], [], linestyle="none", marker="x", color="0.3"),
        Line2D([], [], linestyle="none", marker="o", mfc="none", color="0.3"),
    ]
    labels = [
        *(t.get_text() for t in legend.get_texts()),
        *(line.get_label() for line in extra),
        predicted,
        "measured (series colour)",
    ]
    ax.legend(handles=handles, labels=labels, fontsize=8, framealpha=0.9, loc="lower right")


def _match(predicted: pl.DataFrame | pl.LazyFrame, validation: pl.DataFrame) -> pl.DataFrame:
    """Validation rows with the dataset's achieved time and FLOP/s of the same configuration."""
    require_frame(predicted, "measured (dataset)", lazy=True)
    require_frame(validation, "measured (validation)")
    names = predicted.collect_schema().names()
    for column in (*MATCH_KEYS, "achieved_time_s", "achieved_flops", "intensity", "hardware", "dtype"):
        if column not in names:
            raise SpecError(
                f"measured: the dataset has no {column!r} column; it must be a long (per-op) dataset "
                "swept with achieved performance"
            )
    require_columns(validation, (*MATCH_KEYS, "group", "intensity", "measured_time_s"), "measured (validation)")
    flops = _measured_column(validation)
    text = [pl.col(c).cast(pl.String) for c in ("model", "phase", "op")]
    keys = validation.select(*text, pl.col("batch", "seq_len", "spec_k").cast(pl.Int64)).unique()
    lf = predicted.lazy().with_columns(*text, pl.col("batch", "seq_len", "spec_k").cast(pl.Int64))
    found = lf.join(keys.lazy(), on=list(MATCH_KEYS), how="semi", nulls_equal=True).collect()
    if found.select(MATCH_KEYS).is_duplicated().any():
        raise SpecError(
            "measured: the dataset holds several rows per configuration (several hardware or dtype "
            "values); select one with --where \"hardware = '...' AND dtype = '...'\""
        )
    joined = (
        validation.with_columns(*text, pl.col("batch", "seq_len", "spec_k").cast(pl.Int64))
        .select(
            *MATCH_KEYS,
            "group",
            pl.col("intensity").alias("measured_intensity"),
            "measured_time_s",
            pl.col(flops).alias("measured_flops"),
        )
        .join(
            found.select(*MATCH_KEYS, "hardware", "dtype", "intensity", "achieved_time_s", "achieved_flops"),
            on=list(MATCH_KEYS),
            how="inner",
            nulls_equal=True,
        )
    )
    if joined.height == 0:
        raise SpecError(
            f"measured: no configuration of the validation result is in the dataset (matched on "
            f"{', '.join(MATCH_KEYS)}); sweep the grid that was validated (validate --spec S, "
            "then sweep S)"
        )
    return joined.with_columns(pl.col("group").cast(GROUP), pl.col("phase").cast(PHASE))


def measured_errors(joined: pl.DataFrame) -> pl.DataFrame:
    """Median relative error of achieved against measured time, per op group.

    ``|achieved_time_s − measured_time_s| / measured_time_s`` for each matched row, then the
    median and 90th percentile per group (``points`` rows each) and over all rows (``all``).
    """
    err = (pl.col("achieved_time_s") - pl.col("measured_time_s")).abs() / pl.col("measured_time_s")
    rows = joined.with_columns(err.alias("error"), pl.col("group").cast(pl.String))

    stats = [
        pl.len().alias("points"),
        pl.col("error").median().alias("median_rel_error"),
        pl.col("error").quantile(0.9, "linear").alias("p90_rel_error"),
    ]
    per_group = rows.group_by("group", maintain_order=True).agg(stats).sort("group")
    overall = rows.select(pl.lit("all").alias("group"), *stats)
    return pl.concat([per_group, overall.cast(per_group.schema)])


def error_table(errors: pl.DataFrame) -> Table:
    """The per-group errors of :func:`measured_errors` as a table."""
    rows = tuple(
        (r["group"], str(r["points"]), f"{r['median_rel_error']:.1%}", f"{r['p90_rel_error']:.1%}")
        for r in errors.iter_rows(named=True)
    )
    header = ("group", "points", "median error", "p90 error")
    return Table(title="", header=header, rows=rows, numeric=(False, True, True, True))


def over_measured(
    predicted: pl.DataFrame | pl.LazyFrame,
    validation: pl.DataFrame,
    *,
    groups: Sequence[str] = MATMUL_GROUPS,
    title: str | None = None,
    **options,
) -> tuple[Figure, pl.DataFrame]:
    """Achieved points (``x``) of a dataset and measured points (``o``) of the same configurations.

    Rows match on :data:`MATCH_KEYS`; the dataset must hold one row per configuration
    (one hardware and dtype). Measured points sit at the intensity the validation counted
    (its dtype) and the FLOP/s it measured, in their series' colour.

    Args:
        predicted: a long dataset or frame (``rooflax.sweep``), with ``achieved_time_s``.
        validation: a validation result (``rooflax validate -o``; :func:`read_validation`),
            whose measured column is ``measured_flops`` (``achieved_flops`` in older files).
        groups: op groups to draw.
        title: replaces the roofline's title.
        options: further options of :func:`rooflax.plot.roofline` (``hardware``, ``models``, ...).

    Returns:
        The chart and the errors per group (:func:`measured_errors`).
    """
    options.pop("ideal", None)
    joined = _match(predicted, validation)
    shown = joined.filter(pl.col("group").cast(pl.String).is_in(list(groups)))
    if shown.height == 0:
        raise SpecError(f"measured: no matched rows in groups {list(groups)!r}")
    fig = roofline(shown, groups=groups, title=title, **options)
    ax = fig.axes[0]
    _measured_points(ax, shown, series(shown, []), ("measured_intensity", "measured_flops"), size=36, width=1.1)
    low = number(shown.get_column("measured_flops").min())
    if low < ax.get_ylim()[0]:
        ax.set_ylim(decade_below(low), ax.get_ylim()[1])
    _legend(ax, "achieved (predicted)")
    return fig, measured_errors(joined)


def measured(
    frame: pl.DataFrame, profile: Hardware, *, datasheet: Hardware | None = None, title: str | None = None
) -> Figure:
    """Predicted points (``x``) and measured points (``o``) of a validation frame on one chart.

    The roof is the measured profile's; the datasheet's ceilings are added in grey when
    the device matched a preset. Measured points sit at the op's intensity and the
    FLOP/s it achieved, so their gap below the roof is the efficiency. Predicted points
    are achieved (below the roof) when the frame carries ``predicted_achieved_time_s``,
    ideal (on the roof) otherwise. The measured column is ``measured_flops``
    (``achieved_flops`` in older results).

    Args:
        frame: a validation frame (:func:`rooflax.validate.validate`'s ``frame``).
        profile: the measured profile of the device, whose roof is drawn.
        datasheet: the preset the device matched, drawn in grey (None: none).
        title: the figure title.
    """
    require_frame(frame, "measured")
    if not isinstance(profile, Hardware):
        raise SpecError(f"profile: expected a rooflax.Hardware, got {type(profile).__name__}")
    require_columns(frame, ["model", "dtype", "phase", "spec_k", "group", "intensity"], "measured")
    column = _measured_column(frame)
    dtype = frame.get_column("dtype")[0]
    if dtype not in profile.dtypes:
        raise SpecError(f"measured: profile {profile.name!r} has no {dtype} ceiling")
    peak, bandwidth = profile.peak(dtype), profile.bandwidth_bytes_per_s
    frame = frame.with_columns(pl.col("group").cast(GROUP), pl.col("phase").cast(PHASE))
    predicted = frame.drop("achieved_flops", strict=False).with_columns(
        pl.lit(profile.name).alias("hardware"),
        pl.min_horizontal(pl.lit(peak), pl.col("intensity") * bandwidth).alias("attainable_flops"),
    )
    ideal = "predicted_achieved_time_s" not in frame.columns
    if not ideal:
        predicted = predicted.with_columns(
            (pl.col("flops") / pl.col("predicted_achieved_time_s")).alias("achieved_flops")
        )
    device = frame.get_column("device")[0] if "device" in frame.columns else profile.label
    fig = roofline(
        predicted,
        hardware={profile.name: profile},
        ideal=ideal,
        title=title or f"Measured vs predicted ({device}, {dtype})",
    )
    ax = fig.axes[0]
    _measured_points(ax, frame, series(predicted, []), ("intensity", column), size=30, width=1.0)
    extra: Sequence[Line2D] = []
    if datasheet is not None and dtype in datasheet.dtypes:
        label = (
            f"{datasheet.label} datasheet: {bandwidth_label(datasheet.bandwidth_bytes_per_s)}, "
            f"{peak_label(datasheet.peak(dtype), dtype)}"
        )
        extra = draw_ceilings(ax, datasheet, dtype, ax.get_xlim(), "0.6", label=label)[:1]
    low = min(ax.get_ylim()[0], decade_below(number(frame.get_column(column).min())))
    ax.set_ylim(
        low, max(ax.get_ylim()[1], (datasheet.peak(dtype) * 3) if datasheet and dtype in datasheet.dtypes else 0)
    )
    _legend(ax, f"predicted ({'ideal' if ideal else 'achieved'})", extra)
    return fig
