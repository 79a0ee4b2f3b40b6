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
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter

from rooflax.errors import SpecError, unknown_name
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
)

__all__ = ["bandwidth_label", "ceiling_label", "draw_ceilings", "peak_label", "roofline", "series"]

AXES = ("batch", "seq_len", "hidden", "spec_k")
FACETS = ("phase", "group", "hardware", "dtype", "model", "tp", "pp", "ep")
#: Parallel degrees: each layout is its own point of an op (not joined to another layout's).
_LAYOUT = ("tp", "pp", "ep")
_NEEDED = ("model", "hardware", "dtype", "phase", "spec_k", "group", "intensity", "attainable_flops")
_MARKERS = ("x", "+", "1", "2", "3", "4", "o", "^", "s", "d")


def bandwidth_label(bytes_per_s: float) -> str:
    """``696GB/s``, ``3.35TB/s``."""
    return f"{bytes_per_s / 1e12:.4g}TB/s" if bytes_per_s >= 1e12 else f"{bytes_per_s / 1e9:.4g}GB/s"


def peak_label(flops: float, compute: str) -> str:
    """``149.7 TFLOP/s`` (``TOP/s`` for int8)."""
    return f"{flops / 1e12:.4g} {'TOP/s' if compute == 'int8' else 'TFLOP/s'}"


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
                  prefix: str = "", labels: bool = True, label: str | None = None) -> Line2D:
    """Dashed memory and compute ceilings of ``hw`` at ``compute``, ridge marked.

    With ``labels`` the figures are written on the lines (``696GB/s``, ``149.7 TFLOP/s``);
    otherwise ``label`` names the returned line for a legend.
    """
    peak, bandwidth = hw.peak(compute), hw.bandwidth_bytes_per_s
    ridge = peak / bandwidth
    lo, hi = x_range
    (memory,) = ax.plot([lo, ridge], [bandwidth * lo, peak], "--", color=color, linewidth=1.4,
                        gid=f"ceiling-memory:{hw.name}", label=label or "_ceiling")
    ax.plot([ridge, hi], [peak, peak], "--", color=color, linewidth=1.4, gid=f"ceiling-compute:{hw.name}:{compute}",
            label="_ceiling")
    ax.plot([ridge], [peak], "o", mfc="none", color=color, markersize=7, gid=f"ridge:{hw.name}:{compute}",
            label="_ridge")
    ax.axvline(ridge, linestyle=":", color=color, linewidth=0.8, alpha=0.6)
    if labels:
        ax.annotate(f"ridge {ridge:.0f}", (ridge, peak), textcoords="offset points", xytext=(4, -14),
                    fontsize=7, color=color)
        ax.text(hi / 1.3, peak * 1.12, prefix + peak_label(peak, compute), ha="right", va="bottom", fontsize=9,
                color=color, gid=f"label-compute:{hw.name}:{compute}")
        x_text = lo * 2.0
        p0, p1 = ax.transData.transform([(lo, bandwidth * lo), (ridge, peak)])
        angle = math.degrees(math.atan2(p1[1] - p0[1], p1[0] - p0[0]))
        ax.text(x_text, bandwidth * x_text * 1.35, prefix + bandwidth_label(bandwidth), rotation=angle,
                rotation_mode="anchor", fontsize=9, color=color, gid=f"label-memory:{hw.name}")
    return memory


def _palette(n: int) -> tuple:
    return plt.get_cmap("tab10" if n <= 10 else "tab20").colors


_FAMILIES = {"qkv mlp": "Blues", "up/gate/down": "Greens", "qk/pv": "Reds", "elementwise": "Purples",
             "lm_head": "Oranges"}


def _series_colors(plain: list[tuple[tuple, str]]) -> list:
    """Distinct colours: tab10 up to ten series; past that a hue per group, a shade per phase step."""
    if len(plain) <= 10:
        return list(plt.get_cmap("tab10").colors[:len(plain)])
    steps = {g: [k for k, _ in plain if k[0] == g] for g in dict.fromkeys(k[0] for k, _ in plain)}
    colors = []
    for key, _ in plain:
        mine = steps[key[0]]
        shade = 0.9 - 0.55 * mine.index(key) / max(len(mine) - 1, 1)
        colors.append(plt.get_cmap(_FAMILIES[key[0]])(shade))
    return colors


def _draw(ax: Axes, sub: pl.DataFrame, hardware: dict[str, Hardware], *, extra_dtypes: Sequence[str],
          color_by: str | None, connect: str | None, resolution: int, limits, norm, cmap, inside: bool) -> list:
    """Draw one panel. Colour means the series (one accelerator), the accelerator (several),
    or the ``color_by`` axis (a family); marker means the series when colour does not."""
    multi = [c for c in ("model", "hardware", "dtype") if sub.get_column(c).n_unique() > 1]
    entities = sub.select(multi).unique().sort(multi).rows() if multi else [()]
    by_entity = len(entities) > 1 and color_by is None
    plain = series(sub, [])
    keys = ["group", "phase", "spec_k", *multi]
    by = keys + ([color_by] if color_by and color_by not in keys else [])
    reduced = reduce_points(sub.lazy(), "intensity", "attainable_flops", by, resolution)
    ax.set_xlim(*limits[0])
    ax.set_ylim(*limits[1])

    ceilings = []
    for hw in hardware.values():
        present = sub.filter(pl.col("hardware") == hw.name).get_column("dtype").unique().cast(pl.String)
        for compute in dict.fromkeys([*(compute_dtype(d) for d in sorted(present)),
                                      *(d for d in extra_dtypes if d in hw.dtypes)]):
            ceilings.append((hw, compute))
    palette = _palette(len(entities)) if by_entity else _series_colors(plain)
    entity_color = {e: palette[i % len(palette)] for i, e in enumerate(entities)}
    several_computes = len({c for _, c in ceilings}) > 1
    ceiling_handles = []
    for n, (hw, compute) in enumerate(ceilings):
        color = "0.15" if not by_entity or "hardware" not in multi else next(
            (entity_color[e] for e in entities if dict(zip(multi, e, strict=True))["hardware"] == hw.name), "0.15")
        if not by_entity and n:
            color = ("tab:red", "tab:purple", "tab:brown", "tab:olive", "tab:cyan")[(n - 1) % 5]
        single = len(ceilings) == 1
        ceiling_handles.append(draw_ceilings(
            ax, hw, compute, limits[0], color, labels=single, prefix=f"{compute} " if several_computes else "",
            label=None if single else ceiling_label(hw, compute, with_compute=several_computes)))

    mappables, series_handles = [], []
    per_series = connect not in (None, "spec_k")
    if connect == "spec_k":  # each K is a series of its own: the lines join verify steps across series
        _connect(ax, sub, connect, "0.6")
    if color_by:
        for i, (key, label) in enumerate(series(sub, multi)):
            points = reduced.filter(*matching(keys, key))
            if per_series:
                _connect(ax, sub.filter(*matching(keys, key)), connect, "0.6")
            mappables.append(ax.scatter(points.get_column("intensity").to_numpy(),
                                        points.get_column("attainable_flops").to_numpy(),
                                        c=points.get_column(color_by).to_numpy(), cmap=cmap, norm=norm,
                                        marker=_MARKERS[i % len(_MARKERS)], s=22, linewidths=1.0, label=label))
        series_handles = mappables
    else:
        for e in entities:
            for i, (key, label) in enumerate(plain):
                color = entity_color[e] if by_entity else palette[i % len(palette)]
                where = matching(keys, (*key, *e))
                if per_series:
                    _connect(ax, sub.filter(*where), connect, color)
                points = reduced.filter(*where)
                handle = ax.scatter(points.get_column("intensity").to_numpy(),
                                    points.get_column("attainable_flops").to_numpy(),
                                    marker=_MARKERS[i % len(_MARKERS)] if by_entity else "x", s=22, linewidths=1.0,
                                    color=color, label=label if not by_entity else f"_{label}")
                if not by_entity:
                    series_handles.append(handle)
        if by_entity:
            series_handles = [Line2D([], [], linestyle="none", marker=_MARKERS[i % len(_MARKERS)], color="0.3",
                                     label=label) for i, (_, label) in enumerate(plain)]
            names = {"hardware": lambda v: hardware[v].label if v in hardware else v}
            entity_handles = [Line2D([], [], color=entity_color[e], linewidth=6, label=" ".join(
                names.get(m, str)(v) for m, v in zip(multi, e, strict=True))) for e in entities]
            if "hardware" not in multi or len(ceilings) != len(entities):
                ceiling_handles = entity_handles + ceiling_handles
            else:
                ceiling_handles = [Line2D([], [], color=h.get_color(), linestyle="--", linewidth=2.5,
                                          label=h.get_label()) for h in ceiling_handles]

    outside = not inside and (len(series_handles) > 8 or len(ceiling_handles) > 1)
    place = dict(loc="upper left", bbox_to_anchor=(1.01, 1.0)) if outside else dict(loc="lower right")
    first = ax.legend(handles=series_handles, fontsize=8, framealpha=0.9, title=None, **place)
    if len(ceiling_handles) > 1:
        ax.add_artist(first)
        second = dict(loc="lower left", bbox_to_anchor=(1.01, 0.0)) if outside else dict(loc="upper left")
        ax.legend(handles=ceiling_handles, fontsize=8, framealpha=0.9, **second)
    ax.set_xlim(*limits[0])
    ax.set_ylim(*limits[1])
    return mappables[:1]


def _connect(ax: Axes, points: pl.DataFrame, axis: str, color) -> None:
    """Lines through each op's points along ``axis``, every other coordinate held."""
    others = [c for c in ("model", "hardware", "dtype", "phase", "op", *AXES, *_LAYOUT)
              if c != axis and c in points.columns]
    lines = (points.filter(pl.col(axis).is_not_null()).sort(axis).group_by(others, maintain_order=True)
             .agg(pl.col("intensity"), pl.col("attainable_flops")))
    if lines.height > 5000:
        raise SpecError(f"connect: {lines.height} lines along {axis!r} is too many to read; "
                        "narrow the frame first (--where)")
    segments = [np.column_stack([x.to_numpy(), y.to_numpy()]) for x, y in
                zip(lines.get_column("intensity"), lines.get_column("attainable_flops"), strict=True) if len(x) > 1]
    ax.add_collection(LineCollection(segments, colors=[color], linewidths=0.6, alpha=0.5, zorder=1,
                                     gid=f"connect:{axis}"))


def _collect(lf: pl.LazyFrame, groups: Sequence[str], color_by: str | None, connect: str | None,
             resolution: int, facet: str | None) -> pl.DataFrame:
    """Collect a lazy dataset for a chart, reducing points on the way unless lines are drawn."""
    names = lf.collect_schema().names()
    for column in (*_NEEDED, *(c for c in (color_by, connect) if c)):
        if column not in names:
            raise unknown_name("roofline", column, names, what="column")
    lf = lf.filter(pl.col("group").cast(pl.String).is_in(list(groups)))
    if connect:
        return lf.select(*_NEEDED, "op", *(a for a in (*AXES, *_LAYOUT) if a in names and a not in _NEEDED)).collect()
    by = ["model", "hardware", "dtype", "phase", "spec_k", "group"]
    by += [c for c in dict.fromkeys((color_by, facet)) if c and c not in by]
    return reduce_points(lf, "intensity", "attainable_flops", by, resolution).drop("count")


def roofline(df: pl.DataFrame | pl.LazyFrame, *, groups: Sequence[str] = MATMUL_GROUPS, color_by: str | None = None,
             connect: str | None = None, facet: str | None = None, dtypes: Sequence[str] = (),
             hardware: Mapping[str, Hardware] | None = None, models: Mapping[str, Model] | None = None,
             title: str | None = None, resolution: int = 400) -> Figure:
    """A roofline chart of a long sweep frame.

    One series per op group and phase (``qkv mlp init``, ``qk/pv ar``,
    ``up/gate/down spec: 16``; prefixed with the hardware, dtype or model when the frame
    holds several), drawn with ``x`` markers over the dashed memory and compute ceilings
    of every accelerator in the frame, with the ridge marked.

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

    Returns:
        A matplotlib Figure.
    """
    require_frame(df, "roofline", lazy=True)
    if isinstance(groups, str):
        raise SpecError(f"groups: expected a list of group names, got the string {groups!r}")
    for group in groups:
        if group not in GROUPS:
            raise unknown_name("groups", group, GROUPS)
    groups = [g for g in groups if g != "comm"]
    if facet is not None and facet not in FACETS:
        raise unknown_name("facet", facet, FACETS)
    if isinstance(df, pl.LazyFrame):
        df = _collect(df, groups, color_by, connect, resolution, facet)
    require_columns(df, _NEEDED, "roofline")
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
    xs, ys = sub.get_column("intensity"), sub.get_column("attainable_flops")
    computes = [compute_dtype(d) for d in sub.get_column("dtype").unique().cast(pl.String)]
    peaks = [hw.peak(c) for hw in hw_all.values() for c in computes]
    peaks += [hw.peak(d) for hw in hw_all.values() for d in dtypes if d in hw.dtypes]
    ridges = [hw.ridge(c) for hw in hw_all.values() for c in computes]
    x_lo, x_hi = min(xs.min(), *ridges) / 2, max(xs.max(), *ridges) * 4
    y_lo, y_hi = min(ys.min(), min(peaks)) / 2, max(peaks) * 3
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
        mappables += _draw(ax, panel, hardware_of(panel, hw_all), extra_dtypes=dtypes, color_by=color_by,
                           connect=connect, resolution=resolution, limits=limits, norm=norm, cmap=cmap,
                           inside=len(panels) > 1)
        ax.set_xlabel("Operational Intensity (FLOP/Byte)")
        ax.set_ylabel("Performance (FLOP/s)")
        if name is not None:
            ax.set_title(f"{facet}: {name}", fontsize=10)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    if color_by and mappables:
        bar = fig.colorbar(mappables[0], ax=axes, label=color_by, shrink=0.9)
        bar.ax.yaxis.set_major_formatter(FuncFormatter(si))
    labels = ", ".join(hw.label for hw in hw_all.values())
    fig.suptitle(title or f"Roofline Model ({model_label(sub, models)}, {labels})", fontsize=13)
    return fig

