"""Comparing two accelerators on one sweep: speedup per phase and op group.

:func:`compare` sweeps the spec on accelerator ``a`` and on ``b`` (the spec's ``hardware``
is replaced by the two) and, per model × dtype × parallel layout (``tp``, ``pp``, ``ep``)
× phase × op group, sums each op's time over every grid point and divides:
``speedup = time on a / time on b`` (above 1: ``b`` is faster). A ``total`` row per phase
does the same with whole-model step times (all layers and ``lm_head``). ``speedup_min``
and ``speedup_max`` give the spread of the per-point ratio over the grid.

The achieved times carry each accelerator's error band (its profile's fit,
:mod:`rooflax.calibration.fit`): an op group's row sums its ops' times at the group's band
factors in the row's phase (a summary frame's band, per group), a ``total`` row sums the
summary frames' band columns; ``achieved_speedup_lo`` and ``_hi`` take the ratio's ends
consistently (:func:`rooflax.answers.tables.ratio_band`): each accelerator errs on its own
fit, so the band runs from ``a``'s fast end over ``b``'s slow end to ``a``'s slow end over
``b``'s fast end. Null where a profile has no measurements (no band).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Unpack

import polars as pl

from rooflax.answers.bands import op_band
from rooflax.answers.tables import Table, ratio_band
from rooflax.config.spec import SpecKeys, SweepSpec
from rooflax.data.frames import check_in_memory, resolve_spec, row_bytes, sweep
from rooflax.errors import SpecError
from rooflax.names import GROUPS, KEY_COLUMNS, LAYOUT

__all__ = ["TOTAL", "compare", "compare_table"]

#: The ``group`` of the rows that compare whole-model step times.
TOTAL = "total"
#: The key columns that match a row on ``a`` with its row on ``b``: all but ``hardware``.
_KEYS = tuple(key for key in KEY_COLUMNS if key != "hardware")


def _sum(column: str) -> pl.Expr:
    """``column`` summed, null when any value is (a band that some row lacks is unknown)."""
    return pl.when(pl.col(column).null_count() == 0).then(pl.col(column).sum())


def _ratios(df: pl.DataFrame, a: str, b: str, by: list[str], on: list[str]) -> pl.DataFrame:
    """Per ``by``: summed times on ``a`` and ``b``, their ratios, and the spread of the per-row ratio."""
    left = df.filter(pl.col("hardware") == a).drop("hardware")
    right = df.filter(pl.col("hardware") == b).drop("hardware")
    joined = left.join(right, on=on, suffix="_b", nulls_equal=True, validate="1:1")
    ends = {
        f"achieved_time_{side}_{end}_s": f"achieved_time_{end}_s{suffix}"
        for side, suffix in (("a", ""), ("b", "_b"))
        for end in ("lo", "hi")
    }
    return (
        joined.group_by(by, maintain_order=True)
        .agg(
            points=pl.len(),
            time_a_s=pl.col("time_s").sum(),
            time_b_s=pl.col("time_s_b").sum(),
            achieved_time_a_s=pl.col("achieved_time_s").sum(),
            achieved_time_b_s=pl.col("achieved_time_s_b").sum(),
            speedup_min=(pl.col("time_s") / pl.col("time_s_b")).min(),
            speedup_max=(pl.col("time_s") / pl.col("time_s_b")).max(),
            **{name: _sum(column) for name, column in ends.items()},
        )
        .with_columns(
            pl.col("time_a_s").truediv(pl.col("time_b_s")).alias("speedup"),
            pl.col("achieved_time_a_s").truediv(pl.col("achieved_time_b_s")).alias("achieved_speedup"),
            *ratio_band(
                (pl.col("achieved_time_a_lo_s"), pl.col("achieved_time_a_hi_s")),
                (pl.col("achieved_time_b_lo_s"), pl.col("achieved_time_b_hi_s")),
                "achieved_speedup",
                one_profile=False,
            ),
        )
    )


def compare(
    spec: SweepSpec | str | Path | None = None, *, a: str | Path, b: str | Path, **keys: Unpack[SpecKeys]
) -> pl.DataFrame:
    """How much faster accelerator ``b`` runs a sweep than ``a``, per phase and op group.

    The spec comes first, as for every function that sweeps; the accelerators are keywords.

    Args:
        spec: a :class:`rooflax.SweepSpec`, a TOML path, or None: ``keys`` with the
            reference sweep's batch and seq_len axes where they are not given. Its
            ``hardware`` is replaced by ``a`` and ``b``.
        a: the baseline accelerator: a preset name or a hardware TOML file.
        b: the accelerator compared with it.
        **keys: the spec's TOML keys (``model``, ``dtype``, ``phases``, ``batch``, ...).

    Returns:
        One row per model × dtype × parallel layout × phase × group (the op groups,
        then ``total``): ``a`` and ``b`` (the accelerators' names), ``model``, ``dtype``,
        ``tp``, ``pp``, ``ep``, ``phase``,
        ``group`` (String), ``points`` (rows compared: grid points × ops of the group),
        ``time_a_s`` and ``time_b_s``
        (ideal times summed over the grid: per layer for op groups, whole-model steps for
        ``total``), ``speedup`` (``time_a_s / time_b_s``), the same three for achieved
        times, and ``speedup_min``, ``speedup_max`` (the ideal per-point ratio's spread),
        then the achieved times' band ``achieved_time_a_lo_s``, ``achieved_time_a_hi_s``,
        ``achieved_time_b_lo_s``, ``achieved_time_b_hi_s`` and the speedup's,
        ``achieved_speedup_lo``, ``achieved_speedup_hi`` (module docstring; null without a band).

    >>> df = compare(a="a40", b="h100-sxm", phases=["decode"], batch=[1], seq_len=[2048])
    >>> round(df.filter(group="total").get_column("speedup").item(), 3)  # the bandwidth ratio, 3.35 TB/s / 696 GB/s
    4.813
    """
    if "hardware" in keys:
        raise SpecError("hardware: compare takes the accelerators as a and b; leave hardware out")
    spec = resolve_spec(spec, {**keys, "hardware": [a, b]}, reference_axes=True)
    check_in_memory(
        "compare",
        spec.rows(),
        row_bytes(False),
        instead="compare sums every op of every grid point in memory: give a smaller grid (fewer "
        "batch, seq_len, hidden or spec_k values), or stream a sweep with rooflax.sweep_to_parquet",
    )
    name_a, name_b = (hw.name for hw in spec.hardware)
    long = op_band(sweep(spec).with_columns(pl.col("group").cast(pl.String)), spec)
    by = ["model", "dtype", *LAYOUT, "phase"]
    groups = _ratios(long, name_a, name_b, [*by, "group"], [*_KEYS, "layer", "op", "group"])
    totals = _ratios(sweep(spec, summary=True), name_a, name_b, by, list(_KEYS))
    totals = totals.with_columns(group=pl.lit(TOTAL)).select(groups.columns)
    columns = [
        "a",
        "b",
        "model",
        "dtype",
        *LAYOUT,
        "phase",
        "group",
        "points",
        "time_a_s",
        "time_b_s",
        "speedup",
        "achieved_time_a_s",
        "achieved_time_b_s",
        "achieved_speedup",
        "speedup_min",
        "speedup_max",
        "achieved_time_a_lo_s",
        "achieved_time_a_hi_s",
        "achieved_time_b_lo_s",
        "achieved_time_b_hi_s",
        "achieved_speedup_lo",
        "achieved_speedup_hi",
    ]
    order = pl.col("group").replace_strict([*GROUPS, TOTAL], range(len(GROUPS) + 1))
    return (
        pl.concat([groups, totals])
        .with_columns(a=pl.lit(name_a), b=pl.lit(name_b))
        .select(columns)
        .sort([pl.col("model"), pl.col("dtype"), *LAYOUT, pl.col("phase"), order])
        .with_columns(pl.col("model").cast(pl.String), pl.col("dtype").cast(pl.String))
    )


def compare_table(df: pl.DataFrame) -> Table:
    """A frame of :func:`compare` as a table: speedups of ``b`` over ``a`` per phase and group."""
    if df.is_empty() or not {"a", "b", "speedup"} <= set(df.columns):
        raise SpecError(f"compare_table: expected a frame of rooflax.compare, got columns {df.columns}")
    a, b = df.row(0, named=True)["a"], df.row(0, named=True)["b"]
    several = df.select(pl.struct("model", "dtype").n_unique()).item() > 1
    keys = [*(["model", "dtype"] if several else []), *(k for k in LAYOUT if k in df.columns and df[k].n_unique() > 1)]
    banded = (
        "achieved_speedup_lo" in df.columns
        and df.select(pl.col("achieved_speedup_lo", "achieved_speedup_hi").null_count()).sum_horizontal().item() == 0
    )
    band = ("achieved band",) if banded else ()
    header = (*keys, "phase", "group", f"{a} ms", f"{b} ms", "speedup", "achieved speedup", *band, "range")
    rows = tuple(
        (
            *(str(row[k]) for k in keys),
            row["phase"],
            row["group"],
            _ms(row["time_a_s"] / row["points"]),
            _ms(row["time_b_s"] / row["points"]),
            f"{row['speedup']:.2f}×",
            f"{row['achieved_speedup']:.2f}×",
            *((f"{row['achieved_speedup_lo']:.2f}–{row['achieved_speedup_hi']:.2f}×",) if banded else ()),
            f"{row['speedup_min']:.2f}–{row['speedup_max']:.2f}×",
        )
        for row in df.iter_rows(named=True)
    )
    first = df.row(0, named=True)
    what = "" if several else f" ({first['model']}, {first['dtype']})"
    title = (
        f"speedup of {b} over {a}{what}: time on {a} / time on {b}, summed over the grid (above 1: {b} is "
        "faster; range: over grid points); mean ms per op, per layer (total: one step of the whole model)"
        + ("; achieved band: the achieved speedup at the fits' error bands" if banded else "")
    )
    right = tuple(k in LAYOUT for k in keys)
    return Table(title=title, header=header, rows=rows, numeric=right + (False, False) + (True,) * (5 + len(band)))


def _ms(seconds: float) -> str:
    """Seconds as milliseconds, four significant digits, never in exponent form."""
    ms = seconds * 1e3
    decimals = max(0, 3 - math.floor(math.log10(ms))) if ms > 0 else 0
    return f"{ms:,.{decimals}f}"
