"""The collectives (``comm`` group) against the interconnect roof.

A collective has no FLOPs, so it has no place on the FLOP/byte roofline. Its own roof
has the bytes a device puts on the link on the horizontal axis and the link throughput
it achieves, ``bytes / time_s``, on the vertical: the ceiling is the interconnect
bandwidth for large messages and ``bytes / latency`` (one hop) for small ones, the
analogue of the memory and compute ceilings. Points with more hops (a ring all-reduce
waits ``2(p−1)`` latencies) sit further below the latency ceiling.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import polars as pl
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from rooflax.config.hardware import Hardware
from rooflax.config.models import Model
from rooflax.errors import SpecError
from rooflax.plot._common import (
    PHASE_LABELS,
    decade_limits,
    hardware_of,
    layer_style,
    layers,
    model_label,
    number,
    palette,
    require_columns,
    si_log_axes,
)
from rooflax.plot.roofline import bandwidth_label

__all__ = ["interconnect"]

_NEEDED = ("model", "hardware", "phase", "op", "group", "bytes", "time_s")
_MARKERS = {"prefill": "x", "decode": "+", "verify": "1"}


def _bytes_and_speed(points: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """A series' message sizes and link speeds (the chart's x and y)."""
    return points.get_column("bytes").to_numpy(), points.get_column("link_bytes_per_s").to_numpy()


def interconnect(
    df: pl.DataFrame | pl.LazyFrame,
    *,
    hardware: Mapping[str, Hardware] | None = None,
    models: Mapping[str, Model] | None = None,
    title: str | None = None,
) -> Figure:
    """A chart of the collectives of a long frame against each accelerator's interconnect roof.

    One colour per collective (``attn_allreduce``, ``mlp_allreduce``, ``moe_dispatch``,
    ``moe_combine``, ``pp_send``), one marker per phase; the dashed roof is
    ``min(interconnect bandwidth, bytes / latency)``, named in the legend by its bandwidth
    and latency. Collectives that coincide (a layer's two all-reduces move the same
    bytes) are layered, never moved: the one drawn underneath has larger markers with
    wider strokes, so each shows.

    Args:
        df: a long frame (``rooflax.sweep`` with ``tp``, ``pp`` or ``ep`` above 1), or a LazyFrame.
        hardware: descriptions of accelerators that are not presets, by name.
        models: descriptions of models that are not presets (for the title).
        title: replaces ``Interconnect roof (MODEL, HARDWARE)``.

    Returns:
        A matplotlib Figure.
    """
    if isinstance(df, pl.LazyFrame):
        df = df.filter(pl.col("group").cast(pl.String) == "comm").collect()
    require_columns(df, _NEEDED, "interconnect")
    sub = df.filter(pl.col("group").cast(pl.String) == "comm")
    if sub.height == 0:
        raise SpecError("interconnect: no collectives in the frame (every tp, pp and ep is 1); sweep tp = [2, ...]")
    hw_all = hardware_of(sub, hardware)
    sub = sub.with_columns((pl.col("bytes") / pl.col("time_s")).alias("link_bytes_per_s"))
    x_lo, x_hi = decade_limits(number(sub.get_column("bytes").min()), number(sub.get_column("bytes").max()))
    fig = Figure(figsize=(8.5, 6.2), layout="constrained")
    ax = fig.subplots()
    si_log_axes(ax)
    xs = np.geomspace(x_lo, x_hi, 200)
    for hw in hw_all.values():
        roof = np.minimum(hw.interconnect_bytes_per_s, xs / hw.interconnect_latency_s)
        ax.plot(
            xs,
            roof,
            "--",
            color="0.15",
            linewidth=1.4,
            gid=f"ceiling-interconnect:{hw.name}",
            label=f"{hw.label}: {bandwidth_label(hw.interconnect_bytes_per_s)}, "
            f"{hw.interconnect_latency_s * 1e6:.3g} µs a hop",
        )
    colors = palette("tab10")
    ops = sub.get_column("op").unique().sort().cast(pl.String).to_list()
    drawn = [
        (op, phase, i)
        for i, op in enumerate(ops)
        for phase in sub.filter(op=op).get_column("phase").unique().sort().cast(pl.String)
    ]
    points = [_bytes_and_speed(sub.filter(op=op, phase=phase)) for op, phase, _ in drawn]
    handles = [line for line in ax.get_lines() if not str(line.get_label()).startswith("_")]
    plain = [float(v) for v in layer_style(0)]
    for n, ((op, phase, i), (x, y), layer) in enumerate(zip(drawn, points, layers(points), strict=True)):
        size, width = layer_style(layer)
        label, color = f"{op} {PHASE_LABELS.get(phase, phase)}", colors[i % len(colors)]
        ax.scatter(
            x,
            y,
            marker=_MARKERS[phase],
            s=size,
            linewidths=width,
            color=color,
            zorder=3 + n / (len(drawn) + 1),
            label=label,
            clip_on=False,
        )  # unclipped: a point a pixel past the axis' decade shows whole
        handles.append(
            Line2D(
                [],
                [],
                linestyle="none",
                marker=_MARKERS[phase],
                markersize=math.sqrt(plain[0]),
                markeredgewidth=plain[1],
                color=color,
                label=label,
            )
        )
    ax.set_xlim(x_lo, x_hi)
    ax.set_xlabel("Bytes on the link per device")
    ax.set_ylabel("Link throughput (bytes/s)")
    ax.legend(handles=handles, fontsize=8, framealpha=0.9, loc="lower right")
    labels = ", ".join(hw.label for hw in hw_all.values())
    fig.suptitle(title or f"Interconnect roof ({model_label(sub, models)}, {labels})", fontsize=13)
    return fig
