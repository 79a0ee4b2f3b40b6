"""Which chart a sweep's dataset gets, checked against the spec before the sweep runs."""

from __future__ import annotations

from dataclasses import dataclass

from rooflax.config.spec import SweepSpec
from rooflax.errors import SpecError, boolean, unknown_name
from rooflax.names import AXES, FACETS, LAYOUT
from rooflax.plot.maps import MAP_FACETS, check_one_value

__all__ = ["KINDS", "ChartPlan", "plan_chart"]

#: Chart kinds: a roofline, a roofline family (coloured by an axis), a regime map.
KINDS = ("roofline", "family", "map")


@dataclass(frozen=True, slots=True, kw_only=True)
class ChartPlan:
    """A chart's options, known to suit the dataset of a spec."""

    kind: str
    facet: str | None = None
    color_by: str | None = None
    x: str = "batch"
    y: str = "seq_len"


def _values(spec: SweepSpec) -> dict[str, list]:
    """What a spec sweeps, column by column (``hidden`` within one model, as maps count it)."""
    return {
        "model": [m.name for m in spec.models],
        "hardware": [h.name for h in spec.hardware],
        "dtype": [d.name for d in spec.dtypes],
        "hidden": list(spec.hidden_for(spec.models[0])),
        "batch": list(spec.batch),
        "seq_len": list(spec.seq_len),
        **{axis: list(getattr(spec, axis)) for axis in LAYOUT},
    }


def plan_chart(
    spec: SweepSpec,
    *,
    summary: bool,
    kind: str | None = None,
    facet: str | None = None,
    color_by: str | None = None,
    x: str = "batch",
    y: str = "seq_len",
) -> ChartPlan:
    """Check chart options against the dataset ``spec`` will produce, before any work is done.

    Args:
        spec: the sweep.
        summary: whether the dataset is a summary (one row per configuration and phase).
        kind: ``roofline`` or ``family`` (long datasets) or ``map``; default ``map`` for a
            summary, ``roofline`` otherwise.
        facet: one panel per value. For a map left out, it is the one of ``model``,
            ``hardware``, ``dtype``, ``tp``, ``pp`` and ``ep`` the spec holds several of, so
            a sweep across accelerators gets a panel per accelerator.
        color_by: the axis a family is coloured by.
        x, y: a map's axes.

    Returns:
        The options, with the facet chosen.

    Raises:
        SpecError: the chart cannot be drawn from that dataset (a summary drawn as a
            roofline, a map whose cells would hold several rows, ...).

    >>> from rooflax.config.spec import parse_spec
    >>> plan_chart(parse_spec(hardware=["a40", "h100-sxm"], batch=[1], seq_len=[128]), summary=True)
    ChartPlan(kind='map', facet='hardware', color_by=None, x='batch', y='seq_len')
    """
    summary = boolean("summary", summary)
    kind = kind or ("map" if summary else "roofline")
    if kind not in KINDS:
        raise unknown_name("kind", kind, KINDS)
    if kind != "map":
        if summary:
            raise SpecError(f"kind: a {kind} needs a long (per-op) dataset, not a summary; draw a map")
        if kind == "family" and color_by is None:
            raise SpecError(f"color_by: a family needs an axis to colour by ({', '.join(AXES)})")
        if facet is not None and facet not in FACETS:
            raise unknown_name("facet", facet, FACETS)
        return ChartPlan(kind=kind, facet=facet, color_by=color_by)
    for axis, name in ((x, "x"), (y, "y")):
        if axis not in AXES:
            raise unknown_name(name, axis, AXES)
    values = _values(spec)
    if facet is None:
        several = [c for c in MAP_FACETS if len(values[c]) > 1]
        facet = several[0] if len(several) == 1 else None
    elif facet not in MAP_FACETS:
        raise unknown_name("facet (map)", facet, MAP_FACETS)
    check_one_value(values, x, y, facet)
    return ChartPlan(kind=kind, facet=facet, x=x, y=y)
