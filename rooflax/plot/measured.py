"""Measured points (from ``rooflax validate``) over the predicted roofline."""

from __future__ import annotations

import matplotlib.pyplot as plt
import polars as pl
from matplotlib.figure import Figure

from rooflax.errors import SpecError
from rooflax.frames import GROUP, PHASE
from rooflax.hardware import Hardware
from rooflax.plot._common import matching, require_columns, require_frame
from rooflax.plot.roofline import draw_ceilings, roofline, series

__all__ = ["measured"]


def measured(frame: pl.DataFrame, profile: Hardware, *, datasheet: Hardware | None = None,
             title: str | None = None) -> Figure:
    """Predicted points (``x``) and measured points (``o``) of a validation frame on one chart.

    The roof is the measured profile's; the datasheet's ceilings are added in grey when
    the device matched a preset. Measured points sit at the op's intensity and the
    FLOP/s it achieved, so their gap below the roof is the efficiency.
    """
    require_frame(frame, "measured")
    if not isinstance(profile, Hardware):
        raise SpecError(f"profile: expected a rooflax.Hardware, got {type(profile).__name__}")
    require_columns(frame, ["model", "dtype", "phase", "spec_k", "group", "intensity", "measured_flops"],
                    "measured")
    dtype = frame.get_column("dtype")[0]
    if dtype not in profile.dtypes:
        raise SpecError(f"measured: profile {profile.name!r} has no {dtype} ceiling")
    peak, bandwidth = profile.peak(dtype), profile.bandwidth_bytes_per_s
    frame = frame.with_columns(pl.col("group").cast(GROUP), pl.col("phase").cast(PHASE))
    predicted = frame.with_columns(
        pl.lit(profile.name).alias("hardware"),
        pl.min_horizontal(pl.lit(peak), pl.col("intensity") * bandwidth).alias("attainable_flops"))
    device = frame.get_column("device")[0] if "device" in frame.columns else profile.label
    fig = roofline(predicted, hardware={profile.name: profile},
                   title=title or f"Measured vs predicted ({device}, {dtype})")
    ax = fig.axes[0]
    colors = plt.get_cmap("tab10").colors
    for i, ((group, phase, spec_k), label) in enumerate(series(predicted, [])):
        points = frame.filter(*matching(("group", "phase", "spec_k"), (group, phase, spec_k)))
        ax.scatter(points.get_column("intensity").to_numpy(), points.get_column("measured_flops").to_numpy(),
                   marker="o", facecolors="none", edgecolors=colors[i % 10], s=30, linewidths=1.0,
                   label=f"{label} measured", gid="measured")
    if datasheet is not None and dtype in datasheet.dtypes:
        draw_ceilings(ax, datasheet, dtype, ax.get_xlim(), "0.6", prefix=f"{datasheet.label} datasheet ")
    low = min(ax.get_ylim()[0], float(frame.get_column("measured_flops").min()) / 2)
    ax.set_ylim(low, max(ax.get_ylim()[1], (datasheet.peak(dtype) * 3) if datasheet and dtype in datasheet.dtypes
                         else 0))
    ax.legend(loc="lower right", fontsize=8, framealpha=0.9)
    return fig
