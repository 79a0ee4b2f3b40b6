"""The collectives (``comm`` group) against the interconnect roof.

A collective has no FLOPs, so it has no place on the FLOP/byte roofline. Its own roof
has the bytes a device puts on the link on the horizontal axis and the link throughput
it achieves, ``bytes / time_s``, on the vertical: the ceiling is the interconnect
bandwidth for large messages and ``bytes / latency`` (one hop) for small ones, the
analogue of the memory and compute ceilings. Points with more hops (a ring all-reduce
waits ``2(p−1)`` latencies) sit further below the latency ceiling.
"""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import polars as pl
from matplotlib.figure import Figure

from rooflax.errors import SpecError
from rooflax.hardware import Hardware
from rooflax.models import Model
from rooflax.plot._common import PHASE_LABELS, hardware_of, model_label, require_columns, si_log_axes
from rooflax.plot.roofline import bandwidth_label

__all__ = ["interconnect"]

_NEEDED = ("model", "hardware", "phase", "op", "group", "bytes", "time_s")
_MARKERS = {"prefill": "x", "decode": "+", "verify": "1"}


def interconnect(df: pl.DataFrame | pl.LazyFrame, *, hardware: Mapping[str, Hardware] | None = None,
                 models: Mapping[str, Model] | None = None, title: str | None = None) -> Figure:
    """A chart of the collectives of a long frame against each accelerator's interconnect roof.

    One colour per collective (``attn_allreduce``, ``mlp_allreduce``, ``moe_dispatch``,
    ``moe_combine``, ``pp_send``), one marker per phase; the dashed roof is
    ``min(interconnect bandwidth, bytes / latency)``, labelled with the bandwidth.

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
    x_lo, x_hi = sub.get_column("bytes").min() / 3, sub.get_column("bytes").max() * 3
    fig, ax = plt.subplots(figsize=(8.5, 6.2), layout="constrained")
    si_log_axes(ax)
    xs = np.geomspace(x_lo, x_hi, 200)
    for hw in hw_all.values():
        roof = np.minimum(hw.interconnect_bytes_per_s, xs / hw.interconnect_latency_s)
        ax.plot(xs, roof, "--", color="0.15", linewidth=1.4, gid=f"ceiling-interconnect:{hw.name}",
                label=f"{hw.label}: {bandwidth_label(hw.interconnect_bytes_per_s)}, "
                      f"{hw.interconnect_latency_s * 1e6:.3g} µs a hop")
        ax.text(x_hi / 1.3, hw.interconnect_bytes_per_s * 1.12, bandwidth_label(hw.interconnect_bytes_per_s),
                ha="right", va="bottom", fontsize=9, color="0.15", gid=f"label-interconnect:{hw.name}")
    colors = plt.get_cmap("tab10").colors
    ops = sub.get_column("op").unique().sort().cast(pl.String).to_list()
    for i, op in enumerate(ops):
        for phase in sub.filter(op=op).get_column("phase").unique().sort().cast(pl.String):
            points = sub.filter(op=op, phase=phase)
            ax.scatter(points.get_column("bytes").to_numpy(), points.get_column("link_bytes_per_s").to_numpy(),
                       marker=_MARKERS[phase], s=22, linewidths=1.0, color=colors[i % len(colors)],
                       label=f"{op} {PHASE_LABELS.get(phase, phase)}")
    ax.set_xlim(x_lo, x_hi)
    ax.set_xlabel("Bytes on the link per device")
    ax.set_ylabel("Link throughput (bytes/s)")
    ax.legend(fontsize=8, framealpha=0.9, loc="lower right")
    labels = ", ".join(hw.label for hw in hw_all.values())
    fig.suptitle(title or f"Interconnect roof ({model_label(sub, models)}, {labels})", fontsize=13)
    return fig
