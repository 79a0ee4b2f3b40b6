"""Each op row's error band: its achieved time at its terms group's band factors (one place for compare and serve)."""

from __future__ import annotations

import polars as pl

from rooflax.config.spec import SweepSpec
from rooflax.cost.ops import TERMS_GROUP
from rooflax.cost.roofline import Roof
from rooflax.names import TERM_GROUPS

__all__ = ["op_band"]


def op_band(long: pl.DataFrame, spec: SweepSpec) -> pl.DataFrame:
    """``long`` with ``achieved_time_lo_s`` and ``achieved_time_hi_s``: each op's achieved time at the band
    factors of its terms group (:attr:`rooflax.cost.ops.OpDef.terms_group`: a routed expert's are the ``moe``
    kernel's, not its chart group's) in its phase and draft length (:meth:`rooflax.cost.roofline.Roof.of`,
    as a summary frame's band takes them); null where the hardware has no band.

    Args:
        long: op rows of ``spec`` (a long frame: ``hardware``, ``phase``, ``spec_k``, ``op``, ``achieved_time_s``).
        spec: the spec that swept them (its accelerators; the band is the same for every dtype).

    Returns:
        ``long`` in its order, with the two band columns.
    """
    hardware = {hw.name: hw for hw in spec.hardware}
    factors = []
    for name, phase, spec_k in long.select("hardware", "phase", "spec_k").unique().iter_rows():
        roof = Roof.of(hardware[str(name)], spec.dtypes[0], str(phase), spec_k)
        factors += [
            (name, phase, spec_k, group, low, high)
            for group, low, high in zip(TERM_GROUPS, roof.band_low, roof.band_high, strict=True)
        ]
    keys = {key: long.schema[key] for key in ("hardware", "phase", "spec_k")}
    schema: dict[str, pl.DataType | type[pl.DataType]] = {
        **keys,
        "_terms": pl.String,
        "_low": pl.Float64,
        "_high": pl.Float64,
    }
    table = pl.DataFrame(factors, schema=schema, orient="row").fill_nan(None)
    terms = pl.col("op").cast(pl.String).replace_strict(TERMS_GROUP, return_dtype=pl.String).alias("_terms")
    joined = long.with_columns(terms).join(
        table, on=[*keys, "_terms"], how="left", nulls_equal=True, maintain_order="left"
    )
    return joined.with_columns(
        (pl.col("achieved_time_s") * pl.col("_low")).alias("achieved_time_lo_s"),
        (pl.col("achieved_time_s") * pl.col("_high")).alias("achieved_time_hi_s"),
    ).drop("_terms", "_low", "_high")
