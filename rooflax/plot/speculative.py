"""The speculation regime map: speedup and the best draft length over batch × seq_len."""

from __future__ import annotations

from itertools import pairwise

import matplotlib
import numpy as np
import polars as pl
from matplotlib.collections import PatchCollection
from matplotlib.colors import BoundaryNorm, ListedColormap, TwoSlopeNorm, to_rgb
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle

from rooflax.errors import SpecError, boolean
from rooflax.names import ENTITIES, LAYOUT
from rooflax.plot._common import require_columns, require_frame

__all__ = ["speculation_map"]


def speculation_map(best: pl.DataFrame, *, achieved: bool = False, title: str | None = None) -> Figure:
    """Two heatmaps over batch × seq_len of a :func:`rooflax.best_k` frame: the speedup, and the best ``K``.

    Args:
        best: one row per (batch, seq_len) cell of one model, accelerator and dtype.
        achieved: show ``achieved_speedup`` (rank ``best`` with ``achieved=True`` to match).
        title: the figure title (default: model and accelerator).

    Each cell is annotated with its value (the best ``K``, and the candidate count when a
    tree makes it differ from ``K + 1``), one colour per ``K`` on a colour bar of whole
    numbers. Cells whose best round does not fit in one device's memory (target and
    drafter, ``fits_in_memory``) are hatched, with a legend entry; blank cells have no
    round (``seq_len`` below the candidates, or, ranked with ``fits=True``, none fits).
    """
    achieved = boolean("achieved", achieved)
    require_frame(best, "speculation map")
    speedup = "achieved_speedup" if achieved else "speedup"
    require_columns(
        best,
        ["model", "hardware", "dtype", "hidden", "batch", "seq_len", "draft_k", "candidates", speedup],
        "speculation map",
    )
    for column in (*ENTITIES, "hidden", *LAYOUT):
        if column in best.columns and best.get_column(column).n_unique() > 1:
            raise SpecError(f"speculation map: the frame holds several {column} values; select one")
    if best.select("batch", "seq_len").is_duplicated().any():
        raise SpecError("speculation map: several rows per (batch, seq_len) cell; pass rooflax.best_k's frame")
    xs, ys = sorted(best["batch"].unique()), sorted(best["seq_len"].unique())
    xi, yi = {v: i for i, v in enumerate(xs)}, {v: i for i, v in enumerate(ys)}
    grids = {name: np.full((len(ys), len(xs)), np.nan) for name in ("speedup", "k", "candidates", "fits")}
    fits = "fits_in_memory" in best.columns
    for row in best.iter_rows(named=True):
        at = (yi[row["seq_len"]], xi[row["batch"]])
        grids["speedup"][at], grids["k"][at], grids["candidates"][at] = row[speedup], row["draft_k"], row["candidates"]
        grids["fits"][at] = row["fits_in_memory"] if fits else 1
    fig = Figure(figsize=(5 + 0.55 * len(xs) * 2, 1.5 + 0.4 * len(ys)), layout="constrained")
    left, right = fig.subplots(1, 2)
    top = max(float(np.nanmax(grids["speedup"])), 1.01)
    low = min(float(np.nanmin(grids["speedup"])), 0.99)
    shown = left.imshow(
        grids["speedup"],
        origin="lower",
        aspect="auto",
        cmap="RdYlGn",
        norm=TwoSlopeNorm(1.0, low, top),
        interpolation="nearest",
    )
    fig.colorbar(shown, ax=left, label=f"{'achieved ' if achieved else ''}speedup over plain decode")
    ks = sorted(int(k) for k in best["draft_k"].unique())  # one colour per K, ticks on the K values
    cmap = ListedColormap(matplotlib.colormaps["viridis"](np.linspace(0, 1, len(ks)) if len(ks) > 1 else [0.5]))
    edges = [ks[0] - 0.5, *((a + b) / 2 for a, b in pairwise(ks)), ks[-1] + 0.5]
    norm = BoundaryNorm(edges, len(ks))
    shown = right.imshow(grids["k"], origin="lower", aspect="auto", cmap=cmap, norm=norm, interpolation="nearest")
    bar = fig.colorbar(shown, ax=right, label="best K (draft tokens a round)", spacing="uniform")
    bar.set_ticks(ks, labels=[str(k) for k in ks])
    bar.minorticks_off()
    chains = bool((best["candidates"] == best["draft_k"] + 1).all())
    for (j, i), value in np.ndenumerate(grids["speedup"]):
        if np.isnan(value):
            continue
        left.text(i, j, f"{value:.2f}", ha="center", va="center", fontsize=7)
        k, cand = int(grids["k"][j, i]), int(grids["candidates"][j, i])
        light = np.dot(to_rgb(cmap(norm(k))), (0.299, 0.587, 0.114)) > 0.5
        right.text(
            i,
            j,
            str(k) if chains else f"{k}/{cand}",
            ha="center",
            va="center",
            fontsize=7,
            color="black" if light else "white",
        )
    unfit = [Rectangle((i - 0.5, j - 0.5), 1, 1) for j, i in zip(*np.nonzero(grids["fits"] == 0), strict=True)]
    keys = []
    if unfit:
        for ax in (left, right):
            ax.add_collection(
                PatchCollection(
                    unfit, facecolor="none", edgecolor="0.35", hatch="////", linewidth=0, gid="does-not-fit"
                )
            )
        keys.append(
            Patch(
                facecolor="white",
                edgecolor="0.35",
                hatch="////",
                label="does not fit in one device's memory (target and drafter)",
            )
        )
    if np.isnan(grids["speedup"]).any():
        keys.append(
            Patch(
                facecolor="white",
                edgecolor="0.6",
                label="no round (seq_len below the candidates, or none fits, ranked with fits=True)",
            )
        )
    if keys:
        fig.legend(handles=keys, loc="outside lower center", ncols=len(keys), fontsize=8)
    for ax, name in ((left, "speedup at the best K"), (right, "best K" if chains else "best K / candidates")):
        ax.set_xticks(range(len(xs)), [str(v) for v in xs], fontsize=7)
        ax.set_yticks(range(len(ys)), [str(v) for v in ys], fontsize=7)
        ax.set_xlabel("batch")
        ax.set_ylabel("seq_len")
        ax.set_title(name, fontsize=9)
    row = best.row(0, named=True)
    fig.suptitle(title or f"Speculative decoding ({row['model']}, {row['hardware']}, {row['dtype']})", fontsize=11)
    return fig
