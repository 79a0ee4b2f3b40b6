"""Regime maps: heatmaps over two sweep axes of bound, attainable FLOP/s, time, tokens/s,
fits-in-memory, and the ratio of two accelerators' times."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import polars as pl
from matplotlib.collections import PatchCollection
from matplotlib.colors import ListedColormap, LogNorm
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle
from matplotlib.ticker import FuncFormatter

from rooflax.errors import SpecError, unknown_name
from rooflax.plot._common import MATMUL_GROUPS, matching, require_columns, require_frame, si

__all__ = ["ENTITIES", "check_one_value", "ratio_map", "regime_map"]

AXES = ("batch", "seq_len", "hidden", "spec_k")
#: Columns naming what was swept besides the axes; a map panel shows one of each.
ENTITIES = ("model", "hardware", "dtype")
#: Values a map can show, for long (ops) frames and summary frames.
OP_VALUES = ("bound", "attainable_flops", "time_s", "intensity")
SUMMARY_VALUES = ("time_s", "tokens_per_s", "fits_in_memory", "memory_bytes", "intensity")
_LABELS = {"attainable_flops": "attainable FLOP/s", "time_s": "time (s)", "tokens_per_s": "tokens/s",
           "memory_bytes": "memory (bytes)", "intensity": "FLOP/byte"}
_BINARY = {"bound": ("memory", "compute"), "fits_in_memory": ("does not fit", "fits")}


def _frames(df: pl.DataFrame, keys: list[str], facet: str | None) -> tuple[list[tuple[str, pl.DataFrame]], int]:
    """Panels named and in order (facet value, phase step, op), and the columns of the grid.

    A long frame gets a row per phase step (and facet value), a column per op; a summary
    frame puts each facet value's steps side by side, two facet values to a row when there
    are at most two steps.
    """
    frames = []
    for value in (df.get_column(facet).unique(maintain_order=True) if facet else [None]):
        part = df if facet is None else df.filter(pl.col(facet) == value)
        order = part.select(keys).unique().with_columns(pl.col("phase").to_physical().alias("_p"))
        order = order.sort(["_p", "spec_k", *(["op"] if "op" in keys else [])]).drop("_p")
        for row in order.iter_rows(named=True):
            name = _step_name(row["phase"], row["spec_k"])
            name = f"{row['op']} · {name}" if "op" in row else name
            frames.append((name if facet is None else f"{value} · {name}",
                           part.filter(*matching(keys, [row[k] for k in keys]))))
    if "op" in keys:
        return frames, df.get_column("op").n_unique()
    steps = df.select("phase", "spec_k").unique().height
    return frames, (steps * max(1, 4 // steps) if facet else 4)


def _spread(df: pl.DataFrame, facet: str | None) -> dict[str, list]:
    """The values of each entity and axis column within a panel (the widest one).

    ``hidden`` is counted within each model, as each model may have its own width.
    """
    out = {}
    for column in (*ENTITIES, *AXES):
        if column not in df.columns or column in ("spec_k", facet):  # these have panels of their own
            continue
        by = list(dict.fromkeys(c for c in (facet, "model" if column == "hidden" else None) if c and c in df.columns))
        if not by:
            out[column] = df.get_column(column).unique(maintain_order=True).to_list()
        else:
            groups = df.group_by(by).agg(pl.col(column).unique(maintain_order=True)).get_column(column)
            out[column] = max(groups.to_list(), key=len)
    return out


def check_one_value(spread: Mapping[str, Sequence], x: str, y: str, facet: str | None) -> None:
    """A one-line error unless each column of ``spread`` holds one value per map panel.

    Args:
        spread: values per column (``model``, ``hardware``, ``dtype``, ``hidden``, ...).
        x, y: the map's axes, which may hold many values.
        facet: the column with a panel per value, which may too.
    """
    varying = {c: v for c, v in spread.items() if c not in (x, y, facet) and len(v) > 1}
    if not varying:
        return

    def where(column: str) -> str:
        first = varying[column][0]
        return f"--where \"{column} = {f'{first!r}' if column in ENTITIES else first}\""

    shown = " and ".join(f"{len(v)} {c} values ({', '.join(map(str, v[:4]))}{', ...' if len(v) > 4 else ''})"
                         for c, v in varying.items())
    column, *rest = varying
    if rest:
        facets = [c for c in varying if c in ENTITIES and facet is None]
        selects = ", ".join(where(c) for c in varying if c not in facets[:1])
        fix = (f"draw a panel per value of one (--facet {facets[0]}) and select one value of the rest"
               if facets else "select one value of each") + f" ({selects})"
    elif column in ENTITIES and facet is None:
        fix = f"draw a panel per value (facet {column!r}, --facet {column}) or select one ({where(column)})"
    elif column in ENTITIES:
        fix = f"select one ({where(column)})"
    else:
        fix = f"put {column} on an axis (--x or --y {column}) or select one ({where(column)})"
    raise SpecError(f"map: {shown} would share each ({x}, {y}) cell; {fix}")


def _panels(df: pl.DataFrame, ops: Sequence[str] | None) -> tuple[list[str], pl.DataFrame]:
    """Panel keys: phase step, and op for long frames (matmul groups unless ``ops`` given)."""
    keys = ["phase", "spec_k"]
    if "op" in df.columns:
        if ops is None:
            df = df.filter(pl.col("group").cast(pl.String).is_in(list(MATMUL_GROUPS)))
        else:
            present = df.get_column("op").cast(pl.String).unique().to_list()
            for op in ops:
                if op not in present:
                    raise unknown_name("ops", op, present)
            df = df.filter(pl.col("op").cast(pl.String).is_in(list(ops)))
        keys.append("op")
    return keys, df


def _grid(panel: pl.DataFrame, x: str, y: str, value: str, xs: list, ys: list) -> np.ndarray:
    """The (y, x) matrix of ``value``; NaN where the grid has no point (verify below K)."""
    if panel.select(x, y).is_duplicated().any():  # check_one_value rules out all but repeated rows
        raise SpecError(f"map: the frame holds repeated rows (several per ({x}, {y}) cell); drop the duplicates")
    matrix = np.full((len(ys), len(xs)), np.nan)
    column = panel.get_column(value)
    if value in _BINARY:
        column = (column.cast(pl.String) == _BINARY[value][1]) if value == "bound" else column
    xi = {v: i for i, v in enumerate(xs)}
    yi = {v: i for i, v in enumerate(ys)}
    for xv, yv, v in zip(panel.get_column(x), panel.get_column(y), column.cast(pl.Float64), strict=True):
        matrix[yi[yv], xi[xv]] = v
    return matrix


def _ticks(ax, values: list, axis: str) -> None:
    step = max(1, len(values) // 10)
    positions = list(range(0, len(values), step))
    getattr(ax, f"set_{axis}ticks")(positions, [str(values[i]) for i in positions], fontsize=7,
                                     rotation=90 if axis == "x" and len(values) > 12 else 0)


def _step_name(phase: str, spec_k: int | None) -> str:
    return f"verify K={spec_k}" if phase == "verify" else phase


def _layout(n: int, ncols: int):
    ncols = min(n, ncols)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols + 1.2, 3.8 * nrows), squeeze=False,
                             layout="constrained")
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    return fig, axes


def _heatmaps(frames: list[tuple[str, pl.DataFrame]], x: str, y: str, value: str, *, label: str, cmap, norm,
              binary: tuple[str, str] | None, title: str, ncols: int, ratio: bool = False) -> Figure:
    xs = sorted({v for _, f in frames for v in f.get_column(x).to_list()})
    ys = sorted({v for _, f in frames for v in f.get_column(y).to_list()})
    fig, axes = _layout(len(frames), ncols)
    image = None
    hatched = False
    for ax, (name, panel) in zip(axes.flat, frames, strict=False):
        matrix = _grid(panel, x, y, value, xs, ys)
        image = ax.imshow(matrix, origin="lower", aspect="auto", cmap=cmap, norm=norm, interpolation="nearest")
        if "fits_in_memory" in panel.columns and value != "fits_in_memory":
            fits = _grid(panel, x, y, "fits_in_memory", xs, ys)
            cells = [Rectangle((i - 0.5, j - 0.5), 1, 1) for j, i in zip(*np.nonzero(fits == 0), strict=True)]
            if cells:
                hatched = True
                ax.add_collection(PatchCollection(cells, facecolor="none", edgecolor="white", hatch="///",
                                                  linewidth=0, gid="does-not-fit"))
        ax.set_title(name, fontsize=9)
        ax.set_xlabel(x)
        ax.set_ylabel(y)
        _ticks(ax, xs, "x")
        _ticks(ax, ys, "y")
    if hatched:
        fig.legend(handles=[Patch(facecolor="0.5", edgecolor="white", hatch="///", label="does not fit in memory")],
                   loc="outside lower center")
    if binary:
        fig.legend(handles=[Patch(color=cmap(0), label=binary[0]), Patch(color=cmap(1), label=binary[1])],
                   loc="outside lower center", ncols=2)
    else:
        bar = fig.colorbar(image, ax=axes, label=label, shrink=0.9)
        if ratio:  # plain factors either side of 1
            lo, hi = norm.vmin, norm.vmax
            bar.set_ticks([t for t in (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100) if lo <= t <= hi])
            bar.ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            bar.ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
        else:
            bar.ax.yaxis.set_major_formatter(FuncFormatter(si))
    fig.suptitle(title, fontsize=12)
    return fig


def _check_axes(df: pl.DataFrame, x: str, y: str) -> None:
    for axis, name in ((x, "x"), (y, "y")):
        if axis not in AXES:
            raise unknown_name(name, axis, AXES)
    if x == y:
        raise SpecError(f"map: x and y are both {x!r}; choose two different axes")
    require_columns(df, [x, y], "map")


def regime_map(df: pl.DataFrame, *, x: str = "batch", y: str = "seq_len", value: str | None = None,
               ops: Sequence[str] | None = None, facet: str | None = None, title: str | None = None) -> Figure:
    """Heatmaps of ``value`` over two axes, one panel per phase step (and op for long frames).

    Args:
        df: a long frame (values ``bound``, ``attainable_flops``, ``time_s``, ``intensity``;
            default ``bound``) or a summary frame (``time_s``, ``tokens_per_s``,
            ``fits_in_memory``, ``memory_bytes``, ``intensity``; default ``tokens_per_s``).
        x, y: the two axes (``batch``, ``seq_len``, ``hidden``, ``spec_k``); every other
            axis must hold one value in ``df``.
        ops: ops to draw, for long frames (default: those of the matmul groups).
        facet: ``model``, ``hardware`` or ``dtype``: a set of panels per value (in frame
            order), on one colour scale. Without it, each must hold one value in ``df``.
        title: the figure title.

    Cells where the grid has no point (verify with ``seq_len < spec_k``) stay blank; on
    summary maps, cells whose weights, KV cache and activations exceed the device memory
    are hatched.
    """
    require_frame(df, "map")
    summary = "op" not in df.columns
    allowed = SUMMARY_VALUES if summary else OP_VALUES
    value = value or ("tokens_per_s" if summary else "bound")
    if value not in allowed:
        raise unknown_name(f"value ({'summary' if summary else 'ops'} frame)", value, allowed)
    _check_axes(df, x, y)
    require_columns(df, [value, "phase", "spec_k"], "map")
    if facet is not None:
        if facet not in ENTITIES:
            raise unknown_name("facet (map)", facet, ENTITIES)
        require_columns(df, [facet], "map")
    check_one_value(_spread(df, facet), x, y, facet)
    keys, df = _panels(df, ops)
    if df.height == 0:
        raise SpecError("map: no rows left for the chosen ops")
    frames, ncols = _frames(df, keys, facet)
    binary = _BINARY.get(value)
    if binary:
        cmap, norm = ListedColormap(["#4c72b0", "#dd8452"]).with_extremes(bad="white"), None
    else:
        values = df.get_column(value)
        cmap, norm = plt.get_cmap("viridis").copy(), LogNorm(float(values.min()), float(values.max()))
    return _heatmaps(frames, x, y, value, label=_LABELS.get(value, value), cmap=cmap, norm=norm, binary=binary,
                     title=title or f"{value} over {x} × {y}" + (f", by {facet}" if facet else ""), ncols=ncols)


def ratio_map(a: pl.DataFrame, b: pl.DataFrame, *, x: str = "batch", y: str = "seq_len", value: str = "time_s",
              ops: Sequence[str] | None = None, title: str | None = None) -> Figure:
    """Heatmaps of ``a[value] / b[value]`` over the same grid (e.g. two accelerators' times).

    Rows are matched on every axis, phase and op; both frames must share their grid.
    Ratios above 1 mean ``a`` is larger (slower, for time).
    """
    for frame, name in ((a, "ratio map (a)"), (b, "ratio map (b)")):
        require_frame(frame, name)
    for frame in (a, b):
        _check_axes(frame, x, y)
        require_columns(frame, [value], "ratio map")
        check_one_value(_spread(frame, None), x, y, None)
    if ("op" in a.columns) != ("op" in b.columns):
        raise SpecError("ratio map: compare two long frames or two summary frames, not one of each")
    on = [c for c in (*AXES, "phase", "op") if c in a.columns]
    label_a = ", ".join(a.get_column("hardware").unique().cast(pl.String).to_list())
    label_b = ", ".join(b.get_column("hardware").unique().cast(pl.String).to_list())
    joined = (a.select(*on, "group", pl.col(value).alias("_a")) if "op" in a.columns
              else a.select(*on, pl.col(value).alias("_a"))).join(
        b.select(*on, pl.col(value).alias("_b")), on=on, how="inner", nulls_equal=True)
    if joined.height == 0:
        raise SpecError("ratio map: the two frames share no grid points")
    joined = joined.with_columns((pl.col("_a") / pl.col("_b")).alias("ratio"))
    keys, joined = _panels(joined, ops)
    frames, ncols = _frames(joined, keys, None)
    ratios = joined.get_column("ratio")
    spread = max(float(ratios.max()), 1 / float(ratios.min()), 1.01)
    cmap = plt.get_cmap("RdBu_r").copy()
    return _heatmaps(frames, x, y, "ratio", label=f"{value} ratio {label_a} / {label_b}", cmap=cmap,
                     norm=LogNorm(1 / spread, spread), binary=None,
                     title=title or f"{value}: {label_a} / {label_b}", ncols=ncols, ratio=True)
