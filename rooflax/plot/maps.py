"""Regime maps: heatmaps over two sweep axes of bound, attainable FLOP/s, time, tokens/s,
fits-in-memory, and the ratio of two accelerators' times."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib
import numpy as np
import polars as pl
from matplotlib.artist import Artist
from matplotlib.collections import LineCollection, PatchCollection
from matplotlib.colors import ListedColormap, LogNorm
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle
from matplotlib.ticker import FuncFormatter

from rooflax.config.hardware import HARDWARE
from rooflax.errors import SpecError, unknown_name
from rooflax.names import AXES, ENTITIES, LAYOUT
from rooflax.plot._common import (
    MATMUL_GROUPS,
    matching,
    model_label,
    number,
    require_columns,
    require_frame,
    swept,
    swept_line,
    tick_label,
)

__all__ = ["MAP_FACETS", "check_one_value", "ratio_map", "regime_map", "round_ticks"]

#: Columns a map can draw a set of panels per value of (a panel shows one of each entity and layout).
MAP_FACETS = (*ENTITIES, *LAYOUT)
#: Values a map can show, for long (ops) frames and summary frames.
OP_VALUES = ("bound", "attainable_flops", "time_s", "intensity", "achieved_flops", "achieved_time_s")
SUMMARY_VALUES = (
    "time_s",
    "tokens_per_s",
    "fits_in_memory",
    "memory_bytes",
    "intensity",
    "achieved_time_s",
    "achieved_tokens_per_s",
)
#: Values where a larger number means faster (the rest, times, mean slower).
_FASTER_WHEN_LARGER = ("attainable_flops", "achieved_flops", "tokens_per_s", "achieved_tokens_per_s")
#: Widest a map figure gets, in inches (2,000 px at the default 150 dpi of :func:`rooflax.plot.save`).
MAX_WIDTH_IN = 13.3
#: Most panels side by side on a map.
MAX_COLUMNS = 4
#: Most cells of a panel that get their number printed (ratio maps).
MAX_LABELLED_CELLS = 150
_LABELS = {
    "attainable_flops": "attainable FLOP/s",
    "time_s": "time (s)",
    "tokens_per_s": "tokens/s",
    "achieved_flops": "achieved FLOP/s",
    "achieved_time_s": "achieved time (s)",
    "achieved_tokens_per_s": "achieved tokens/s",
    "memory_bytes": "memory (bytes)",
    "intensity": "FLOP/byte",
}
_BINARY = {"bound": ("memory", "compute"), "fits_in_memory": ("does not fit", "fits")}


def _frames(df: pl.DataFrame, keys: list[str], facet: str | None) -> tuple[list[tuple[str, pl.DataFrame]], int]:
    """Panels named and in order (facet value, phase step, op), and the columns of the grid.

    A long frame gets a row per phase step (and facet value), a column per op; a summary
    frame puts each facet value's steps side by side, two facet values to a row when there
    are at most two steps.
    """
    frames = []
    for value in df.get_column(facet).unique(maintain_order=True) if facet else [None]:
        part = df if facet is None else df.filter(pl.col(facet) == value)
        order = part.select(keys).unique().with_columns(pl.col("phase").to_physical().alias("_p"))
        order = order.sort(["_p", "spec_k", *(k for k in ("layer", "op") if k in keys)]).drop("_p")
        for row in order.iter_rows(named=True):
            name = _step_name(row["phase"], row["spec_k"])
            name = f"{row['op']} · {name}" if "op" in row else name
            name = f"{row['layer']} {name}" if row.get("layer") is not None else name
            shown = f"{facet}={value}" if facet in LAYOUT else value
            frames.append(
                (name if facet is None else f"{shown} · {name}", part.filter(*matching(keys, [row[k] for k in keys])))
            )
    if "op" in keys:
        return frames, df.select(k for k in ("layer", "op") if k in keys).unique().height
    steps = df.select("phase", "spec_k").unique().height
    return frames, (steps * max(1, 4 // steps) if facet else 4)


def _spread(df: pl.DataFrame, facet: str | None) -> dict[str, list]:
    """The values of each entity and axis column within a panel (the widest one).

    ``hidden`` is counted within each model, as each model may have its own width.
    """
    out = {}
    for column in (*ENTITIES, *LAYOUT, *AXES):
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
        return f'--where "{column} = {f"{first!r}" if column in ENTITIES else first}"'

    shown = " and ".join(
        f"{len(v)} {c} values ({', '.join(map(str, v[:4]))}{', ...' if len(v) > 4 else ''})" for c, v in varying.items()
    )
    column, *rest = varying
    if rest:
        facets = [c for c in varying if c in MAP_FACETS and facet is None]
        selects = ", ".join(where(c) for c in varying if c not in facets[:1])
        fix = (
            f"draw a panel per value of one (--facet {facets[0]}) and select one value of the rest"
            if facets
            else "select one value of each"
        ) + f" ({selects})"
    elif column in MAP_FACETS and facet is None:
        fix = f"draw a panel per value (facet {column!r}, --facet {column}) or select one ({where(column)})"
    elif column in MAP_FACETS:
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
        if "layer" in df.columns and df.get_column("layer").n_unique() > 1:  # a panel per layer kind and op
            keys.append("layer")
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


def round_ticks(values: Sequence[int], most: int = 8) -> list[int]:
    """Indices of the axis values to label: every one when there are at most 12, else round ones.

    Round means a multiple of the step (1, 2 or 5 × 10^k, or a power of two) that labels
    the most values without passing ``most`` (the larger step on a tie), so an axis of
    128..4096 by 128 is labelled 512, 1024, ..., 4096 and 1..1024 by 1 is labelled 128,
    256, ..., 1024; an axis of powers of two gets every other value or sparser.

    >>> [v for v in range(128, 4097, 128) if range(128, 4097, 128).index(v) in round_ticks(range(128, 4097, 128))]
    [512, 1024, 1536, 2048, 2560, 3072, 3584, 4096]
    """
    values = list(values)
    if len(values) <= 12:
        return list(range(len(values)))
    if all(isinstance(v, int) and v > 0 and v & (v - 1) == 0 for v in values):
        return list(range(0, len(values), -(-len(values) // most)))
    best: list[int] = []
    steps = sorted({m * 10**e for m in (1, 2, 5) for e in range(9)} | {2**e for e in range(31)})
    for step in steps:
        picked = [i for i, v in enumerate(values) if v % step == 0]
        if 2 <= len(picked) <= most and len(picked) >= len(best):
            best = picked
    return best or list(range(0, len(values), -(-len(values) // most)))


def _ticks(ax, values: list, axis: str) -> None:
    positions = round_ticks(values)
    getattr(ax, f"set_{axis}ticks")(
        positions,
        [f"{values[i]:,}" for i in positions],
        fontsize=7,
        rotation=45 if axis == "x" and len(positions) > 8 else 0,
    )


def _boundary(matrix: np.ndarray) -> list[np.ndarray]:
    """Cell edges between compute (1) and memory (0) cells of a (y, x) matrix: the ridge as a line."""
    segments = []
    rows, cols = matrix.shape
    for j in range(rows):
        for i in range(cols):
            here = matrix[j, i]
            if np.isnan(here):
                continue
            if i + 1 < cols and not np.isnan(matrix[j, i + 1]) and matrix[j, i + 1] != here:
                segments.append(np.array([[i + 0.5, j - 0.5], [i + 0.5, j + 0.5]]))
            if j + 1 < rows and not np.isnan(matrix[j + 1, i]) and matrix[j + 1, i] != here:
                segments.append(np.array([[i - 0.5, j + 0.5], [i + 0.5, j + 0.5]]))
    return segments


def _hardware_label(name: str) -> str:
    return HARDWARE[name].label if name in HARDWARE else name


def _entities(df: pl.DataFrame) -> str:
    """``Llama 13B on A40``: display names of the models and accelerators of a frame."""
    hardware = ", ".join(map(_hardware_label, df.get_column("hardware").unique(maintain_order=True).cast(pl.String)))
    return f"{model_label(df, None)} on {hardware}"


def _step_name(phase: str, spec_k: int | None) -> str:
    return f"verify K={spec_k}" if phase == "verify" else phase


def _layout(n: int, ncols: int):
    """A grid of at most :data:`MAX_COLUMNS` panels across, at most :data:`MAX_WIDTH_IN` wide."""
    ncols = min(n, ncols, MAX_COLUMNS)
    nrows = -(-n // ncols)
    width = max(min(3.0 * ncols + 1.4, MAX_WIDTH_IN), 6.4)
    fig = Figure(figsize=(width, 2.7 * nrows + 0.9), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    return fig, axes


def _heatmaps(
    frames: list[tuple[str, pl.DataFrame]],
    x: str,
    y: str,
    value: str,
    *,
    label: str,
    cmap,
    norm,
    binary: tuple[str, str] | None,
    title: str,
    ncols: int,
    ratio: bool = False,
) -> Figure:
    xs = sorted({v for _, f in frames for v in f.get_column(x).to_list()})
    ys = sorted({v for _, f in frames for v in f.get_column(y).to_list()})
    fig, axes = _layout(len(frames), ncols)
    image = None
    hatched = bounded = False
    for ax, (name, panel) in zip(axes.flat, frames, strict=False):
        matrix = _grid(panel, x, y, value, xs, ys)
        image = ax.imshow(matrix, origin="lower", aspect="auto", cmap=cmap, norm=norm, interpolation="nearest")
        if "fits_in_memory" in panel.columns and value != "fits_in_memory":
            fits = _grid(panel, x, y, "fits_in_memory", xs, ys)
            cells = [Rectangle((i - 0.5, j - 0.5), 1, 1) for j, i in zip(*np.nonzero(fits == 0), strict=True)]
            if cells:
                hatched = True
                ax.add_collection(
                    PatchCollection(
                        cells, facecolor="none", edgecolor="white", hatch="///", linewidth=0, gid="does-not-fit"
                    )
                )
        if "bound" in panel.columns:
            edges = _boundary(_grid(panel, x, y, "bound", xs, ys))
            if edges:
                bounded = True
                ax.add_collection(LineCollection(edges, colors="black", linewidths=1.6, gid="boundary"))
        if ratio and matrix.size <= MAX_LABELLED_CELLS:
            for (j, i), v in np.ndenumerate(matrix):
                if not np.isnan(v):
                    ax.text(
                        i,
                        j,
                        f"{v:.2g}",
                        ha="center",
                        va="center",
                        fontsize=6.5,
                        gid="cell-value",
                        color="white" if abs(np.log(v)) > 0.6 * np.log(norm.vmax) else "black",
                    )
        ax.set_title(name, fontsize=9)
        ax.set_xlabel(x)
        ax.set_ylabel(y)
        _ticks(ax, xs, "x")
        _ticks(ax, ys, "y")
    keys: list[Artist] = []
    if binary:
        keys += [Patch(color=cmap(0), label=binary[0]), Patch(color=cmap(1), label=binary[1])]
    if bounded:
        keys.append(Line2D([], [], color="black", linewidth=1.6, label="memory | compute boundary"))
    if hatched:
        keys.append(Patch(facecolor="0.5", edgecolor="white", hatch="///", label="does not fit in memory"))
    if keys:
        fig.legend(handles=keys, loc="outside lower center", ncols=len(keys))
    if not binary:
        bar = fig.colorbar(image, ax=axes, label=label, shrink=0.9)
        if ratio:  # plain factors either side of 1
            lo, hi = norm.vmin, norm.vmax
            bar.set_ticks([t for t in (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100) if lo <= t <= hi])
            bar.ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            bar.ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
        else:
            bar.ax.yaxis.set_major_formatter(FuncFormatter(tick_label))
    fig.suptitle(title, fontsize=12)
    return fig


def _check_axes(df: pl.DataFrame, x: str, y: str) -> None:
    for axis, name in ((x, "x"), (y, "y")):
        if axis not in AXES:
            raise unknown_name(name, axis, AXES)
    if x == y:
        raise SpecError(f"map: x and y are both {x!r}; choose two different axes")
    require_columns(df, [x, y], "map")


def regime_map(
    df: pl.DataFrame,
    *,
    x: str = "batch",
    y: str = "seq_len",
    value: str | None = None,
    ops: Sequence[str] | None = None,
    facet: str | None = None,
    title: str | None = None,
) -> Figure:
    """Heatmaps of ``value`` over two axes, one panel per phase step (and op for long frames).

    Args:
        df: a long frame (values ``bound``, ``attainable_flops``, ``time_s``, ``intensity``;
            default ``bound``) or a summary frame (``time_s``, ``tokens_per_s``,
            ``fits_in_memory``, ``memory_bytes``, ``intensity``; default ``tokens_per_s``).
        x, y: the two axes (``batch``, ``seq_len``, ``hidden``, ``spec_k``); every other
            axis must hold one value in ``df``.
        value: the column shown (the defaults above).
        ops: ops to draw, for long frames (default: those of the matmul groups).
        facet: ``model``, ``hardware``, ``dtype``, ``tp``, ``pp`` or ``ep``: a set of panels per value (in frame
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
        if facet not in MAP_FACETS:
            raise unknown_name("facet (map)", facet, MAP_FACETS)
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
        cmap, norm = matplotlib.colormaps["viridis"].copy(), LogNorm(number(values.min()), number(values.max()))
    label = _LABELS.get(value, value)
    default = (
        f"{label.capitalize()} over {x} × {y}: {_entities(df)}"
        + (f", by {facet}" if facet else "")
        + f"\n{swept_line(swept(df), skip=(x, y))}"
    )
    return _heatmaps(
        frames, x, y, value, label=label, cmap=cmap, norm=norm, binary=binary, title=title or default, ncols=ncols
    )


def ratio_map(
    a: pl.DataFrame,
    b: pl.DataFrame,
    *,
    x: str = "batch",
    y: str = "seq_len",
    value: str = "time_s",
    ops: Sequence[str] | None = None,
    title: str | None = None,
) -> Figure:
    """Heatmaps of ``a[value] / b[value]`` over the same grid (e.g. two accelerators' times).

    Rows are matched on every axis, phase and op; both frames must share their grid.
    Ratios above 1 mean ``a`` is larger (slower, for time). The colour map diverges from
    white at 1 (red above, blue below, on a log scale symmetric about 1); panels of at
    most :data:`MAX_LABELLED_CELLS` cells print each ratio in its cell, and the title says
    which colour means which accelerator is faster.

    Args:
        a, b: two frames of the same kind (long or summary) over the same grid.
        x, y: the two axes (``batch``, ``seq_len``, ``hidden``, ``spec_k``).
        value: the column whose ratio is shown (default ``time_s``).
        ops: ops to draw, for long frames (default: those of the matmul groups).
        title: the figure title.
    """
    for frame, name in ((a, "ratio map (a)"), (b, "ratio map (b)")):
        require_frame(frame, name)
    for frame in (a, b):
        _check_axes(frame, x, y)
        require_columns(frame, [value], "ratio map")
        check_one_value(_spread(frame, None), x, y, None)
    if ("op" in a.columns) != ("op" in b.columns):
        raise SpecError("ratio map: compare two long frames or two summary frames, not one of each")
    on = [c for c in (*AXES, "phase", "layer", "op") if c in a.columns]
    label_a, label_b = (
        ", ".join(_hardware_label(h) for h in f.get_column("hardware").unique().cast(pl.String)) for f in (a, b)
    )
    joined = (
        a.select(*on, "group", pl.col(value).alias("_a"))
        if "op" in a.columns
        else a.select(*on, pl.col(value).alias("_a"))
    ).join(b.select(*on, pl.col(value).alias("_b")), on=on, how="inner", nulls_equal=True)
    if joined.height == 0:
        raise SpecError("ratio map: the two frames share no grid points")
    joined = joined.with_columns((pl.col("_a") / pl.col("_b")).alias("ratio"))
    keys, joined = _panels(joined, ops)
    frames, ncols = _frames(joined, keys, None)
    ratios = joined.get_column("ratio")
    spread = max(number(ratios.max()), 1 / number(ratios.min()), 1.01)
    cmap = matplotlib.colormaps["RdBu_r"].copy()  # diverging, white at 1: the log-symmetric norm puts 1 at its centre
    if value in _FASTER_WHEN_LARGER:
        meaning = f"red (> 1): {label_a} faster · blue (< 1): {label_b} faster"
    else:
        meaning = f"red (> 1): {label_b} faster · blue (< 1): {label_a} faster"
    name = _LABELS.get(value, value).replace(" (s)", "").capitalize()
    default = (
        f"{name} ratio {label_a} / {label_b}, {model_label(a, None)}\n{meaning}\n{swept_line(swept(a), skip=(x, y))}"
    )
    return _heatmaps(
        frames,
        x,
        y,
        "ratio",
        label=f"{value} ratio {label_a} / {label_b}",
        cmap=cmap,
        norm=LogNorm(1 / spread, spread),
        binary=None,
        title=title or default,
        ncols=ncols,
        ratio=True,
    )
