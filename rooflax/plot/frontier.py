"""The serving frontier chart: tokens/s per GPU against tokens/s per user, one curve per group."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from rooflax.errors import SpecError
from rooflax.plot._common import palette

if TYPE_CHECKING:
    from rooflax.answers.frontier import Frontier

__all__ = ["frontier_chart"]

#: What a curve can stand for: a column of the frontier's configurations.
GROUPS = ("hardware", "serving", "speculation", "dtype", "prefill")
#: The size of a frontier point's label, points; points closer than that on the page share one label.
LABEL_PT = 6


def _merged(ax: Axes, points: list[tuple[float, float, str, str]]) -> list[tuple[float, float, str, str]]:
    """One label per place: frontier points (of any curve) within :data:`LABEL_PT` of the first of a
    place, on the page, share its label, their texts joined by `` / `` (each once); grey when
    their curves' colours differ."""
    ax.autoscale_view()
    pixels = ax.transData.transform(np.array([(x, y) for x, y, _, _ in points]).reshape(-1, 2))
    near = LABEL_PT * ax.figure.dpi / 72
    places: list[tuple[tuple[float, float], list[tuple[float, float, str, str]]]] = []
    for (px, py), point in zip(pixels, points, strict=True):
        for (qx, qy), shared in places:
            if abs(px - qx) < near and abs(py - qy) < near:
                shared.append(point)
                break
        else:
            places.append(((px, py), [point]))
    out = []
    for _, shared in places:
        colours = {colour for *_, colour in shared}
        text = " / ".join(dict.fromkeys(label for _, _, label, _ in shared))
        out.append((shared[0][0], shared[0][1], text, shared[0][3] if len(colours) == 1 else "dimgrey"))
    return out


def frontier_chart(result: Frontier, *, by: str = "hardware", title: str | None = None) -> Figure:
    """The frontier of a :func:`rooflax.frontier` result (a matplotlib Figure, no pyplot state).

    Args:
        result: what :func:`rooflax.frontier` returned.
        by: one curve per value of this column (:data:`GROUPS`): each curve is that group's own
            Pareto set, its points labelled with their layout, concurrency (``c64``) and
            speculation (points of any curve that fall together share one label, ``a / b``);
            every configuration is a faint dot.
        title: the figure title (default: the model, the GPU budget and the traffic).

    Returns:
        The Figure.

    The SLA's time per output token is the vertical line ``1 / tpot`` (users faster to its
    right); configurations slower to a first token than the SLA are drawn hollow, and the
    best under the SLA is a star.
    """
    if by not in GROUPS:
        raise SpecError(f"by: expected one of {', '.join(GROUPS)}, got {by!r}")
    from rooflax.answers.frontier import pareto_mask

    prefix = "ideal_" if result.rank.startswith("ideal_") else ""
    x_col, y_col = f"{prefix}tokens_per_s_per_user", result.rank
    found = result.configurations
    fig = Figure(figsize=(8, 5.5), layout="constrained")
    ax = fig.subplots()
    ax.set_xscale("log")
    ax.set_yscale("log")
    ttft, tpot = result.sla["ttft_s"], result.sla["tpot_s"]
    points: list[tuple[float, float, str, str]] = []  # every frontier point: position, label, colour
    for i, ((value,), rows) in enumerate(found.group_by([by], maintain_order=True)):
        color = palette("tab10")[i % 10]
        fast = rows if ttft is None else rows.filter(rows[f"{prefix}ttft_max_s"] <= ttft)
        slow = rows if ttft is None else rows.filter(rows[f"{prefix}ttft_max_s"] > ttft)
        ax.scatter(fast[x_col], fast[y_col], s=8, color=color, alpha=0.25, linewidths=0)
        if ttft is not None:
            ax.scatter(slow[x_col], slow[y_col], s=8, facecolors="none", edgecolors=color, alpha=0.3, linewidths=0.5)
        on = rows.filter(pareto_mask(rows[x_col].to_numpy(), rows[y_col].to_numpy())).sort(x_col)
        ax.plot(on[x_col], on[y_col], "-o", color=color, markersize=4, label=f"{value} frontier")
        points += [
            (
                row[x_col],
                row[y_col],
                f"{row['layout']} c{row['concurrency']}"
                + ("" if row["speculation"] == "none" else f" {row['speculation']}"),
                color,
            )
            for row in on.iter_rows(named=True)
        ]
    for x, y, text, color in _merged(ax, points):
        ax.annotate(text, (x, y), textcoords="offset points", xytext=(3, 3), fontsize=LABEL_PT, color=color)
    if tpot is not None:
        ax.axvline(1 / tpot, color="black", linestyle="--", linewidth=1, label=f"TPOT ≤ {tpot * 1e3:g} ms")
    if result.best.height:
        best = result.best.group_by("hardware", maintain_order=True).head(1)
        sla = " and ".join(f"{name} ≤ {v * 1e3:g} ms" for name, v in (("TTFT", ttft), ("TPOT", tpot)) if v is not None)
        ax.scatter(
            best[x_col],
            best[y_col],
            marker="*",
            s=160,
            color="gold",
            edgecolors="black",
            zorder=5,
            label=f"best{' under ' + sla if sla else ''}",
        )
    if ttft is not None:
        ax.scatter([], [], s=8, facecolors="none", edgecolors="grey", label=f"TTFT > {ttft * 1e3:g} ms")
    ax.set_xlabel(f"tokens/s per user ({'ideal' if prefix else 'achieved'})")
    ax.set_ylabel(f"tokens/s per GPU ({'ideal' if prefix else 'achieved'})")
    ax.grid(True, which="both", alpha=0.2)
    ax.legend(loc="lower left", fontsize=8)
    if title is None:
        models = ", ".join(map(str, found["model"].unique(maintain_order=True).to_list()))
        title = f"Serving {models} on {result.gpus} GPUs: {result.traffic.label}"
    ax.set_title(title)
    return fig
