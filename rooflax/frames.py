"""Polars frames of sweep results: the frame contract of DESIGN.md, and :func:`sweep`.

Long frame (one row per grid point × phase × op):

=================  ===========  ==========================================================
column             type         meaning
=================  ===========  ==========================================================
model              Categorical  model preset (``llama-13b``) or file name
hardware           Categorical  hardware preset (``a40``) or profile name
dtype              Categorical  dtype policy (``fp16``; ``fp16/kv=fp8`` with a KV override)
batch              Int64        sequences in the batch, ``B``
seq_len            Int64        sequence length after the step, ``S``
hidden             Int64        model width, ``h``
spec_k             Int64        draft tokens ``K`` in verify; null in prefill and decode
phase              Enum         ``prefill``, ``decode``, ``verify``
op                 Enum         operation (:data:`rooflax.ops.OP_NAMES`)
group              Enum         chart group (:data:`rooflax.ops.GROUPS`)
flops              Float64      FLOPs of the op in one layer (``lm_head``: once per model)
bytes              Float64      bytes moved to and from memory, same scope
intensity          Float64      FLOP/byte
attainable_flops   Float64      FLOP/s under the roof
time_s             Float64      seconds, ``max(flops/peak, bytes/bandwidth)``
bound              Enum         ``memory`` or ``compute``
=================  ===========  ==========================================================

Summary frame (``summary=True``, one row per grid point × phase): the same first eight
columns, then model totals ``flops``, ``bytes``, ``intensity``, ``time_s`` (time to first
token in prefill, time per output token in decode, time of one verify step),
``tokens_per_s`` (``B·Q/time_s``), ``weight_bytes``, ``kv_cache_bytes``,
``activation_bytes``, ``memory_bytes`` and ``fits_in_memory`` (Boolean).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import polars as pl

from rooflax import engine
from rooflax.errors import SpecError
from rooflax.ops import GROUPS, OP_NAMES, PHASES
from rooflax.progress import Progress
from rooflax.spec import SweepSpec, default_spec, load_spec, parse_spec

__all__ = ["BOUNDS", "OPS_SCHEMA", "SUMMARY_SCHEMA", "chunk_frame", "resolve_spec", "sweep"]

#: The ``bound`` enum.
BOUNDS = ("memory", "compute")
PHASE = pl.Enum(PHASES)
OP = pl.Enum(OP_NAMES)
GROUP = pl.Enum(GROUPS)
BOUND = pl.Enum(BOUNDS)

_KEYS = {"model": pl.Categorical(), "hardware": pl.Categorical(), "dtype": pl.Categorical(), "batch": pl.Int64,
         "seq_len": pl.Int64, "hidden": pl.Int64, "spec_k": pl.Int64, "phase": PHASE}
#: Column names and types of the long frame.
OPS_SCHEMA = pl.Schema({**_KEYS, "op": OP, "group": GROUP, "flops": pl.Float64, "bytes": pl.Float64,
                        "intensity": pl.Float64, "attainable_flops": pl.Float64, "time_s": pl.Float64,
                        "bound": BOUND})
#: Column names and types of the summary frame.
SUMMARY_SCHEMA = pl.Schema({**_KEYS, **{name: pl.Float64 for name in engine.SUMMARY_COLUMNS[3:-1]},
                            "fits_in_memory": pl.Boolean})

#: Default ceiling on the estimated size of an in-memory frame.
DEFAULT_MAX_MEMORY_BYTES = 8 * 2**30


def row_bytes(summary: bool) -> int:
    """Estimated in-memory bytes per row of a frame."""
    schema = SUMMARY_SCHEMA if summary else OPS_SCHEMA
    return sum(1 if dtype == pl.Boolean else 8 if dtype.is_numeric() else 4 for dtype in schema.values())


@functools.lru_cache(maxsize=32)
def _op_columns(ops: tuple, rows: int) -> tuple[pl.Series, pl.Series]:
    """The repeating op and group columns for ``rows`` rows (built once, then sliced)."""
    reps = -(-rows // len(ops))
    op_codes = np.tile(np.array([OP_NAMES.index(op.name) for op in ops], np.uint32), reps)[:rows]
    group_codes = np.tile(np.array([GROUPS.index(op.group) for op in ops], np.uint32), reps)[:rows]
    return (pl.Series("op", op_codes).cat.to(OP), pl.Series("group", group_codes).cat.to(GROUP))


def chunk_frame(chunk: engine.Chunk, summary: bool) -> pl.DataFrame:
    """One computed chunk as a frame of the contract's schema (numeric columns zero-copy)."""
    task, cols, n = chunk.task, chunk.columns, chunk.rows
    keys = {
        "model": pl.repeat(task.model.name, n, dtype=pl.Categorical, eager=True),
        "hardware": pl.repeat(task.hardware.name, n, dtype=pl.Categorical, eager=True),
        "dtype": pl.repeat(task.dtype.name, n, dtype=pl.Categorical, eager=True),
        "batch": cols["batch"], "seq_len": cols["seq_len"], "hidden": cols["hidden"],
        "spec_k": pl.repeat(task.spec_k, n, dtype=pl.Int64, eager=True),
        "phase": pl.repeat(task.phase, n, dtype=PHASE, eager=True),
    }
    if summary:
        values = {name: cols[name] for name in SUMMARY_SCHEMA if name not in keys}
        return pl.DataFrame({**keys, **values}, schema=SUMMARY_SCHEMA)
    op, group = _op_columns(task.ops, task.length * len(task.ops))
    bound = pl.select(pl.when(pl.Series(cols["compute_bound"])).then(pl.lit("compute", BOUND))
                      .otherwise(pl.lit("memory", BOUND))).to_series()
    values = {name: cols[name] for name in ("flops", "bytes", "intensity", "attainable_flops", "time_s")}
    return pl.DataFrame({**keys, "op": op[:n], "group": group[:n], **values, "bound": bound},
                        schema=OPS_SCHEMA)


def resolve_spec(spec: SweepSpec | str | Path | None, keys: dict) -> SweepSpec:
    """A spec from a SweepSpec, a TOML path, keyword arguments, or the default."""
    if keys:
        if spec is not None:
            raise SpecError("sweep: give a spec or keyword arguments, not both")
        return parse_spec(**keys)
    if spec is None:
        return default_spec()
    if isinstance(spec, SweepSpec):
        return spec
    if isinstance(spec, str | Path):
        return load_spec(spec)
    raise SpecError(f"spec: expected a SweepSpec, a .toml path or None, got {spec!r}")


def sweep(spec: SweepSpec | str | Path | None = None, *, summary: bool = False,
          chunk_size: int = engine.DEFAULT_CHUNK_SIZE, max_memory_bytes: float = DEFAULT_MAX_MEMORY_BYTES,
          progress: bool = False, **keys) -> pl.DataFrame:
    """Evaluate a sweep into one polars DataFrame.

    Args:
        spec: a :class:`SweepSpec`, a TOML path, or None for the reference sweep.
        summary: one row per configuration and phase with model totals.
        chunk_size: most grid points per chunk.
        max_memory_bytes: refuse grids whose frame would be larger; stream those with
            :func:`rooflax.sweep_to_parquet`.
        progress: draw a progress line on standard error.
        **keys: the spec's TOML keys instead of ``spec`` (``model``, ``batch``, ...).

    Returns:
        The long frame, or the summary frame (module docstring).

    >>> df = sweep(model="llama-13b", hardware="a40", phases=["decode"], batch=[1], seq_len=[2048])
    >>> df.filter(op="down_proj").select("bound", "intensity").row(0)
    ('memory', 0.9997324211546389)
    """
    spec = resolve_spec(spec, keys)
    rows = spec.configurations() if summary else spec.rows()
    if rows * row_bytes(summary) > max_memory_bytes:
        raise SpecError(
            f"sweep: {rows:,} rows would take about {rows * row_bytes(summary) / 2**30:.1f} GiB in memory, "
            f"above max_memory_bytes={max_memory_bytes / 2**30:.1f} GiB; stream it to parquet "
            "(rooflax sweep SPEC -o DIR, or rooflax.sweep_to_parquet) or raise max_memory_bytes"
        )
    bar = Progress(rows, enabled=progress)
    frames = []
    for chunk in engine.run(spec, summary=summary, chunk_size=chunk_size):
        frames.append(chunk_frame(chunk, summary))
        bar.update(chunk.rows)
    bar.close()
    return pl.concat(frames, rechunk=False)
