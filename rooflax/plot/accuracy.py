"""Predicted against measured kernel times: one log–log panel per measured kind, the y = x line and a ±10% band."""

from __future__ import annotations

import numpy as np
import polars as pl
from matplotlib.figure import Figure

from rooflax.plot._common import number, require_columns, require_frame

__all__ = ["accuracy_chart"]

_KINDS = ("gemm", "attention_prefill", "attention_decode", "all_reduce", "alltoall", "moe")


def accuracy_chart(
    priced: pl.DataFrame, *, title: str = "Achieved model against measured kernel times", band: float = 0.10
) -> Figure:
    """A :func:`rooflax.calibration.predict.predict_measurements` frame as predicted-vs-measured scatter plots.

    Args:
        priced: rows with ``hardware``, ``kind``, ``measured_time_s`` and ``predicted_time_s``
            (unpriced rows, null, are left out).
        title: the figure title.
        band: the relative band drawn around y = x (0.10: ±10%).

    One panel per kind present (products, prefill and decode attention, collectives, MoE),
    one colour per hardware, each labelled with its median relative error.
    """
    require_frame(priced, "accuracy chart")
    require_columns(priced, ["hardware", "kind", "measured_time_s", "predicted_time_s"], "accuracy chart")
    rows = priced.filter(pl.col("predicted_time_s").is_not_null())
    kinds = [k for k in _KINDS if k in set(rows["kind"].to_list())] or sorted(set(rows["kind"].to_list()))
    cols = min(3, max(1, len(kinds)))
    grid = -(-len(kinds) // cols)
    fig = Figure(figsize=(4.2 * cols, 3.9 * grid), layout="constrained")
    axes = np.atleast_1d(fig.subplots(grid, cols, squeeze=False)).ravel()
    hardware = sorted(set(rows["hardware"].to_list()))
    colors = {hw: f"C{i}" for i, hw in enumerate(hardware)}
    for ax, kind in zip(axes, kinds, strict=False):
        part = rows.filter(kind=kind)
        low = number(part["measured_time_s"].min()) * 1e6 / 1.5
        high = max(number(part["measured_time_s"].max()), number(part["predicted_time_s"].max())) * 1e6 * 1.5
        line = np.geomspace(low, high, 50)
        ax.fill_between(line, line * (1 - band), line * (1 + band), color="0.85", label=f"±{band:.0%}")
        ax.plot(line, line, color="0.3", linewidth=0.8, label="y = x")
        for hw in hardware:
            mine = part.filter(hardware=hw)
            if not mine.height:
                continue
            error = number(((mine["predicted_time_s"] / mine["measured_time_s"]) - 1).abs().median())
            ax.scatter(
                mine["measured_time_s"] * 1e6,
                mine["predicted_time_s"] * 1e6,
                s=3,
                alpha=0.35,
                color=colors[hw],
                label=f"{hw} (median {error:.0%})",
                rasterized=True,
            )
        ax.set(
            xscale="log",
            yscale="log",
            xlim=(low, high),
            ylim=(low, high),
            title=kind,
            xlabel="measured (µs)",
            ylabel="predicted (µs)",
        )
        ax.legend(fontsize=7, loc="upper left", markerscale=3)
    for ax in axes[len(kinds) :]:
        ax.set_visible(False)
    fig.suptitle(title)
    return fig
