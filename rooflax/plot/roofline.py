"""Roofline charts: the reference chart, families coloured or connected along an axis,
several accelerators or dtype ceilings on one chart, and facets."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib
import numpy as np
import polars as pl
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.collections import LineCollection
from matplotlib.colors import LogNorm, Normalize, to_rgb
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.typing import ColorType

from rooflax.config.hardware import Hardware
from rooflax.config.models import Model
from rooflax.cost.ops import TERMS_GROUP
from rooflax.errors import SpecError, boolean, unknown_name
from rooflax.names import AXES, ENTITIES, FACETS, GROUPS, LAYOUT
from rooflax.plot._common import (
    MATMUL_GROUPS,
    compute_dtype,
    decade_below,
    decade_limits,
    hardware_of,
    label_values,
    layer_style,
    layers,
    matching,
    model_label,
    number,
    palette,
    reduce_points,
    require_columns,
    require_frame,
    series_label,
    si_log_axes,
    summary_frame,
    swept,
    swept_line,
)
from rooflax.units import si

__all__ = ["bandwidth_label", "ceiling_label", "draw_ceilings", "family", "peak_label", "roofline", "series"]

_NEEDED = ("model", "hardware", "dtype", "phase", "spec_k", "group", "intensity")
_MARKERS = ("x", "+", "^", "s", "D", "v", "o", "p", "h", "*")
#: Unfilled markers; the others are drawn hollow, so points beneath them show through.
_LINE_MARKERS = ("x", "+", "1", "2", "3", "4")
#: The hue of each op group when colour means the group (charts of more than ten series).
_GROUP_COLORS = {
    "qkv mlp": "tab:blue",
    "up/gate/down": "tab:green",
    "qk/pv": "tab:red",
    "elementwise": "tab:purple",
    "lm_head": "tab:orange",
    "comm": "tab:brown",
}
#: Most series a chart tells apart by colour alone; past it colour means the op group and
#: marker the phase step, with one legend entry per group and per step.
_MAX_COLORED = 10


def bandwidth_label(bytes_per_s: float) -> str:
    """``696GB/s``, ``3350GB/s``, ``20.5GB/s``: four digits, at least two before the point."""
    return si(bytes_per_s, ".4g", unit="B/s", headroom=10, lowest="k")


def peak_label(flops: float, compute: str) -> str:
    """``149.7 TFLOP/s``, ``1307 TFLOP/s``, ``107.7 GFLOP/s`` (``OP/s`` for int8)."""
    return si(flops, ".4g", unit="OP/s" if compute == "int8" else "FLOP/s", space=" ", headroom=10, lowest="k")


def series(sub: pl.DataFrame, multi: list[str]) -> list[tuple[tuple, str]]:
    """Series keys ``(group, phase, spec_k, *multi)`` in frame-enum order, with their labels."""
    keys = sub.select("group", "phase", "spec_k", *multi).unique()
    keys = keys.with_columns(pl.col("group").to_physical().alias("_g"), pl.col("phase").to_physical().alias("_p"))
    keys = keys.sort([*multi, "_g", "_p", "spec_k"], nulls_last=False)
    out = []
    for row in keys.iter_rows(named=True):
        label = series_label(row["group"], row["phase"], row["spec_k"])
        extra = " ".join(str(row[m]) for m in multi)
        out.append(
            (
                (row["group"], row["phase"], row["spec_k"], *(row[m] for m in multi)),
                f"{extra} {label}" if extra else label,
            )
        )
    return out


def ceiling_label(hw: Hardware, compute: str, *, with_compute: bool) -> str:
    """``H100 SXM: 3.35TB/s, 989.4 TFLOP/s, ridge 295`` for a legend."""
    name = f"{hw.label} {compute}" if with_compute else hw.label
    return (
        f"{name}: {bandwidth_label(hw.bandwidth_bytes_per_s)}, {peak_label(hw.peak(compute), compute)}, "
        f"ridge {hw.ridge(compute):.0f}"
    )


#: The reference's ceilings: the memory roof blue, the compute roof red, both dashed.
MEMORY_COLOR, COMPUTE_COLOR = "tab:blue", "tab:red"


def draw_ceilings(
    ax: Axes,
    hw: Hardware,
    compute: str,
    x_range: tuple[float, float],
    color=None,
    *,
    prefix: str = "",
    label: str | None = None,
    ridge: bool = False,
    linewidth: float = 1.4,
    compute_linewidth: float | None = None,
) -> tuple[Line2D, Line2D]:
    """Dashed memory and compute ceilings of ``hw`` at ``compute``.

    Without ``color`` they are drawn as the reference draws them: the memory ceiling blue
    and the compute ceiling red, each named for the legend by its figure (``696GB/s``,
    ``149.7 TFLOP/s``, after ``prefix``). With ``color`` (one roof among several) both take
    it and ``label``, if given, names the memory line for the legend. ``ridge`` marks the
    ridge: a circle, a dotted vertical line, and ``ridge 215`` above the roof left of the
    ridge, where no point and no legend (lower right) sits. ``linewidth`` is the memory
    line's, ``compute_linewidth`` the compute line's (default the same).

    Returns:
        The memory and the compute line.
    """
    peak, bandwidth = hw.peak(compute), hw.bandwidth_bytes_per_s
    ridge_x = peak / bandwidth
    lo, hi = x_range
    if color is None:
        colors = (MEMORY_COLOR, COMPUTE_COLOR)
        labels = (prefix + bandwidth_label(bandwidth), prefix + peak_label(peak, compute))
    else:
        colors, labels = (color, color), (label or "_ceiling", "_ceiling")
    (memory,) = ax.plot(
        [lo, ridge_x],
        [bandwidth * lo, peak],
        "--",
        color=colors[0],
        linewidth=linewidth,
        gid=f"ceiling-memory:{hw.name}",
        label=labels[0],
    )
    (top,) = ax.plot(
        [ridge_x, hi],
        [peak, peak],
        "--",
        color=colors[1],
        linewidth=compute_linewidth or linewidth,
        gid=f"ceiling-compute:{hw.name}:{compute}",
        label=labels[1],
    )
    if ridge:
        mark = color or "0.15"
        ax.plot(
            [ridge_x],
            [peak],
            "o",
            mfc="none",
            color=mark,
            markersize=7,
            gid=f"ridge:{hw.name}:{compute}",
            label="_ridge",
        )
        ax.axvline(ridge_x, linestyle=":", color=mark, linewidth=0.8, alpha=0.6, gid=f"ridge-line:{hw.name}:{compute}")
        ax.annotate(
            f"{prefix}ridge {ridge_x:.0f}",
            (ridge_x, peak),
            textcoords="offset points",
            xytext=(-6, 5),
            ha="right",
            va="bottom",
            fontsize=8,
            color=mark,
            gid=f"label-ridge:{hw.name}:{compute}",
        )
    return memory, top


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


def _legend_marker(marker: str, color, label: str, *, filled: bool = False) -> Line2D:
    """A legend entry for a series: its marker as drawn where nothing covers it (hollow unless ``filled``)."""
    size, width = (float(v) for v in layer_style(0))
    hollow = marker not in _LINE_MARKERS and not filled
    return Line2D(
        [],
        [],
        linestyle="none",
        marker=marker,
        markersize=math.sqrt(size),
        markeredgewidth=width,
        color=color,
        mfc="none" if hollow else color,
        label=label,
    )


def _band_bars(
    ax: Axes, points: pl.DataFrame, x: np.ndarray, v: np.ndarray, hardware: dict[str, Hardware], color: str
) -> None:
    """Each achieved point's error band as a vertical bar: FLOP/s over the time band ``[t·band_low, t·band_high]``
    of its terms group and phase (the preset's fit, :mod:`rooflax.calibration.fit`); none where there is no band."""
    names = points.get_column("hardware").cast(pl.String) if "hardware" in points.columns else None
    only = next(iter(hardware.values())) if len(hardware) == 1 else None
    low, high = np.full(len(v), np.nan), np.full(len(v), np.nan)
    groups = points.get_column("group").cast(pl.String)
    if "op" in points.columns:  # a routed expert's band is the moe kernel's (its terms group), not its chart group's
        ops = points.get_column("op").cast(pl.String)
        groups = pl.Series([TERMS_GROUP.get(op, group) for op, group in zip(ops, groups, strict=True)])
    for j, (group, phase) in enumerate(zip(groups, points.get_column("phase").cast(pl.String), strict=True)):
        hw = hardware.get(names[j]) if names is not None else only
        if hw is not None:
            terms = hw.terms(group, phase)
            low[j], high[j] = terms["band_low"], terms["band_high"]
    shown = np.isfinite(low) & np.isfinite(high)
    if shown.any():
        at, fast, slow = v[shown], v[shown] / low[shown], v[shown] / high[shown]
        bars = ax.errorbar(
            x[shown],
            at,
            yerr=[at - slow, fast - at],
            fmt="none",
            ecolor=color,
            elinewidth=0.8,
            alpha=0.55,
            capsize=0,
            zorder=2,
            clip_on=False,
        )
        for collection in bars.lines[2]:
            collection.set_gid("band")


def _draw(
    ax: Axes,
    sub: pl.DataFrame,
    hardware: dict[str, Hardware],
    *,
    y: str,
    extra_dtypes: Sequence[str],
    color_by: str | None,
    connect: str | None,
    resolution: int,
    limits,
    norm,
    cmap,
    inside: bool,
    ridge: bool,
) -> bool:
    """Draw one panel. Colour means the series (one accelerator, at most ten series), the
    op group (more series; marker means the phase step), the accelerator (several), or
    the ``color_by`` axis (a family); marker means the series when colour does not.
    Series that coincide are layered (:func:`rooflax.plot._common.layers`): each one
    drawn under others is larger and wider-edged, so every series shows where it is.
    Returns whether the legend went outside the axes."""
    multi = [c for c in ENTITIES if sub.get_column(c).n_unique() > 1]
    entities = sub.select(multi).unique().sort(multi).rows() if multi else [()]
    by_entity = len(entities) > 1 and color_by is None
    plain = series(sub, [])
    compact = not by_entity and color_by is None and len(plain) > _MAX_COLORED
    keys = ["group", "phase", "spec_k", *multi]
    by = keys + ([color_by] if color_by and color_by not in keys else [])
    reduced = reduce_points(sub.lazy(), "intensity", y, by, resolution)
    ax.set_xlim(*limits[0])
    ax.set_ylim(*limits[1])
    groups = list(dict.fromkeys(k[0] for k, _ in plain))
    steps = _steps(plain)

    ceilings = []
    for hw in hardware.values():
        present = sub.filter(pl.col("hardware") == hw.name).get_column("dtype").unique().cast(pl.String)
        for compute in dict.fromkeys(
            [*(compute_dtype(d) for d in sorted(present)), *(d for d in extra_dtypes if d in hw.dtypes)]
        ):
            ceilings.append((hw, compute))
    entity_color = {e: palette("tab10" if len(entities) <= 10 else "tab20")[i % 20] for i, e in enumerate(entities)}
    several_computes = len({c for _, c in ceilings}) > 1
    ceiling_handles: list[Artist] = []
    roof_handles: list[Artist] = []
    for n, (hw, compute) in enumerate(ceilings):
        if len(ceilings) == 1:  # the reference's roof: blue and red, in the legend by their figures
            roof_handles += draw_ceilings(ax, hw, compute, limits[0], ridge=ridge)
            continue
        color: ColorType = "0.15"
        if by_entity and "hardware" in multi:
            color = next(entity_color[e] for e in entities if dict(zip(multi, e, strict=True))["hardware"] == hw.name)
        elif n:
            color = ("tab:red", "tab:purple", "tab:brown", "tab:olive", "tab:cyan")[(n - 1) % 5]
        # a roof that coincides with roofs drawn after it is drawn wider, by 1.2 pt per later one, so each shows
        later = ceilings[n + 1 :]
        same_memory = sum(h.bandwidth_bytes_per_s == hw.bandwidth_bytes_per_s for h, _ in later)
        same_peak = sum(h.peak(c) == hw.peak(compute) for h, c in later)
        label = ceiling_label(hw, compute, with_compute=several_computes)
        draw_ceilings(
            ax,
            hw,
            compute,
            limits[0],
            color,
            prefix=f"{compute} " if several_computes else "",
            label=label,
            ridge=ridge,
            linewidth=1.4 + 1.2 * same_memory,
            compute_linewidth=1.4 + 1.2 * same_peak,
        )
        ceiling_handles.append(Line2D([], [], color=color, linestyle="--", linewidth=1.6, label=label))

    per_series = connect not in (None, "spec_k")
    if connect == "spec_k":  # each K is a series of its own: the lines join verify steps across series
        _connect(ax, sub, connect, "0.45", y)
    drawn: list[tuple[pl.DataFrame, str, dict[str, Any]]] = []  # (points, label, style) in drawing order; drawn
    # once every layer is known
    handles: list[Artist] = []
    if color_by:
        for i, (key, label) in enumerate(series(sub, multi)):
            if connect is not None and per_series:
                _connect(ax, sub.filter(*matching(keys, key)), connect, "0.45", y)
            marker = _MARKERS[i % len(_MARKERS)]
            drawn.append((reduced.filter(*matching(keys, key)), label, dict(marker=marker, color_by=True)))
            handles.append(_legend_marker(marker, "0.3", label, filled=True))
    else:
        for e in entities:
            for i, (key, label) in enumerate(plain):
                step = steps.index((key[1], key[2]))
                if by_entity:
                    color, marker = entity_color[e], _MARKERS[i % len(_MARKERS)]
                elif compact:
                    t = 0.35 * (2 * step / max(len(steps) - 1, 1) - 1)  # lighter early steps, darker large K
                    color, marker = _shade(_GROUP_COLORS.get(key[0], "0.3"), t), _MARKERS[step % len(_MARKERS)]
                else:
                    color, marker = palette("tab10")[i % 10], "x"
                where = matching(keys, (*key, *e))
                if connect is not None and per_series:
                    _connect(ax, sub.filter(*where), connect, color, y)
                drawn.append(
                    (reduced.filter(*where), label if not by_entity else f"_{label}", dict(marker=marker, color=color))
                )
                if not by_entity and not compact:
                    handles.append(_legend_marker(marker, color, label))
        if by_entity:
            handles = [_legend_marker(_MARKERS[i % len(_MARKERS)], "0.3", label) for i, (_, label) in enumerate(plain)]
            names = {"hardware": lambda v: hardware[v].label if v in hardware else v}
            if "hardware" not in multi or len(ceilings) != len(entities):
                ceiling_handles = [
                    Line2D(
                        [],
                        [],
                        color=entity_color[e],
                        linewidth=6,
                        label=" ".join(names.get(m, str)(v) for m, v in zip(multi, e, strict=True)),
                    )
                    for e in entities
                ] + ceiling_handles
        elif compact:
            handles = [
                Line2D([], [], linestyle="none", marker="s", markersize=8, color=_GROUP_COLORS.get(g, "0.3"), label=g)
                for g in groups
            ]
            handles += [
                _legend_marker(_MARKERS[j % len(_MARKERS)], "0.25", _step_label(*step)) for j, step in enumerate(steps)
            ]

    points = [(p.get_column("intensity").to_numpy(), p.get_column(y).to_numpy()) for p, _, _ in drawn]
    for i, ((x, v), (_, label, style), layer) in enumerate(zip(points, drawn, layers(points), strict=True)):
        marker = style["marker"]
        size, width = layer_style(layer, hollow=not style.get("color_by") and marker not in _LINE_MARKERS)
        if color_by and style.get("color_by"):
            # points without a value (prefill and decode of a spec_k family) in the colour map's grey, not dropped
            look = dict(c=cmap(norm(drawn[i][0].get_column(color_by).cast(pl.Float64).to_numpy())))
        elif marker in _LINE_MARKERS:
            look = dict(color=style["color"])
        else:  # hollow, so points beneath show through
            look = dict(facecolors="none", edgecolors=style["color"])
        # unclipped: a point a pixel past the decade the axis ends at shows whole at its edge
        ax.scatter(
            x,
            v,
            marker=marker,
            s=size,
            linewidths=width,
            zorder=3 + i / (len(drawn) + 1),
            label=label,
            clip_on=False,
            **look,
        )
        if y == "achieved_flops":
            _band_bars(ax, drawn[i][0], x, v, hardware, style.get("color", "0.4"))

    handles = roof_handles + handles + ceiling_handles
    outside = not inside and (len(handles) - len(roof_handles) > 8 or bool(ceiling_handles))
    place = dict(loc="upper left", bbox_to_anchor=(1.01, 1.0)) if outside else dict(loc="lower right")
    ax.legend(handles=handles, fontsize=8, framealpha=0.9, **place)
    ax.set_xlim(*limits[0])
    ax.set_ylim(*limits[1])
    return outside


def _connect(ax: Axes, points: pl.DataFrame, axis: str, color, y: str) -> None:
    """Lines through each op's points along ``axis``, every other coordinate held, above the roof."""
    # each layout is its own point of an op (not joined to another layout's)
    others = [c for c in (*ENTITIES, "phase", "layer", "op", *AXES, *LAYOUT) if c != axis and c in points.columns]
    lines = (
        points.filter(pl.col(axis).is_not_null())
        .sort(axis)
        .group_by(others, maintain_order=True)
        .agg(pl.col("intensity"), pl.col(y))
    )
    if lines.height > 5000:
        raise SpecError(
            f"connect: {lines.height} lines along {axis!r} is too many to read; narrow the frame first (--where)"
        )
    segments = [
        np.column_stack([a.to_numpy(), b.to_numpy()])
        for a, b in zip(lines.get_column("intensity"), lines.get_column(y), strict=True)
        if len(a) > 1
    ]
    ax.add_collection(
        LineCollection(segments, colors=[color], linewidths=0.7, alpha=0.6, zorder=2.5, gid=f"connect:{axis}")
    )


def _collect(
    lf: pl.LazyFrame,
    groups: Sequence[str],
    y: str,
    color_by: str | None,
    connect: str | None,
    resolution: int,
    facet: str | None,
) -> pl.DataFrame:
    """Collect a lazy dataset for a chart, reducing points on the way unless lines are drawn."""
    names = lf.collect_schema().names()
    for column in (*_NEEDED, y, *(c for c in (color_by, connect) if c)):
        if column not in names:
            raise _missing(column, names)
    lf = lf.filter(pl.col("group").cast(pl.String).is_in(list(groups)))
    if connect:
        coordinates = (a for a in (*AXES, *LAYOUT) if a in names and a not in _NEEDED)
        return lf.select(*_NEEDED, y, *(["layer"] if "layer" in names else []), "op", *coordinates).collect()
    by = ["model", "hardware", "dtype", "phase", "spec_k", "group"]
    by += [c for c in dict.fromkeys((color_by, facet)) if c and c not in by]
    return reduce_points(lf, "intensity", y, by, resolution).drop("count")


def _missing(column: str, names: Sequence[str]) -> SpecError:
    if "tokens_per_s" in names:
        return summary_frame("roofline")
    if column == "achieved_flops":
        return SpecError(
            "roofline: the frame has no 'achieved_flops' column (it predates achieved performance); "
            "draw its points on the roof with ideal=True (--ideal), or sweep it again"
        )
    return unknown_name("roofline", column, names, what="column")


def _title(
    sub: pl.DataFrame,
    info: Mapping[str, object],
    hw_all: Mapping[str, Hardware],
    models: Mapping[str, Model] | None,
    ideal: bool,
    subtitle: bool,
) -> str:
    """``Roofline Model (Llama 13B, A40)``, with ``subtitle`` over a line saying what was swept and how points sit."""
    model = model_label(sub, models)
    if info.get("hidden_varies"):
        model = f"{model} scaled to hidden {info['hidden']}"
    hardware = ", ".join(hw.label for hw in hw_all.values())
    if not subtitle:
        return f"Roofline Model ({model}, {hardware})"
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
    (``ideal=True``).

    Args:
        df: a long sweep frame (or a lazy one).
        along: the axis that colours the points (``batch``, ``seq_len``, ``hidden``, ``spec_k``).
        connect: join the points along this axis instead of ``along``.
        **options: the other options of :func:`roofline`.
    """
    return roofline(df, color_by=along, connect=connect or along, **options)


def roofline(
    df: pl.DataFrame | pl.LazyFrame,
    *,
    groups: Sequence[str] = MATMUL_GROUPS,
    color_by: str | None = None,
    connect: str | None = None,
    facet: str | None = None,
    dtypes: Sequence[str] = (),
    hardware: Mapping[str, Hardware] | None = None,
    models: Mapping[str, Model] | None = None,
    title: str | None = None,
    resolution: int = 400,
    ideal: bool = False,
    ridge: bool = False,
    subtitle: bool = False,
) -> Figure:
    """A roofline chart of a long sweep frame.

    By default the chart is the reference's (DESIGN.md): one series per op group and
    phase (``qkv mlp init``, ``qk/pv ar``, ``up/gate/down spec: 16``; prefixed with the
    hardware, dtype or model when the frame holds several) drawn with ``x`` markers, a
    blue dashed memory ceiling and a red dashed compute ceiling named by their figures
    (``696GB/s``, ``149.7 TFLOP/s``) in the legend at the bottom right with the series,
    both axes spanning whole decades (x 1 to 10k, y ticks 10G to 100T for the reference
    sweep: the y axis ends a decade under the decade of the lowest point), and the title
    ``Roofline Model (Llama 13B, A40)``. Several accelerators or compute dtypes get a roof
    each, in a colour of its own, named in the legend with its ridge. Points are the
    predicted *achieved* FLOP/s (``achieved_flops``, below the roof, where a real device
    puts them) unless ``ideal``. Series that coincide (the decode products of ``qkv mlp``
    and ``up/gate/down`` share their intensities) are layered, never moved: the one drawn
    underneath has larger markers with wider edges, so every series shows. Past ten
    series colour means the op group and the marker the phase step, with a compact legend.

    Args:
        df: a long frame (``rooflax.sweep``), or a LazyFrame of a dataset (reduced as it
            is collected, so datasets larger than memory can be drawn).
        groups: op groups to draw; all of :data:`rooflax.names.GROUPS` for every op. The
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
        ridge: mark each ridge: a circle where the roofs meet, a dotted vertical line and
            ``ridge 215`` above the roof.
        subtitle: a line under the title saying what was swept (dtypes, KV dtype, axis
            ranges, fused attention) and whether points are achieved or ideal.

    Returns:
        A matplotlib Figure.
    """
    ideal, ridge, subtitle = (
        boolean(name, value) for name, value in (("ideal", ideal), ("ridge", ridge), ("subtitle", subtitle))
    )
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
    limits = (
        decade_limits(min(number(xs.min()), *ridges), max(number(xs.max()), *ridges)),
        (decade_below(min(number(ys.min()), *peaks)), max(peaks) * 3),
    )
    norm = cmap = None
    if color_by:
        values = sub.get_column(color_by).drop_nulls()
        lo, hi = number(values.min()), number(values.max())
        norm = LogNorm(lo, hi) if lo > 0 and hi / lo >= 10 else Normalize(lo, hi)
        cmap = matplotlib.colormaps["viridis"].with_extremes(bad="0.6")

    if facet:
        order = sub.get_column(facet).unique(maintain_order=True)
        if facet in ("phase", "group", *LAYOUT):
            order = order.sort()
        panels: list[tuple[str | None, pl.DataFrame]] = [(str(v), sub.filter(pl.col(facet) == v)) for v in order]
    else:
        panels = [(None, sub)]
    ncols = min(len(panels), 3)
    nrows = -(-len(panels) // ncols)
    fig = Figure(figsize=(8.5 * ncols if ncols == 1 else 6.2 * ncols, 6.2 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax, (name, panel) in zip(axes.flat, panels, strict=False):
        si_log_axes(ax)
        outside = _draw(
            ax,
            panel,
            hardware_of(panel, hw_all),
            y=y,
            extra_dtypes=dtypes,
            color_by=color_by,
            connect=connect,
            resolution=resolution,
            limits=limits,
            norm=norm,
            cmap=cmap,
            inside=len(panels) > 1,
            ridge=ridge,
        )
        if outside:  # room for the legend beside the axes
            fig.set_figwidth(8.5 + 3.5)
        ax.set_xlabel("Operational Intensity (FLOP/Byte)")
        ax.set_ylabel("Performance (FLOP/s)")
        if name is not None:
            ax.set_title(f"{facet}: {name}", fontsize=10)
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_visible(False)
    if color_by:
        bar = fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=axes, label=color_by, shrink=0.9)
        label_values(bar, sub.get_column(color_by).drop_nulls().unique())
    fig.suptitle(title or _title(sub, info, hw_all, models, ideal, subtitle), fontsize=12)
    return fig
