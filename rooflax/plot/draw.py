"""A chart of a dataset on disk: the kind asked for, drawn from the dataset's rows and its spec's presets."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import polars as pl
from matplotlib.figure import Figure

from rooflax.data.scan import check_dataset
from rooflax.errors import SpecError, boolean, unknown_name
from rooflax.plot._common import MATMUL_GROUPS
from rooflax.plot.maps import ratio_map, regime_map
from rooflax.plot.measured import over_measured, read_validation
from rooflax.plot.plan import KINDS
from rooflax.plot.roofline import family, roofline

__all__ = ["draw"]


def draw(
    dataset: str | os.PathLike,
    *,
    kind: str = "roofline",
    where: str | None = None,
    color_by: str | None = None,
    connect: str | None = None,
    facet: str | None = None,
    groups: Sequence[str] | None = None,
    x: str = "batch",
    y: str = "seq_len",
    value: str | None = None,
    versus: str | os.PathLike | None = None,
    ideal: bool = False,
    measured: str | os.PathLike | None = None,
    ridge: bool = False,
    subtitle: bool = False,
) -> tuple[Figure, pl.DataFrame | None]:
    """The chart ``rooflax plot`` draws of a checked dataset, and the errors of its measured points.

    Args:
        dataset: a dataset folder or part file written by rooflax.
        kind: ``roofline``, ``family`` (coloured by ``color_by``) or ``map``.
        where: only the rows this SQL condition holds for (:func:`rooflax.data.scan.filter_where`).
        color_by, connect: roofline: colour points by an axis, join them along one.
        facet: one panel per value of this column.
        groups: roofline: op groups to draw (default: the matmul groups).
        x, y, value: map: its axes and the column it shows.
        versus: map: a second dataset; the map shows the ratio of ``value`` in one to the other.
        ideal, ridge, subtitle: roofline: points on the roof, the ridge marked, a subtitle.
        measured: roofline: a validation result whose measured points are drawn over the
            achieved points of the same configurations.

    Returns:
        The Figure, and with ``measured`` the frame of measured against predicted per op
        (:func:`~rooflax.plot.measured.measured_errors`; None otherwise).
    """
    ideal, ridge, subtitle = (
        boolean(name, value) for name, value in (("ideal", ideal), ("ridge", ridge), ("subtitle", subtitle))
    )
    info = check_dataset(dataset)
    lf = info.scan(where=where, field="--where")
    if kind not in KINDS:
        raise unknown_name("kind", kind, KINDS)
    if kind == "map":
        if versus:
            if facet:
                raise SpecError(
                    "--facet: not with --versus (a ratio map compares one dataset with another); "
                    "select one model and dtype with --where"
                )
            other = check_dataset(versus).scan(where=where, field="--where")
            return ratio_map(lf.collect(), other.collect(), x=x, y=y, value=value or "time_s"), None
        return regime_map(lf.collect(), x=x, y=y, value=value, facet=facet), None
    if info.metadata.get("kind") == "summary":
        raise SpecError(f"--kind {kind}: needs a long (per-op) dataset; {str(dataset)!r} is a summary (use --kind map)")
    if kind == "family" and color_by is None:
        raise SpecError("--kind family: give --color-by AXIS (batch, seq_len, hidden or spec_k)")
    options: dict[str, Any] = dict(
        groups=groups or MATMUL_GROUPS,
        facet=facet,
        hardware=info.hardware(),
        models=info.models(),
        ideal=ideal,
        ridge=ridge,
        subtitle=subtitle,
    )
    if measured:
        if kind == "family" or color_by or connect or ideal:
            raise SpecError(
                "--measured: draws measured and achieved points of one roofline; leave out "
                "--kind family, --color-by, --connect and --ideal"
            )
        return over_measured(lf, read_validation(measured, field="--measured"), **options)
    if kind == "family":
        return family(lf, along=color_by, connect=connect, **options), None  # type: ignore[arg-type]  # given (above)
    return roofline(lf, color_by=color_by, connect=connect, **options), None
