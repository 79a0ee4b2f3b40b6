"""Roofline charts: the reference chart, families coloured or connected along an axis,
several accelerators or dtype ceilings on one chart, and facets."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import polars as pl
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.colors import LogNorm, Normalize, to_rgb
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter

from rooflax.errors import SpecError, boolean, unknown_name
from rooflax.hardware import Hardware
from rooflax.models import Model
from rooflax.ops import GROUPS
from rooflax.plot._common import (
    MATMUL_GROUPS,
    compute_dtype,
    hardware_of,
    matching,
    model_label,
    reduce_points,
    require_columns,
    require_frame,
    series_label,
    si,
    si_log_axes,
    si_rate,
    summary_frame,
    swept,
    swept_line,
)

__all__ = ["bandwidth_label", "ceiling_label", "draw_ceilings", "family", "peak_label", "roofline", "series"]

AXES = ("batch", "seq_len", "hidden", "spec_k")
FACETS = ("phase", "group", "hardware", "dtype", "model", "tp", "pp", "ep")
#: Parallel degrees: each layout is its own point of an op (not joined to another layout's).
_LAYOUT = ("tp", "pp", "ep")
_NEEDED = ("model", "hardware", "dtype", "phase", "spec_k", "group", "intensity")
_MARKERS = ("x", "+", "^", "s", "D", "v", "o", "p", "h", "*")
#: Unfilled markers; the others are drawn hollow, so points beneath them show through.
_LINE_MARKERS = ("x", "+", "1", "2", "3", "4")
#: Marker area (pt²) of the first series drawn, and the factor each later one shrinks by
#: (down to :data:`_SMALLEST`). Earlier series are drawn larger and underneath, so points
#: at the same place show every series: the decode products of ``qkv mlp`` and
#: ``up/gate/down`` share their intensities, and prefill at batch 1 and length S runs
#: the same products as decode at batch S. Past ten series (shapes tell the phase steps
#: apart) the size steps down per op group instead.
_LARGEST, _SHRINK, _SMALLEST = 64.0, 1.45, 9.0


def _size(rank: int) -> float:
    return max(_LARGEST / _SHRINK**rank, _SMALLEST)


#: The hue of each op group when colour means the group (charts of more than ten series).
_GROUP_COLORS = {"qkv mlp": "tab:blue", "up/gate/down": "tab:green", "qk/pv": "tab:red",
                 "elementwise": "tab:purple", "lm_head": "tab:orange", "comm": "tab:brown"}
#: Most series a chart tells apart by colour alone; past it colour means the op group and
#: marker the phase step, with one legend entry per group and per step.
_MAX_COLORED = 10


def bandwidth_label(bytes_per_s: float) -> str:
    """``696GB/s``, ``3350GB/s``, ``20.5GB/s`` (see :func:`rooflax.plot._common.si_rate`)."""
    return si_rate(bytes_per_s, "B/s", space="")


def peak_label(flops: float, compute: str) -> str:
    """``149.7 TFLOP/s``, ``1307 TFLOP/s``, ``107.7 GFLOP/s`` (``OP/s`` for int8)."""
    return si_rate(flops, "OP/s" if compute == "int8" else "FLOP/s")


def series(sub: pl.DataFrame, multi: list[str]) -> list[tuple[tuple, str]]:
    """Series keys ``(group, phase, spec_k, *multi)`` in frame-enum order, with their labels."""
    keys = sub.select("group", "phase", "spec_k", *multi).unique()
    keys = keys.with_columns(pl.col("group").to_physical().alias("_g"), pl.col("phase").to_physical().alias("_p"))
    keys = keys.sort([*multi, "_g", "_p", "spec_k"], nulls_last=False)
    out = []
    for row in keys.iter_rows(named=True):
        label = series_label(row["group"], row["phase"], row["spec_k"])
        extra = " ".join(str(row[m]) for m in multi)
        out.append(((row["group"], row["phase"], row["spec_k"], *(row[m] for m in multi)),
                    f"{extra} {label}" if extra else label))
    return out


def ceiling_label(hw: Hardware, compute: str, *, with_compute: bool) -> str:
    """``H100 SXM: 3.35TB/s, 989.4 TFLOP/s, ridge 295`` for a legend."""
    name = f"{hw.label} {compute}" if with_compute else hw.label
    return (f"{name}: {bandwidth_label(hw.bandwidth_bytes_per_s)}, {peak_label(hw.peak(compute), compute)}, "
            f"ridge {hw.ridge(compute):.0f}")


def draw_ceilings(ax: Axes, hw: Hardware, compute: str, x_range: tuple[float, float], color, *,
                  prefix: str = "", labels: bool = True, label: str | None = None, linewidth: float = 1.4,
                  compute_linewidth: float | None = None) -> Line2D:
    """Dashed memory and compute ceilings of ``hw`` at ``compute``, ridge marked.

    With ``labels`` the figures are written on the lines (``696GB/s``, ``149.7 TFLOP/s``);
    otherwise ``label`` names the returned line for a legend. ``linewidth`` is the memory
    line's, ``compute_linewidth`` the compute line's (default the same).
    """
    peak, bandwidth = hw.peak(compute), hw.bandwidth_bytes_per_s
    ridge = peak / bandwidth
    lo, hi = x_range
    (memory,) = ax.plot([lo, ridge], [bandwidth * lo, peak], "--", color=color, linewidth=linewidth,
                        gid=f"ceiling-memory:{hw.name}", label=label or "_ceiling")
    ax.plot([ridge, hi], [peak, peak], "--", color=color, linewidth=compute_linewidth or linewidth,
            gid=f"ceiling-compute:{hw.name}:{compute}", label="_ceiling")
    ax.plot([ridge], [peak], "o", mfc="none", color=color, markersize=7, gid=f"ridge:{hw.name}:{compute}",
            label="_ridge")
    ax.axvline(ridge, linestyle=":", color=color, linewidth=0.8, alpha=0.6)
    if labels:
        ax.annotate(f"ridge {ridge:.0f}", (ridge, 0), xycoords=("data", "axes fraction"), textcoords="offset points",
                    xytext=(3, 4), fontsize=7, color=color)
        ax.text(hi / 1.3, peak * 1.12, prefix + peak_label(peak, compute), ha="right", va="bottom", fontsize=9,
                color=color, gid=f"label-compute:{hw.name}:{compute}")
        x_text = lo * 2.0
        p0, p1 = ax.transData.transform([(lo, bandwidth * lo), (ridge, peak)])
        angle = math.degrees(math.atan2(p1[1] - p0[1], p1[0] - p0[0]))
        ax.text(x_text, bandwidth * x_text * 1.35, prefix + bandwidth_label(bandwidth), rotation=angle,
                rotation_mode="anchor", fontsize=9, color=color, gid=f"label-memory:{hw.name}")
    return memory


def _shade(color, t: float) -> tuple:
    """``color`` mixed towards white (``t < 0``) or black (``t > 0``) by ``|t|``."""
    r, g, b = to_rgb(color)
    target = 0.0 if t > 0 else 1.0
    return tuple(c + (target - c) * abs(t) for c in (r, g, b))


def _steps(plain: list[tuple[tuple, str]]) -> list[tuple[str, int | None]]:
    """Phase steps ``(phase, spec_k)`` of the series, in order."""
    return list(dict.fromkeys((k[1], k[2]) for k, _ in plain))


def _step_label(phase: str, spec_k: int | None) -> str:
    return series_label("", phase, spec_k).strip()


def _scatter(ax: Axes, x, y, *, marker: str, size: float, rank: int, label: str, **color) -> object:
    """Points of one series: line markers in their colour, other markers hollow."""
    if marker not in _LINE_MARKERS and "color" in color:
        color = {"facecolors": "none", "edgecolors": color["color"]}
    return ax.scatter(x, y, marker=marker, s=size, linewidths=1.1, zorder=3 + 0.01 * rank, label=label, **color)


def _draw(ax: Axes, sub: pl.DataFrame, hardware: dict[str, Hardware], *, y: str, extra_dtypes: Sequence[str],
          color_by: str | None, connect: str | None, resolution: int, limits, norm, cmap,
          inside: bool) -> tuple[list, bool]:
    """Draw one panel. Colour means the series (one accelerator, at most ten series), the
    op group (more series; marker means the phase step), the accelerator (several), or
    the ``color_by`` axis (a family); marker means the series when colour does not.
    Returns the colour-bar mappables and whether the legend went outside the axes."""
    multi = [c for c in ("model", "hardware", "dtype") if sub.get_column(c).n_unique() > 1]
    entities = sub.select(multi).unique().sort(multi).rows() if multi else [()]
    by_entity = len(entities) > 1 and color_by is None
    plain = series(sub, [])
    compact = not by_entity and color_by is None and len(plain) > _MAX_COLORED
    keys = ["group", "phase", "spec_k", *multi]
    by = keys + ([color_by] if color_by and color_by not in keys else [])
    reduced = reduce_points(sub.lazy(), "intensity", y, by, resolution)
    ax.set_xlim(*limits[0])
    ax.set_ylim(*limits[1])
    ranks = {g: i for i, g in enumerate(dict.fromkeys(k[0] for k, _ in plain))}
    groups_only = compact or len(plain) > _MAX_COLORED
    steps = _steps(plain)

    ceilings = []
    for hw in hardware.values():
        present = sub.filter(pl.col("hardware") == hw.name).get_column("dtype").unique().cast(pl.String)
        for compute in dict.fromkeys([*(compute_dtype(d) for d in sorted(present)),
                                      *(d for d in extra_dtypes if d in hw.dtypes)]):
            ceilings.append((hw, compute))
    entity_color = {e: plt.get_cmap("tab10" if len(entities) <= 10 else "tab20").colors[i % 20]
                    for i, e in enumerate(entities)}
    several_computes = len({c for _, c in ceilings}) > 1
    ceiling_handles = []
    for n, (hw, compute) in enumerate(ceilings):
        color = "0.15"
        if by_entity and "hardware" in multi:
            color = next(entity_color[e] for e in entities if dict(zip(multi, e, strict=True))["hardware"] == hw.name)
        elif n:
            color = ("tab:red", "tab:purple", "tab:brown", "tab:olive", "tab:cyan")[(n - 1) % 5]
        single = len(ceilings) == 1
        # a roof that coincides with roofs drawn after it is drawn wider, by 1.2 pt per later one, so each shows
        later = ceilings[n + 1:]
        same_memory = sum(h.bandwidth_bytes_per_s == hw.bandwidth_bytes_per_s for h, _ in later)
        same_peak = sum(h.peak(c) == hw.peak(compute) for h, c in later)
        label = None if single else ceiling_label(hw, compute, with_compute=several_computes)
        prefix = f"{compute} " if several_computes else ""
        draw_ceilings(ax, hw, compute, limits[0], color, labels=single, prefix=prefix, label=label,
                      linewidth=1.4 + 1.2 * same_memory, compute_linewidth=1.4 + 1.2 * same_peak)
        if not single:
            ceiling_handles.append(Line2D([], [], color=color, linestyle="--", linewidth=1.6, label=label))

    mappables, handles = [], []
    per_series = connect not in (None, "spec_k")
    if connect == "spec_k":  # each K is a series of its own: the lines join verify steps across series
        _connect(ax, sub, connect, "0.45", y)
    if color_by:
        for i, (key, label) in enumerate(series(sub, multi)):
            points = reduced.filter(*matching(keys, key))
            if per_series:
                _connect(ax, sub.filter(*matching(keys, key)), connect, "0.45", y)
            mappables.append(ax.scatter(points.get_column("intensity").to_numpy(), points.get_column(y).to_numpy(),
                                        c=points.get_column(color_by).to_numpy(), cmap=cmap, norm=norm,
                                        marker=_MARKERS[i % len(_MARKERS)], s=_size(ranks[key[0]]),
                                        linewidths=1.1, zorder=3 + 0.01 * ranks[key[0]], label=label))
        handles = mappables
    else:
        for e in entities:
            for i, (key, label) in enumerate(plain):
                rank = ranks[key[0]] if groups_only else i
                step = steps.index((key[1], key[2]))
                if by_entity:
                    color, marker = entity_color[e], _MARKERS[i % len(_MARKERS)]
                elif compact:
                    t = 0.35 * (2 * step / max(len(steps) - 1, 1) - 1)  # lighter early steps, darker large K
                    color, marker = _shade(_GROUP_COLORS.get(key[0], "0.3"), t), _MARKERS[step % len(_MARKERS)]
                else:
                    color, marker = plt.get_cmap("tab10").colors[i % 10], "x"
                where = matching(keys, (*key, *e))
                if per_series:
                    _connect(ax, sub.filter(*where), connect, color, y)
                points = reduced.filter(*where)
                handle = _scatter(ax, points.get_column("intensity").to_numpy(), points.get_column(y).to_numpy(),
                                  marker=marker, size=_size(rank), rank=rank, color=color,
                                  label=label if not by_entity else f"_{label}")
                if not by_entity and not compact:
                    handles.append(handle)
        if by_entity:
            handles = [Line2D([], [], linestyle="none", marker=_MARKERS[i % len(_MARKERS)], color="0.3", mfc="none",
                              label=label) for i, (_, label) in enumerate(plain)]
            names = {"hardware": lambda v: hardware[v].label if v in hardware else v}
            if "hardware" not in multi or len(ceilings) != len(entities):
                ceiling_handles = [Line2D([], [], color=entity_color[e], linewidth=6, label=" ".join(
                    names.get(m, str)(v) for m, v in zip(multi, e, strict=True))) for e in entities] + ceiling_handles
        elif compact:
            handles = [Line2D([], [], linestyle="none", marker="s", markersize=8, color=_GROUP_COLORS.get(g, "0.3"),
                              label=g) for g in ranks]
            handles += [Line2D([], [], linestyle="none", marker=_MARKERS[j % len(_MARKERS)], color="0.25", mfc="none",
                               label=_step_label(*step)) for j, step in enumerate(steps)]

    handles = handles + ceiling_handles
    outside = not inside and (len(handles) > 8 or bool(ceiling_handles))
    place = dict(loc="upper left", bbox_to_anchor=(1.01, 1.0)) if outside else dict(loc="lower right")
    ax.legend(handles=handles, fontsize=8, framealpha=0.9, **place)
    ax.set_xlim(*limits[0])
    ax.set_ylim(*limits[1])
    return mappables[:1], outside


def _connect(ax: Axes, points: pl.DataFrame, axis: str, color, y: str) -> None:
    """Lines through each op's points along ``axis``, every other coordinate held, above the roof."""
    others = [c for c in ("model", "hardware", "dtype", "phase", "op", *AXES, *_LAYOUT)
              if c != axis and c in points.columns]
    lines = (points.filter(pl.col(axis).is_not_null()).sort(axis).group_by(others, maintain_order=True)
             .agg(pl.col("intensity"), pl.col(y)))
    if lines.height > 5000:
        raise SpecError(f"connect: {lines.height} lines along {axis!r} is too many to read; "
                        "narrow the frame first (--where)")
    segments = [np.column_stack([a.to_numpy(), b.to_numpy()]) for a, b in
                zip(lines.get_column("intensity"), lines.get_column(y), strict=True) if len(a) > 1]
    ax.add_collection(LineCollection(segments, colors=[color], linewidths=0.7, alpha=0.6, zorder=2.5,
                                     gid=f"connect:{axis}"))


def _collect(lf: pl.LazyFrame, groups: Sequence[str], y: str, color_by: str | None, connect: str | None,
             resolution: int, facet: str | None) -> pl.DataFrame:
    """Collect a lazy dataset for a chart, reducing points on the way unless lines are drawn."""
    names = lf.collect_schema().names()
    for column in (*_NEEDED, y, *(c for c in (color_by, connect) if c)):
        if column not in names:
            raise _missing(column, names)
    lf = lf.filter(pl.col("group").cast(pl.String).is_in(list(groups)))
    if connect:
        coordinates = (a for a in (*AXES, *_LAYOUT) if a in names and a not in _NEEDED)
        return lf.select(*_NEEDED, y, "op", *coordinates).collect()
    by = ["model", "hardware", "dtype", "phase", "spec_k", "group"]
    by += [c for c in dict.fromkeys((color_by, facet)) if c and c not in by]
    return reduce_points(lf, "intensity", y, by, resolution).drop("count")


def _missing(column: str, names: Sequence[str]) -> SpecError:
    if "tokens_per_s" in names:
        return summary_frame("roofline")
    if column == "achieved_flops":
        return SpecError("roofline: the frame has no 'achieved_flops' column (it predates achieved performance); "
                         "draw its points on the roof with ideal=True (--ideal), or sweep it again")
    return unknown_name("roofline", column, names, what="column")


def _title(sub: pl.DataFrame, info: Mapping[str, object], hw_all: Mapping[str, Hardware],
           models: Mapping[str, Model] | None, ideal: bool) -> str:
    """``Roofline Model (Llama 13B, A40)`` over a line saying what was swept and how points sit."""
    model = model_label(sub, models)
    if info.get("hidden_varies"):
        model = f"{model} scaled to hidden {info['hidden']}"
    hardware = ", ".join(hw.label for hw in hw_all.values())
    where = "ideal (on the roof)" if ideal else "achieved (predicted)"
    skip = ("hidden",) if info.get("hidden_varies") else ()
    lines, line = [f"Roofline Model ({model}, {hardware})"], ""
    for part in [*filter(None, swept_line(info, skip=skip).split(" · ")), where]:
        if line and len(line) + len(part) > 80:
            lines.append(line)
            line = part
        else:
            line = f"{line} · {part}" if line else part
    return "\n".join([*lines, line])


def family(df: pl.DataFrame | pl.LazyFrame, *, along: str, connect: str | None = None, **options) -> Figure:
    """A roofline family: points coloured by ``along`` and joined by lines along it.

    Each line follows one op as ``along`` grows, every other coordinate held, drawn above
    the roof lines, so the family's path shows even where it runs along the roof
    (``ideal=True``). ``connect`` joins along another axis instead; ``options`` are those
    of :func:`roofline`.
    """
    return roofline(df, color_by=along, connect=connect or along, **options)


def roofline(df: pl.DataFrame | pl.LazyFrame, *, groups: Sequence[str] = MATMUL_GROUPS, color_by: str | None = None,
             connect: str | None = None, facet: str | None = None, dtypes: Sequence[str] = (),
             hardware: Mapping[str, Hardware] | None = None, models: Mapping[str, Model] | None = None,
             title: str | None = None, resolution: int = 400, ideal: bool = False) -> Figure:
    """A roofline chart of a long sweep frame.

    One series per op group and phase (``qkv mlp init``, ``qk/pv ar``,
    ``up/gate/down spec: 16``; prefixed with the hardware, dtype or model when the frame
    holds several), drawn with ``x`` markers over the dashed memory and compute ceilings
    of every accelerator in the frame, with the ridge marked. Points are the predicted
    *achieved* FLOP/s (``achieved_flops``, below the roof, where a real device puts them)
    unless ``ideal``; the y axis reaches down to the lowest point. Later op groups are
    drawn smaller and on top, so points that coincide show every series; past ten series
    colour means the op group and the marker the phase step, with a compact legend. The
    title says what was swept (dtypes, KV dtype, axis ranges, fused attention).

    Args:
        df: a long frame (``rooflax.sweep``), or a LazyFrame of a dataset (reduced as it
            is collected, so datasets larger than memory can be drawn).
        groups: op groups to draw; all of :data:`rooflax.ops.GROUPS` for every op. The
            ``comm`` group (collectives: no FLOPs) is left out here and drawn against the
            interconnect roof by :func:`rooflax.plot.interconnect`.
        color_by: colour points by this axis (``batch``, ``seq_len``, ``hidden``,
            ``spec_k``), with a colour bar: a roofline family.
        connect: join each op's points along this axis (every other coordinate held),
            showing how it moves: one line per series, op and value of the other axes,
            in the series' colour (``spec_k``: grey lines across the verify series).
        facet: one panel per value of ``phase``, ``group``, ``hardware``, ``dtype``, ``model``,
            or a parallel degree ``tp``, ``pp``, ``ep`` (rows are per device).
        dtypes: extra compute ceilings to draw (``fp8``, ``int8``, ...).
        hardware: descriptions of accelerators that are not presets, by name.
        models: descriptions of models that are not presets (for the title).
        title: replaces ``Roofline Model (MODEL, HARDWARE)``.
        resolution: cells per decade for point reduction. Points that fall in the same
            cell of a ``resolution × resolution``-per-decade log grid (at the default,
            well under a pixel) are drawn once per series (and colour value); every
            series keeps at least one point, so none is dropped.
        ideal: draw the points on the roof (``attainable_flops``), as the ideal model
            has them, instead of achieved.

    Returns:
        A matplotlib Figure.
    """
    ideal = boolean("ideal", ideal)
    require_frame(df, "roofline", lazy=True)
    if isinstance(groups, str):
        raise SpecError(f"groups: expected a list of group names, got the string {groups!r}")
    for group in groups:
        if group not in GROUPS:
            raise unknown_name("groups", group, GROUPS)
    groups = [g for g in groups if g != "comm"]
    if facet is not None and facet not in FACETS:
        raise unknown_name("facet", facet, FACETS)
    y = "attainable_flops" if ideal else "achieved_flops"
    has = set(df.collect_schema().names())
    info = swept(df.filter(pl.col("group").cast(pl.String).is_in(list(groups)))) if {"group", "dtype"} <= has else {}
    if isinstance(df, pl.LazyFrame):
        df = _collect(df, groups, y, color_by, connect, resolution, facet)
    if y not in df.columns:
        raise _missing(y, df.columns)
    require_columns(df, (*_NEEDED, y), "roofline")
    for axis, what in ((color_by, "color_by"), (connect, "connect")):
        if axis is not None:
            if axis not in AXES:
                raise unknown_name(what, axis, AXES)
            require_columns(df, [axis, "op"] if what == "connect" else [axis], what)
    if facet is not None:
        require_columns(df, [facet], "facet")
    sub = df.filter(pl.col("group").cast(pl.String).is_in(list(groups)))
    if sub.height == 0:
        raise SpecError(f"roofline: no rows in groups {list(groups)!r}")
    if color_by and sub.get_column(color_by).null_count() == sub.height:
        raise SpecError(f"color_by: column {color_by!r} is null everywhere in the selection")
    hw_all = hardware_of(sub, hardware)
    xs, ys = sub.get_column("intensity"), sub.get_column(y)
    computes = [compute_dtype(d) for d in sub.get_column("dtype").unique().cast(pl.String)]
    peaks = [hw.peak(c) for hw in hw_all.values() for c in computes]
    peaks += [hw.peak(d) for hw in hw_all.values() for d in dtypes if d in hw.dtypes]
    ridges = [hw.ridge(c) for hw in hw_all.values() for c in computes]
    x_lo, x_hi = min(xs.min(), *ridges) / 2, max(xs.max(), *ridges) * 4
    y_lo, y_hi = 10 ** math.floor(math.log10(min(ys.min(), min(peaks)) / 1.5)), max(peaks) * 3
    limits = ((x_lo, x_hi), (y_lo, y_hi))
    norm = cmap = None
    if color_by:
        values = sub.get_column(color_by).drop_nulls()
        lo, hi = float(values.min()), float(values.max())
        norm = LogNorm(lo, hi) if lo > 0 and hi / lo >= 10 else Normalize(lo, hi)
        cmap = "viridis"

    if facet:
        order = sub.get_column(facet).unique(maintain_order=True)
        if facet in ("phase", "group", *_LAYOUT):
            order = order.sort()
        panels = [(str(v), sub.filter(pl.col(facet) == v)) for v in order]
    else:
        panels = [(None, sub)]
    ncols = min(len(panels), 3)
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(8.5 * ncols if ncols == 1 else 6.2 * ncols, 6.2 * nrows),
                             squeeze=False, layout="constrained")
    mappables = []
    for ax, (name, panel) in zip(axes.flat, panels, strict=False):
        si_log_axes(ax)
        drawn, outside = _draw(ax, panel, hardware_of(panel, hw_all), y=y, extra_dtypes=dtypes, color_by=color_by,
                           connect=connect, resolution=resolution, limits=limits, norm=norm, cmap=cmap,
                           inside=len(panels) > 1)
        mappables += drawn
        if outside:  # room for the legend beside the axes
            fig.set_figwidth(8.5 + 3.5)
        ax.set_xlabel("Operational Intensity (FLOP/Byte)")
        ax.set_ylabel("Performance (FLOP/s)")
        if name is not None:
            ax.set_title(f"{facet}: {name}", fontsize=10)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    if color_by and mappables:
        bar = fig.colorbar(mappables[0], ax=axes, label=color_by, shrink=0.9)
        bar.ax.yaxis.set_major_formatter(FuncFormatter(si))
    fig.suptitle(title or _title(sub, info, hw_all, models, ideal), fontsize=12)
    return fig

