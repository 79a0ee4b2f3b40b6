"""Polars frames of sweep results: the frame contract of DESIGN.md, and :func:`sweep`.

Long frame (one row per grid point × phase × op):

=================  ===========  ==========================================================
column             type         meaning
=================  ===========  ==========================================================
model              Enum         model preset (``llama-13b``) or file name
hardware           Enum         hardware preset (``a40``) or profile name
dtype              Enum         dtype policy (``fp16``; ``fp16/kv=fp8`` with a KV override)
batch              Int64        sequences in the batch, ``B``
seq_len            Int64        sequence length after the step, ``S``
hidden             Int64        model width, ``h``
tp, pp, ep         Int64        tensor-, pipeline- and expert-parallel degrees (1: one device)
spec_k             Int64        draft tokens ``K`` in verify; null in prefill and decode
phase              Enum         ``prefill``, ``decode``, ``verify``
layer              Enum         the row's layer kind, ``attention/mlp`` (:data:`rooflax.names.LAYER_KINDS`:
                                ``full/dense``, ``sliding/moe``, ...); null on ``lm_head`` and
                                ``pp_send`` rows (once per model)
op                 Enum         operation (:data:`rooflax.cost.ops.OP_NAMES`)
group              Enum         chart group (:data:`rooflax.names.GROUPS`)
flops              Float64      FLOPs of the op in one layer of its kind on one device (``lm_head``:
                                once per model; ``pp_send``: once per stage boundary)
bytes              Float64      bytes moved to and from memory, same scope; for ``comm``
                                ops, bytes a device sends over the interconnect
intensity          Float64      FLOP/byte
attainable_flops   Float64      FLOP/s under the roof
time_s             Float64      seconds, ``max(flops/peak, bytes/bandwidth)``; ``comm``
                                ops: ``bytes/interconnect + hops · latency``
bound              Enum         ``memory``, ``compute``, or ``network`` (``comm`` ops)
=================  ===========  ==========================================================

Rows are per device (:mod:`rooflax.ops`). A layout with every degree 1 has no ``comm``
rows, and its rows are exactly those of a one-device sweep. A model whose layers differ
(:attr:`rooflax.Model.layer_kinds`: sliding-window and full attention, dense and MoE layers)
has each layer op once per kind, told apart by ``layer``; the model's totals weigh each
kind's rows by its layer count.

Row order follows the engine's chunks (:mod:`rooflax.engine`): step by step, and within a
chunk op by op (every point's ``attn_norm``, then every point's ``qkv_proj``, ...), points
in ``batch``, ``seq_len``, ``hidden`` order. The same spec and ``chunk_size`` give the same
order on any number of devices or processes; another ``chunk_size`` gives the same rows
in another order. Sort by the key columns where order matters.

``model``, ``hardware`` and ``dtype`` are categorical columns of polars type Enum whose
categories are every preset name followed by the names the sweep adds, so frames of
different preset sweeps concatenate as they are (:func:`schemas`).

Summary frame (``summary=True``, one row per grid point × phase): the same first eleven
columns, then model totals ``flops``, ``bytes``, ``network_bytes`` (over the
interconnect), ``intensity``, ``time_s`` (time to first token in prefill, time per output
token in decode, time of one verify step), ``tokens_per_s`` (the system's: ``B·Q/time_s``
on one device, pipeline rules in :mod:`rooflax.roofline`), ``tokens_per_s_per_gpu``, and
per device ``weight_bytes``, ``kv_cache_bytes``, ``activation_bytes``, ``memory_bytes``
and ``fits_in_memory`` (Boolean).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Unpack

import numpy as np
import polars as pl

from rooflax.config.dtypes import DTYPES
from rooflax.config.hardware import HARDWARE
from rooflax.config.models import MODELS
from rooflax.config.spec import SpecKeys, SweepSpec, default_spec, load_spec, parse_spec
from rooflax.cost.ops import OP_NAMES
from rooflax.data.progress import Progress
from rooflax.engine import vectorized as engine
from rooflax.errors import SpecError, boolean, positive_float
from rooflax.names import BOUNDS, GROUPS, LAYER_KINDS, LAYOUT, PHASES

__all__ = [
    "OPS_SCHEMA",
    "SUMMARY_SCHEMA",
    "check_in_memory",
    "chunk_frame",
    "column_units",
    "resolve_spec",
    "schemas",
    "sweep",
]

PHASE = pl.Enum(PHASES)
OP = pl.Enum(OP_NAMES)
LAYER = pl.Enum(LAYER_KINDS)
GROUP = pl.Enum(GROUPS)
BOUND = pl.Enum(BOUNDS)

_VALUES = dict.fromkeys(engine.ROW_COLUMNS, pl.Float64)


def _names(presets: Iterable[str], chosen: Iterable[str]) -> pl.Enum:
    """An Enum of every preset name, then names the spec adds (user files, KV overrides).

    Frames of sweeps over presets share one Enum type, so they concatenate directly.
    """
    return pl.Enum(list(dict.fromkeys([*presets, *chosen])))


@functools.lru_cache(maxsize=16)
def schemas(spec: SweepSpec | None = None) -> tuple[pl.Schema, pl.Schema]:
    """The long and summary schemas for frames of ``spec`` (presets only when None)."""
    keys: dict[str, pl.DataType | type[pl.DataType]] = {
        "model": _names(MODELS, [m.name for m in spec.models] if spec else []),
        "hardware": _names(HARDWARE, [h.name for h in spec.hardware] if spec else []),
        "dtype": _names(DTYPES, [d.name for d in spec.dtypes] if spec else []),
        "batch": pl.Int64,
        "seq_len": pl.Int64,
        "hidden": pl.Int64,
        "tp": pl.Int64,
        "pp": pl.Int64,
        "ep": pl.Int64,
        "spec_k": pl.Int64,
        "phase": PHASE,
    }
    ops = pl.Schema({**keys, "layer": LAYER, "op": OP, "group": GROUP, **_VALUES, "bound": BOUND})
    summary = pl.Schema(
        {**keys, **{name: pl.Float64 for name in engine.SUMMARY_COLUMNS[3:-1]}, "fits_in_memory": pl.Boolean}
    )
    return ops, summary


#: Column names and types of the long and summary frames of preset sweeps.
OPS_SCHEMA, SUMMARY_SCHEMA = schemas()

_PER_LAYER = "one layer (lm_head rows: once per model)"
_PER_MODEL = "the whole model, one step (all layers and lm_head)"
_KEY_UNITS = {
    "model": (None, "preset or file name"),
    "hardware": (None, "preset or profile name"),
    "dtype": (None, "dtype policy name"),
    "batch": ("sequences", "grid coordinate"),
    "seq_len": ("tokens", "grid coordinate: sequence length after the step"),
    "hidden": ("elements", "grid coordinate: model width"),
    "tp": ("devices", "tensor-parallel degree (rows are per device)"),
    "pp": ("devices", "pipeline stages (rows are per device)"),
    "ep": ("devices", "expert-parallel degree (rows are per device)"),
    "spec_k": ("tokens", "grid coordinate: draft tokens per verify step (null outside verify)"),
    "phase": (None, "prefill, decode or verify"),
}
_OPS_UNITS = {
    "layer": (None, "layer kind of the row, attention/mlp (null: once per model)"),
    "op": (None, "operation"),
    "group": (None, "chart group of the op"),
    "flops": ("FLOP", _PER_LAYER),
    "bytes": ("byte", _PER_LAYER),
    "intensity": ("FLOP/byte", "the op"),
    "attainable_flops": ("FLOP/s", "the op, under the roof (collectives: the interconnect's)"),
    "time_s": ("s", _PER_LAYER),
    "achieved_flops": ("FLOP/s", "the op, predicted below the roof"),
    "achieved_time_s": ("s", _PER_LAYER + ", predicted below the roof"),
    "bound": (None, "memory, compute or network (collectives)"),
}
_SUMMARY_UNITS = {
    "flops": ("FLOP", _PER_MODEL),
    "bytes": ("byte", _PER_MODEL),
    "intensity": ("FLOP/byte", _PER_MODEL),
    "time_s": ("s", _PER_MODEL + "; prefill: time to first token, decode: per output token"),
    "tokens_per_s": (
        "token/s",
        "the whole system: batch × new tokens per step over the slowest "
        "pipeline stage's time (time_s without pipelining)",
    ),
    "tokens_per_s_per_gpu": ("token/s", "tokens_per_s / (tp · pp · ep)"),
    "network_bytes": ("byte", _PER_MODEL + ", over the interconnect"),
    "achieved_time_s": ("s", _PER_MODEL + ", predicted below the roof"),
    "achieved_tokens_per_s": ("token/s", "batch × new tokens per step / achieved_time_s"),
    "achieved_time_lo_s": (
        "s",
        "achieved_time_s's error band, low end: every op at its group's "
        "p10 of measured / predicted (null: no measurements)",
    ),
    "achieved_time_hi_s": ("s", "the band's high end: every op at its group's p90"),
    "weight_bytes": ("byte", "weights one device holds"),
    "kv_cache_bytes": ("byte", "KV cache one device holds after the step"),
    "activation_bytes": ("byte", "peak live activations of one layer"),
    "memory_bytes": ("byte", "weights + KV cache + activations"),
    "fits_in_memory": (None, "memory_bytes ≤ one device's memory"),
}


def column_units(summary: bool) -> dict[str, dict[str, str | None]]:
    """Unit (None: a name or flag) and scope of every column of the long or summary frame.

    >>> column_units(False)["flops"]
    {'unit': 'FLOP', 'scope': 'one layer (lm_head rows: once per model)'}
    """
    table = {**_KEY_UNITS, **(_SUMMARY_UNITS if summary else _OPS_UNITS)}
    schema = SUMMARY_SCHEMA if summary else OPS_SCHEMA
    return {name: {"unit": table[name][0], "scope": table[name][1]} for name in schema}


#: Default ceiling on the estimated size of an in-memory frame.
DEFAULT_MAX_MEMORY_BYTES = 8 * 2**30


def row_bytes(summary: bool) -> int:
    """Estimated in-memory bytes per row of a frame."""
    schema = SUMMARY_SCHEMA if summary else OPS_SCHEMA
    return sum(1 if dtype == pl.Boolean else 8 if dtype.is_numeric() else 1 for dtype in schema.values())


def check_in_memory(
    what: str, rows: int, per_row: float, *, limit: float = DEFAULT_MAX_MEMORY_BYTES, instead: str
) -> None:
    """Refuse, before any work, a frame of ``rows`` rows of ``per_row`` bytes that would pass ``limit`` bytes.

    The message (one line, naming ``what``) says how many rows, how much memory, the limit,
    and what to do ``instead``.
    """
    if rows * per_row > limit:
        raise SpecError(
            f"{what}: {rows:,} rows would take about {rows * per_row / 2**30:,.1f} GiB in memory, "
            f"above the limit of {limit / 2**30:.1f} GiB ({int(limit // per_row):,} rows); {instead}"
        )


@functools.lru_cache(maxsize=64)
def _op_columns(ops: tuple, points: int) -> tuple[pl.Series, pl.Series, pl.Series]:
    """The layer, op and group columns of a chunk of ``points`` points: each op's rows in one run (op-major)."""
    op_codes = np.repeat(np.array([OP_NAMES.index(op.name) for _, op in ops], np.uint32), points)
    group_codes = np.repeat(np.array([GROUPS.index(op.group) for _, op in ops], np.uint32), points)
    layers = [None if kind is None else LAYER_KINDS.index(kind.name) for kind, _ in ops]
    layer = pl.Series("layer", layers, pl.UInt32).cat.to(LAYER).gather(np.repeat(np.arange(len(ops)), points))
    return (layer, pl.Series("op", op_codes).cat.to(OP), pl.Series("group", group_codes).cat.to(GROUP))


@functools.lru_cache(maxsize=64)
def _constant(value: Any, dtype: pl.DataType, rows: int) -> pl.Series:
    """A column holding ``value`` ``rows`` times (built once per chunk length, then sliced)."""
    return pl.repeat(value, rows, dtype=dtype, eager=True)


def chunk_frame(chunk: engine.Chunk, spec: SweepSpec, summary: bool) -> pl.DataFrame:
    """One computed chunk as a frame of the contract's schema.

    Numeric columns wrap the engine's arrays without a copy; constant and repeating
    columns (the engine's one-value columns among them) are slices of series built once per
    chunk length and value.
    """
    task, cols, n = chunk.task, chunk.columns, chunk.rows
    ops_schema, summary_schema = schemas(spec)
    full = task.length * task.width(summary)

    def column(name: str, dtype: pl.DataType) -> np.ndarray | pl.Series:
        if name in engine.BAND_ENDS and name not in cols:  # a roof with no error band: null, unknown
            return _constant(None, dtype, full)[:n]
        value = cols[name]
        return _constant(value.item(), dtype, full)[:n] if value.ndim == 0 else value

    keys = {
        "model": _constant(task.model.name, ops_schema["model"], full)[:n],
        "hardware": _constant(task.hardware.name, ops_schema["hardware"], full)[:n],
        "dtype": _constant(task.dtype.name, ops_schema["dtype"], full)[:n],
        "batch": cols["batch"],
        "seq_len": cols["seq_len"],
        "hidden": column("hidden", pl.Int64()),
        **{name: _constant(degree, pl.Int64(), full)[:n] for name, degree in zip(LAYOUT, task.layout, strict=True)},
        "spec_k": _constant(task.spec_k, pl.Int64(), full)[:n],
        "phase": _constant(task.phase, PHASE, full)[:n],
    }
    if summary:
        values = {name: column(name, summary_schema[name]) for name in summary_schema if name not in keys}
        return pl.DataFrame({**keys, **values}, schema=summary_schema)
    layer, op, group = _op_columns(task.ops, task.count)
    bound = pl.Series("bound", cols["bound"].astype(np.uint32)).cat.to(BOUND)  # indices into BOUNDS (op_row)
    values = {name: cols[name] for name in _VALUES}
    return pl.DataFrame({**keys, "layer": layer, "op": op, "group": group, **values, "bound": bound}, schema=ops_schema)


def resolve_spec(spec: SweepSpec | str | Path | None, keys: SpecKeys, *, reference_axes: bool = False) -> SweepSpec:
    """A spec from a SweepSpec or a TOML path with ``keys`` replacing its keys, else from ``keys`` alone.

    Args:
        spec: a :class:`SweepSpec`, a TOML path, or None: ``keys`` alone (:func:`parse_spec`),
            or the reference sweep when there are none.
        keys: the TOML keys (``batch``, ``model``, ...); an axis replaces that axis only,
            None removes a key.
        reference_axes: with ``spec`` None, the reference sweep's ``batch`` and ``seq_len``
            where ``keys`` give none (what the CLI's flags do without a spec file).
    """
    if spec is None:
        if keys and reference_axes:
            reference = default_spec()
            given = reference.given_axes or {}  # a parsed spec keeps its axes as given
            keys = {"batch": given["batch"], "seq_len": given["seq_len"], **keys}
        return parse_spec(**keys) if keys else default_spec()
    if isinstance(spec, SweepSpec):
        return spec.with_keys(**keys) if keys else spec
    if isinstance(spec, str | Path):
        return load_spec(spec, **keys)
    raise SpecError(f"spec: expected a SweepSpec, a .toml path or None, got {spec!r}")


def sweep(
    spec: SweepSpec | str | Path | None = None,
    *,
    summary: bool = False,
    chunk_size: int | None = None,
    max_memory_bytes: float = DEFAULT_MAX_MEMORY_BYTES,
    progress: bool = False,
    **keys: Unpack[SpecKeys],
) -> pl.DataFrame:
    """Evaluate a sweep into one polars DataFrame.

    Args:
        spec: a :class:`SweepSpec`, a TOML path, or None for the reference sweep.
        summary: one row per configuration and phase with model totals.
        chunk_size: most grid points per chunk (None: the engine's default for the kind).
        max_memory_bytes: refuse grids whose frame would be larger; stream those with
            :func:`rooflax.sweep_to_parquet`.
        progress: draw a progress line on standard error.
        **keys: the spec's TOML keys (``model``, ``batch``, ...), replacing those of
            ``spec`` when one is given (:func:`resolve_spec`).

    Returns:
        The long frame, or the summary frame (module docstring).

    >>> df = sweep(model="llama-13b", hardware="a40", phases=["decode"], batch=[1], seq_len=[2048])
    >>> df.filter(op="down_proj").select("bound", "intensity").row(0)
    ('memory', 0.9997324211546389)
    """
    summary, progress = boolean("summary", summary), boolean("progress", progress)
    max_memory_bytes = positive_float("max_memory_bytes", max_memory_bytes)
    spec = resolve_spec(spec, keys)
    rows = spec.configurations() if summary else spec.rows()
    check_in_memory(
        "sweep",
        rows,
        row_bytes(summary),
        limit=max_memory_bytes,
        instead="stream it to parquet (rooflax sweep SPEC -o DIR, or rooflax.sweep_to_parquet), give a "
        "smaller grid, or raise max_memory_bytes",
    )
    bar = Progress(rows, enabled=progress)
    frames = []
    for chunk in engine.run(spec, summary=summary, chunk_size=chunk_size):
        frames.append(chunk_frame(chunk, spec, summary))
        bar.update(chunk.rows)
    bar.close()
    return pl.concat(frames, rechunk=False)
