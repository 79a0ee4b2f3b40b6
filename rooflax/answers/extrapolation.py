"""Which ops of a sweep lie far outside every shape their achieved terms were fitted on.

A fitted profile (:func:`rooflax.calibration.fit.fit_hardware`) records, with each family's
terms, what they were fitted on: the smallest and largest FLOPs and bytes of one measured
kernel (:data:`rooflax.config.hardware.RANGE_TERMS`). An op of a sweep whose FLOPs or bytes
reach more than :data:`FACTOR` (10×) below that smallest or above that largest value is
*extrapolated*: its achieved time, and its band, come from terms that no measurement near it
supports. Ops whose group has no fitted terms (elementwise ops; every op of a profile without
measurements) have no range and are never flagged: they are priced on assumed terms anyway.

Frames keep their schema and their speed: an op's FLOPs and bytes never decrease as batch
or seq_len grow, so its range over a grid is its counts at the grid's two corners (the
smallest batch and seq_len, and the largest), priced by :func:`rooflax.evaluate` for each
step of the sweep (model and width, accelerator, dtype, layout, phase and verify width; a
tree's verify step is counted as a chain of its size). :func:`extrapolation_notes` turns the
flagged ops into the ``note:`` lines that ``rooflax speculate``, ``best-k`` and ``compare``
print.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import polars as pl

from rooflax.config.spec import SweepSpec
from rooflax.cost.ops import TERMS_GROUP
from rooflax.data.frames import resolve_spec
from rooflax.engine.evaluate import evaluate
from rooflax.names import LAYOUT

__all__ = ["FACTOR", "extrapolated", "extrapolation_notes"]

#: How far outside its fitted range an op's FLOPs or bytes must reach to be flagged.
FACTOR = 10.0
_QUANTITIES = (("flops", "FLOPs", "fitted_flops"), ("bytes", "bytes", "fitted_bytes"))


def extrapolated(spec: SweepSpec | str | Path) -> pl.DataFrame:
    """The ops of ``spec``'s sweep that lie more than :data:`FACTOR` outside their fitted range.

    Args:
        spec: a :class:`rooflax.SweepSpec` or a TOML path.

    Returns:
        One row per accelerator, model, dtype, layout, phase, verify width, op and quantity
        flagged: ``hardware``, ``model``, ``dtype``, ``tp``, ``pp``, ``ep``, ``phase``,
        ``spec_k``, ``op``, ``group``, ``quantity`` (``flops`` or ``bytes``), ``swept_min``,
        ``swept_max`` (the op's range over the grid) and ``fitted_min``, ``fitted_max`` (its
        terms'); no rows when nothing is extrapolated.
    """
    spec = resolve_spec(spec, {})
    batch, rows = (min(spec.batch), max(spec.batch)), []
    layouts = itertools.product(spec.tp, spec.pp, spec.ep)
    for model, hardware, dtype, (tp, pp, ep) in itertools.product(spec.models, spec.hardware, spec.dtypes, layouts):
        for hidden, (phase, spec_k, first) in itertools.product(spec.hidden_for(model), spec.steps()):
            seq = spec.seq_len[first:]
            corners = [
                evaluate(
                    model=model.at_hidden(hidden),
                    hardware=hardware,
                    dtype=dtype,
                    phase=phase,
                    batch=b,
                    seq_len=s,
                    spec_k=spec_k,
                    fused_attention=spec.fused_attention,
                    causal=spec.causal,
                    tp=tp,
                    pp=pp,
                    ep=ep,
                ).ops
                for b, s in ((batch[0], min(seq)), (batch[1], max(seq)))
            ]
            terms_phase = "decode" if phase == "verify" and spec_k == 1 else phase  # as Roof.of prices it
            for op, low in corners[0].items():
                high, terms = corners[1][op], hardware.terms(TERMS_GROUP[low.op], terms_phase)
                for quantity, _, key in _QUANTITIES:
                    fitted = (terms[f"{key}_min"], terms[f"{key}_max"])
                    if math.isnan(fitted[0]) or fitted[1] <= 0:  # no range, or none of this quantity measured
                        continue
                    swept = (float(getattr(low, quantity)), float(getattr(high, quantity)))
                    if swept[1] > fitted[1] * FACTOR or swept[0] < fitted[0] / FACTOR:
                        where = (hardware.name, model.at_hidden(hidden).name, dtype.name, tp, pp, ep, phase, spec_k)
                        rows.append((*where, op, low.group, quantity, *swept, *fitted))
    schema = {
        "hardware": pl.String,
        "model": pl.String,
        "dtype": pl.String,
        **dict.fromkeys(LAYOUT, pl.Int64),
        "phase": pl.String,
        "spec_k": pl.Int64,
        **dict.fromkeys(("op", "group", "quantity"), pl.String),
        **dict.fromkeys(("swept_min", "swept_max", "fitted_min", "fitted_max"), pl.Float64),
    }
    return pl.DataFrame(rows, schema=schema, orient="row")


def extrapolation_notes(spec: SweepSpec | str | Path) -> list[str]:
    """One line per accelerator, op group, phase and quantity that :func:`extrapolated` flags, naming the ops.

    Args:
        spec: a :class:`rooflax.SweepSpec` or a TOML path.
    """
    flagged = extrapolated(spec)
    words = dict((quantity, word) for quantity, word, _ in _QUANTITIES)
    lines = []
    for row in (
        flagged.group_by("hardware", "group", "phase", "quantity", maintain_order=True)
        .agg(
            pl.col("op").unique(maintain_order=True),
            pl.col("swept_min").min(),
            pl.col("swept_max").max(),
            pl.col("fitted_min").first(),
            pl.col("fitted_max").first(),
        )
        .iter_rows(named=True)
    ):
        lines.append(
            f"{row['hardware']}: {', '.join(row['op'])} ({row['group']}, {row['phase']}) reach "
            f"{row['swept_min']:.3g}–{row['swept_max']:.3g} {words[row['quantity']]}, more than {FACTOR:g}× "
            f"outside the {row['fitted_min']:.3g}–{row['fitted_max']:.3g} the terms were fitted on: their "
            "achieved times are extrapolated"
        )
    return lines
