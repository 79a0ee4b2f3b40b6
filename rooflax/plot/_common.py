"""Shared pieces of the charts: frame checks, preset lookup, SI ticks, decade limits, point
reduction, the layering of coinciding series, colour-bar ticks."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import cast

import matplotlib
import numpy as np
import polars as pl
from matplotlib.axes import Axes
from matplotlib.colorbar import Colorbar
from matplotlib.colors import ListedColormap
from matplotlib.ticker import FuncFormatter, LogLocator

from rooflax.config.dtypes import DTYPES
from rooflax.config.hardware import HARDWARE, Hardware
from rooflax.config.models import MODELS, Model
from rooflax.errors import SpecError, unknown_name
from rooflax.names import AXES
from rooflax.units import si

#: How each phase is named on charts (DESIGN.md: "init" is prefill, "ar" is decode).
PHASE_LABELS = {"prefill": "init", "decode": "ar"}
#: Groups drawn by default: the matrix products of the reference chart.
MATMUL_GROUPS = ("qkv mlp", "up/gate/down", "qk/pv")


def number(value: object) -> float:
    """A polars aggregate of a numeric column (``Series.min()``, ``.max()``, ``.median()``) as a float: polars
    types it as any Python value."""
    return float(cast(float, value))


def palette(name: str) -> tuple:
    """The colours of one of matplotlib's qualitative colour maps (``tab10``, ``tab20``), in order."""
    listed = cast(ListedColormap, matplotlib.colormaps[name])  # the qualitative maps are listed ones
    return cast(tuple, listed.colors)


def matching(keys: Sequence[str], values: Sequence) -> list[pl.Expr]:
    """Filters selecting rows whose ``keys`` equal ``values``, null matching null (``spec_k``)."""
    return [pl.col(k).eq_missing(v) for k, v in zip(keys, values, strict=True)]


def require_frame(df: object, what: str, *, lazy: bool = False) -> None:
    """Raise a one-line error unless ``df`` is a polars DataFrame (or LazyFrame, with ``lazy``)."""
    kinds = (pl.DataFrame, pl.LazyFrame) if lazy else (pl.DataFrame,)
    if not isinstance(df, kinds):
        allowed = "a polars DataFrame or LazyFrame" if lazy else "a polars DataFrame"
        raise SpecError(f"{what}: expected {allowed} (rooflax.sweep(...) or a dataset), got {type(df).__name__}")


def require_columns(df: pl.DataFrame, columns: Iterable[str], what: str) -> None:
    """Raise a one-line error when ``df`` lacks a column ``what`` needs."""
    for column in columns:
        if column not in df.columns:
            raise (
                summary_frame(what)
                if "tokens_per_s" in df.columns
                else unknown_name(what, column, df.columns, what="column")
            )
    if df.height == 0:
        raise SpecError(f"{what}: the frame is empty (nothing matched the selection)")


def summary_frame(what: str) -> SpecError:
    """The error for a summary frame given to a chart of op rows."""
    return SpecError(
        f"{what}: the frame is a summary (one row per configuration, no op rows); this chart draws "
        "a long frame: sweep without summary=True (--summary)"
    )


def series_label(group: str, phase: str, spec_k: int | None) -> str:
    """``qkv mlp init``, ``up/gate/down ar``, ``up/gate/down spec: 16``."""
    if phase == "verify":
        return f"{group} spec: {spec_k}"
    return f"{group} {PHASE_LABELS[phase]}"


def hardware_of(df: pl.DataFrame, hardware: Mapping[str, Hardware] | None) -> dict[str, Hardware]:
    """The Hardware of every name in ``df["hardware"]``: from ``hardware`` or the presets."""
    known = {**HARDWARE, **(hardware or {})}
    out = {}
    for name in df.get_column("hardware").unique(maintain_order=True).cast(pl.String):
        if name not in known:
            raise SpecError(
                f"hardware: {name!r} is not a preset; pass its description (hardware={{name: Hardware}}, "
                "or plot a dataset, whose metadata carries it)"
            )
        out[name] = known[name]
    return out


def model_label(df: pl.DataFrame, models: Mapping[str, Model] | None) -> str:
    """Display names of the models in ``df``, joined."""
    known = {**MODELS, **(models or {})}
    names = df.get_column("model").unique(maintain_order=True).cast(pl.String).to_list()
    return ", ".join(known[n].label if n in known else n for n in names)


def compute_dtype(dtype_name: str) -> str:
    """The peak a dtype column value runs at (``fp16/kv=fp8`` → ``fp16``; ``w4a16`` → ``fp16``)."""
    base = dtype_name.split("/")[0]
    return DTYPES[base].compute if base in DTYPES else base


def tick_label(value: float, _pos: object = None) -> str:
    """``1``, ``10``, ``1k``, ``10G``, ``100T``: SI labels for decade ticks (a FuncFormatter's function)."""
    return si(value) if value > 0 else "0"


def span(values: Sequence[int]) -> str:
    """``1–128`` for several values, ``5120`` for one (thousands separated)."""
    lo, hi = min(values), max(values)
    return f"{lo:,}" if lo == hi else f"{lo:,}–{hi:,}"


def swept(lf: pl.LazyFrame | pl.DataFrame) -> dict[str, object]:
    """What a frame sweeps, for titles: dtypes (compute and KV), axis ranges, fused attention.

    Returns a dict with ``dtype`` (``fp16``, ``fp16, KV fp8``), ``batch``, ``seq_len``,
    ``hidden`` and ``spec_k`` (value spans, absent when the column is), ``hidden_varies``
    (whether some model has several widths) and ``fused`` (the fused ``attention`` op).
    """
    lf = lf.lazy()
    names = lf.collect_schema().names()
    axes = [a for a in AXES if a in names]
    aggs = [e for a in axes for e in (pl.col(a).min().alias(f"{a}_lo"), pl.col(a).max().alias(f"{a}_hi"))]
    aggs.append(pl.col("dtype").cast(pl.String).unique().sort().implode().alias("dtypes"))
    if "op" in names:
        aggs.append((pl.col("op").cast(pl.String) == "attention").any().alias("fused"))
    if "hidden" in names:
        aggs.append(pl.col("hidden").n_unique().over("model").max().alias("widths"))
    row = lf.select(aggs).collect().row(0, named=True)
    out: dict[str, object] = {}
    dtypes = []
    for name in row["dtypes"]:
        compute, _, kv = name.partition("/kv=")
        dtypes.append(f"{compute}, KV {kv}" if kv else compute)
    out["dtype"] = " | ".join(dtypes)
    for a in axes:
        if row[f"{a}_lo"] is not None:
            out[a] = span([row[f"{a}_lo"], row[f"{a}_hi"]])
    out["hidden_varies"] = bool(row.get("widths") and row["widths"] > 1)
    out["fused"] = bool(row.get("fused"))
    return out


def swept_line(info: Mapping[str, object], *, skip: Sequence[str] = ()) -> str:
    """``fp16 · batch 1–128 · seq_len 128–4,096 · hidden 5,120 · fused attention``."""
    parts = [str(info["dtype"])] if info.get("dtype") else []
    parts += [f"{a} {info[a]}" for a in AXES if a in info and a not in skip]
    if info.get("fused"):
        parts.append("fused attention")
    return " · ".join(parts)


def si_log_axes(ax: Axes) -> None:
    """Log-log axes with SI decade labels."""
    ax.set_xscale("log")
    ax.set_yscale("log")
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_locator(LogLocator(base=10, numticks=30))
        axis.set_major_formatter(FuncFormatter(tick_label))
    ax.grid(True, which="major", linestyle=":", linewidth=0.6, alpha=0.6)


def reduce_points(lf: pl.LazyFrame, x: str, y: str, by: list[str], resolution: int) -> pl.DataFrame:
    """One point per occupied cell of a ``resolution``-per-decade log grid, per ``by`` group.

    Points closer than a cell (by default far below a pixel) would be drawn on top of
    each other; the first in frame order stands for the cell. ``count`` says how many
    points each kept point stands for, so no series disappears and sizes can be shown.
    """
    cell_x = (pl.col(x).log10() * resolution).floor().cast(pl.Int64).alias("_cx")
    cell_y = (pl.col(y).log10() * resolution).floor().cast(pl.Int64).alias("_cy")
    return (
        lf.with_columns(cell_x, cell_y)
        .group_by([*by, "_cx", "_cy"], maintain_order=True)
        .agg(pl.col(x).first(), pl.col(y).first(), pl.len().alias("count"))
        .drop("_cx", "_cy")
        .collect()
    )


#: How far (in decades) a point may sit past a decade and the axis still end at that decade:
#: about a pixel at the default size, where the point is drawn at the edge, whole.
SNAP_DECADES = 0.02


def decade_limits(lo: float, hi: float) -> tuple[float, float]:
    """The decades that span ``lo`` to ``hi``: ``(1, 10k)`` for 0.985 to 3812, as the reference draws it.

    A value within :data:`SNAP_DECADES` of a decade counts as on it (the chart draws its
    markers unclipped, so they show whole at the edge).

    >>> decade_limits(0.985, 3812.0), decade_limits(0.9, 250.0)
    ((1, 10000), (0.1, 1000))
    """
    return (_decade(math.floor(math.log10(lo) + SNAP_DECADES)), _decade(math.ceil(math.log10(hi) - SNAP_DECADES)))


def decade_below(value: float) -> float:
    """The largest decade at least 4× under ``value`` (10G for 180 or 75 GFLOP/s): the reference's floor, with
    room under its lowest points.

    >>> decade_below(1.8e11), decade_below(1e11), decade_below(7.5e10), decade_below(3e10)
    (10000000000, 10000000000, 10000000000, 1000000000)
    """
    return _decade(math.floor(math.log10(value / 4) + SNAP_DECADES))


def _decade(exponent: int) -> float:
    return 10**exponent if exponent >= 0 else 10.0**exponent


#: Marker area (pt²) and edge width (pt) of a point nothing is drawn over. Each layer of
#: other series' points over it (see :func:`layers`) adds :data:`LAYER_GROWTH` of marker
#: width and, for line markers (``x``, ``+``), whose strokes the ones above lie along,
#: :data:`LAYER_WIDTH` of edge (a rim each side); a hollow marker keeps its edge, its
#: outline round the ones above. Past :data:`MAX_LAYER` layers markers stop growing.
BASE_SIZE, BASE_WIDTH, LAYER_GROWTH, LAYER_WIDTH, MAX_LAYER = 36.0, 1.2, 0.4, 1.2, 8
#: Cells per decade within which two markers count as drawn at the same place (about a
#: marker's width on a chart of four to six decades), neighbouring cells included.
LAYER_CELLS = 16


def layers(points: Sequence[tuple[np.ndarray, np.ndarray]], cells: int = LAYER_CELLS) -> list[np.ndarray]:
    """How deep under later series each point of a log-log chart lies, series in drawing order.

    A point no later series' point touches is layer 0; a point that later points touch is
    one layer below the deepest of them. Drawn with :func:`layer_style`, each point where
    any number of series coincide is larger and wider-edged than every one above it, so
    all of them show, while a point nothing covers keeps the plain marker. Points touch
    when they fall in the same or neighbouring cells of a ``cells``-per-decade log grid.
    Nothing is moved: every point stays where its value is.

    >>> one, other = (np.array([1.0, 10.0]), np.array([1.0, 1.0])), (np.array([10.0]), np.array([1.02]))
    >>> [a.tolist() for a in layers([one, other, other])]
    [[0, 2], [1], [0]]
    """
    codes = []
    for x, y in points:
        cx = np.floor(np.log10(np.asarray(x, float)) * cells).astype(np.int64)
        cy = np.floor(np.log10(np.asarray(y, float)) * cells).astype(np.int64)
        codes.append((cx << 32) + cy)
    seen, deepest = np.zeros(0, np.int64), np.zeros(0, np.int64)  # cells of later points, the deepest layer in each
    out: list[np.ndarray] = [np.zeros(0, np.int64)] * len(codes)
    for i in reversed(range(len(codes))):
        layer = np.zeros(len(codes[i]), np.int64)
        if seen.size:
            for step in (dx * (1 << 32) + dy for dx in (-1, 0, 1) for dy in (-1, 0, 1)):
                at = np.clip(np.searchsorted(seen, codes[i] + step), 0, seen.size - 1)
                hit = seen[at] == codes[i] + step
                layer = np.where(hit, np.maximum(layer, deepest[at] + 1), layer)
        out[i] = layer
        cell, first = np.unique(np.concatenate([seen, codes[i]]), return_inverse=True)
        merged = np.zeros(cell.size, np.int64)
        np.maximum.at(merged, first, np.concatenate([deepest, layer]))
        seen, deepest = cell, merged
    return out


def layer_style(layer: int | np.ndarray, *, hollow: bool = False) -> tuple:
    """Marker area (pt²) and edge width (pt) of points ``layer`` layers under others (see :func:`layers`)."""
    layer = np.minimum(layer, MAX_LAYER)
    return BASE_SIZE * (1 + LAYER_GROWTH * layer) ** 2, BASE_WIDTH + (0 if hollow else LAYER_WIDTH) * layer


def value_ticks(values: Iterable[float]) -> list[float]:
    """Colour-bar ticks for an axis's values: each of up to 12 values, else every power of two among them.

    >>> value_ticks([1, 2, 4, 8, 16, 32, 64]), value_ticks(range(1, 2049))[-3:], value_ticks([3, 5, 7] * 5)
    ([1, 2, 4, 8, 16, 32, 64], [512, 1024, 2048], [3, 5, 7])

    Returns an empty list (decade ticks instead) when neither rule gives two ticks.
    """
    present = sorted({float(v) for v in values})
    if len(present) <= 12:
        return [_plain(v) for v in present]
    powers = [_plain(v) for v in present if v >= 1 and v == int(v) and int(v) & (int(v) - 1) == 0]
    return powers if len(powers) >= 2 else []


def _plain(value: float) -> float:
    return int(value) if value == int(value) else value


def label_values(bar: Colorbar, values: Iterable[float]) -> None:
    """Tick a colour bar at :func:`value_ticks` of ``values``, each labelled in full (``8,192``), no minor ticks."""
    ticks = value_ticks(values)
    if not ticks:
        bar.ax.yaxis.set_major_formatter(FuncFormatter(tick_label))
        return
    bar.set_ticks(ticks, labels=[f"{t:,}" for t in ticks])
    bar.minorticks_off()
