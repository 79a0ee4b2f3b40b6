"""Measured kernel times from any source, as one frame of measured-op rows.

:func:`read_measurements` reads NVIDIA aiconfigurator's kernel tables (``gemm_perf``,
``context_attention_perf``, ``generation_attention_perf``, ``nccl_perf``, ``moe_perf``: one
``latency`` in milliseconds per call, replayed back to back on the same operands) and the
parquet file ``rooflax validate -o`` writes, into one frame with the columns of
:data:`MEASUREMENT_SCHEMA`. A table is told by its columns, not its file name; a folder is
read with every parquet file under it.

Per row:

``hardware``
    the preset the table's ``device`` string names (:func:`rooflax.config.hardware.preset_for_kind`, e.g. ``NVIDIA H100
    80GB HBM3`` → ``h100-sxm``), or the ``hardware`` given to the reader.
``kind``
    ``gemm``, ``attention_prefill``, ``attention_decode``, ``all_reduce``, ``all_gather``,
    ``alltoall``, ``reduce_scatter``, ``moe``, or the op name ``rooflax validate`` timed.
``kernel``
    the kernel that ran (aiconfigurator's ``kernel_source``; the tables mix several per
    shape, e.g. FlashAttention 3 and 4 on the H100).
``dtype``, ``kv_dtype``
    the compute and KV-cache types in rooflax's names (``bfloat16`` → ``bf16``, NCCL's
    ``half`` → ``fp16``; block-scaled and 4-bit formats keep their source names).
shape columns
    products: ``m``, ``n``, ``k``; attention: ``batch``, ``seq_len`` (tokens attended after
    the step: the prompt in prefill, the cached tokens plus the new one in decode, as a
    sweep's ``seq_len``), ``new_tokens`` (the prompt in prefill, 1 in decode), ``heads``,
    ``kv_heads``, ``head_dim``, ``window`` (0 = full attention, else a sliding window);
    collectives: ``gpus``, ``message_bytes`` (aiconfigurator counts elements: times the
    element's size); MoE: ``tokens``, ``hidden``, ``intermediate``, ``topk``, ``experts``,
    ``moe_tp``, ``moe_ep``, ``distribution`` (``balanced`` or ``power_law_…``); a validation
    row: ``model``, ``phase``, ``batch``, ``seq_len``, ``spec_k``.
``repeats``, ``measured_time_s``
    how many source rows had this exact shape and kernel, and the median of their times.

Shapes outside a kind stay null. Each source's rows are kept as measured: to price what a
serving engine picks, take the fastest kernel per shape (:func:`fastest_kernels`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import polars as pl

from rooflax.config.hardware import HARDWARE, preset_for_kind
from rooflax.errors import SpecError, unknown_name

__all__ = ["KINDS", "MEASUREMENT_SCHEMA", "fastest_kernels", "read_measurements", "validation_measurements"]

_COLLECTIVES = ("all_reduce", "all_gather", "alltoall", "reduce_scatter")
#: Every ``kind`` an aiconfigurator table gives (validation rows add the op names they timed).
KINDS = ("gemm", "attention_prefill", "attention_decode", *_COLLECTIVES, "moe")

#: Source type names → rooflax's (others, such as ``fp8_block`` or ``nvfp4``, are kept as they are).
_DTYPES = {"bfloat16": "bf16", "float16": "fp16", "half": "fp16", "float32": "fp32", "float": "fp32"}
#: Bytes per element of a collective's message, by source type name.
_ELEMENT_BYTES = {"half": 2, "float16": 2, "bfloat16": 2, "float32": 4, "float": 4, "fp8": 1, "int8": 1}

_KEYS = {
    "source": pl.String,
    "hardware": pl.String,
    "device": pl.String,
    "kind": pl.String,
    "kernel": pl.String,
    "dtype": pl.String,
    "kv_dtype": pl.String,
    "m": pl.Int64,
    "n": pl.Int64,
    "k": pl.Int64,
    "model": pl.String,
    "phase": pl.String,
    "batch": pl.Int64,
    "seq_len": pl.Int64,
    "spec_k": pl.Int64,
    "new_tokens": pl.Int64,
    "heads": pl.Int64,
    "kv_heads": pl.Int64,
    "head_dim": pl.Int64,
    "window": pl.Int64,
    "gpus": pl.Int64,
    "message_bytes": pl.Int64,
    "tokens": pl.Int64,
    "hidden": pl.Int64,
    "intermediate": pl.Int64,
    "topk": pl.Int64,
    "experts": pl.Int64,
    "moe_tp": pl.Int64,
    "moe_ep": pl.Int64,
    "distribution": pl.String,
}
#: The columns of :func:`read_measurements`' frame, in order.
MEASUREMENT_SCHEMA = pl.Schema({**_KEYS, "repeats": pl.UInt32, "measured_time_s": pl.Float64})

_ATTENTION = (
    "batch_size",
    "isl",
    "num_heads",
    "num_key_value_heads",
    "head_dim",
    "attn_dtype",
    "kv_cache_dtype",
    "step",
    "latency",
)
#: Each aiconfigurator table: its ``op_name`` and the columns it must have.
_TABLES = {
    "gemm": ("gemm_dtype", "m", "n", "k", "latency"),
    "context_attention": _ATTENTION,
    "generation_attention": _ATTENTION,
    "moe": (
        "moe_dtype",
        "num_tokens",
        "hidden_size",
        "inter_size",
        "topk",
        "num_experts",
        "moe_tp_size",
        "moe_ep_size",
        "distribution",
        "latency",
    ),
    **dict.fromkeys(_COLLECTIVES, ("nccl_dtype", "num_gpus", "message_size", "latency")),
}
#: Columns of a ``rooflax validate`` result that a measured row needs.
_VALIDATION = ("device", "hardware", "dtype", "model", "phase", "batch", "seq_len", "spec_k", "op", "measured_time_s")


def read_measurements(
    paths: str | os.PathLike | Iterable[str | os.PathLike], *, hardware: str | None = None
) -> pl.DataFrame:
    """Measured kernel times as one frame (module docstring), repeated shapes reduced to their median.

    Args:
        paths: parquet files (aiconfigurator tables, ``rooflax validate -o`` results) or
            folders to read every ``*.parquet`` under.
        hardware: the preset (or any name) every row was measured on; by default each
            table's ``device`` string names its preset (:func:`rooflax.config.hardware.preset_for_kind`).

    Returns:
        A frame with the columns of :data:`MEASUREMENT_SCHEMA`, sorted by hardware, kind and shape.

    Raises:
        SpecError: a path that is no parquet file or folder, a table of unknown columns,
            an unknown device, unit or type, or no rows at all; one line naming the file.
    """
    if hardware is not None and (not isinstance(hardware, str) or not hardware):
        raise SpecError(f"hardware: expected a preset name, got {hardware!r}")
    frames = [_rows(path, hardware) for path in _files(paths)]
    frames = [frame for frame in frames if frame.height]
    if not frames:
        raise SpecError(f"measurements: no measured rows in {', '.join(map(str, _listed(paths)))}")
    rows = pl.concat(frames, how="vertical")
    keys = list(_KEYS)
    reduced = rows.group_by(keys, maintain_order=True).agg(
        pl.len().alias("repeats"), pl.col("measured_time_s").median()
    )
    return reduced.sort(["hardware", "kind", "kernel", *keys[7:]], nulls_last=True).select(MEASUREMENT_SCHEMA.names())


def validation_measurements(frame: pl.DataFrame, hardware: str | None = None) -> pl.DataFrame:
    """A ``rooflax validate`` frame (:func:`rooflax.validate.validate`) as measured rows, as
    :func:`read_measurements` reads its file.

    Args:
        frame: the validation frame, one row per point and timed op.
        hardware: the preset or profile name the rows were measured on (default: each row's
            ``hardware``, the device's preset).
    """
    return _validation_rows(frame, "validation", "rooflax validate", hardware)


def fastest_kernels(frame: pl.DataFrame) -> pl.DataFrame:
    """One row per hardware, kind, dtype and shape: the fastest kernel measured for it (what a serving engine picks).

    >>> f = pl.DataFrame({"hardware": ["h100-sxm"] * 2, "kind": ["gemm"] * 2, "kernel": ["a", "b"],
    ...                   "m": [8, 8], "measured_time_s": [2.0, 1.0]})
    >>> fastest_kernels(f).get_column("kernel").to_list()
    ['b']
    """
    keys = [c for c in frame.columns if c in _KEYS and c not in ("kernel", "source")]
    return (
        frame.sort("measured_time_s")
        .group_by(keys, maintain_order=True)
        .first()
        .sort(keys, nulls_last=True)
        .select(frame.columns)
    )


def _listed(paths) -> list:
    return [paths] if isinstance(paths, str | os.PathLike) else list(paths)


def _files(paths) -> list[Path]:
    """Every parquet file named or under a named folder, in a stable order."""
    if paths is None or isinstance(paths, bool | bytes):
        raise SpecError(f"measurements: expected parquet files or folders, got {paths!r}")
    listed = _listed(paths)
    if not listed:
        raise SpecError("measurements: no paths given; name aiconfigurator tables or `rooflax validate -o` files")
    files = []
    for given in listed:
        if not isinstance(given, str | os.PathLike):
            raise SpecError(f"measurements: expected a file or folder path, got {given!r}")
        path = Path(given)
        if path.is_dir():
            found = sorted(path.rglob("*.parquet"))
            if not found:
                raise SpecError(f"measurements: folder {str(path)!r} holds no .parquet file")
            files += found
        elif path.is_file():
            files.append(path)
        else:
            raise SpecError(f"measurements: {str(path)!r} does not exist")
    return files


def _rows(path: Path, hardware: str | None) -> pl.DataFrame:
    """One file's rows in the measurement schema (before repeats are reduced)."""
    where = f"measurements {str(path)!r}"
    try:
        table = pl.read_parquet(path)
    except (pl.exceptions.PolarsError, OSError) as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SpecError(f"{where}: cannot read it as parquet: {message}") from None
    if "measured_time_s" in table.columns and "op" in table.columns:
        return _validation_rows(table, where, str(path), hardware)
    if "op_name" not in table.columns or "latency" not in table.columns:
        raise SpecError(
            f"{where}: neither an aiconfigurator table (op_name, latency, ...) nor a `rooflax validate` "
            f"result (op, measured_time_s, ...); its columns: {', '.join(table.columns)}"
        )
    names = table.get_column("op_name").unique().sort().to_list()
    for name in names:
        if name not in _TABLES:
            raise unknown_name(f"{where}: op_name", name, _TABLES, what="table")
    parts = []
    for name in names:
        missing = [c for c in _TABLES[name] if c not in table.columns]
        if missing:
            raise SpecError(f"{where}: {name} rows need column {missing[0]!r} (it has: {', '.join(table.columns)})")
        rows = table.filter(pl.col("op_name") == name)
        parts.append(_TABLE_READERS[_family(name)](rows, where))
    frame = pl.concat(parts, how="diagonal")
    _check_times(frame, where)
    frame = frame.with_columns(pl.lit(str(path)).alias("source"), pl.col("device").cast(pl.String))
    return _with_hardware(frame, where, hardware)


def _family(op_name: str) -> str:
    return "nccl" if op_name in _COLLECTIVES else op_name


def _dtype(column: str) -> pl.Expr:
    return pl.col(column).replace(_DTYPES)


def _gemm(rows: pl.DataFrame, where: str) -> pl.DataFrame:
    return rows.select(
        "device",
        pl.col("kernel_source").alias("kernel"),
        pl.lit("gemm").alias("kind"),
        _dtype("gemm_dtype").alias("dtype"),
        "m",
        "n",
        "k",
        _seconds(),
    )


def _attention(rows: pl.DataFrame, where: str) -> pl.DataFrame:
    decode = rows.get_column("op_name")[0] == "generation_attention"
    steps = rows.get_column("step")
    if not decode and (steps != 0).any():
        raise SpecError(
            f"{where}: context_attention rows with a cached prefix (step > 0) are not read yet; "
            "keep the rows with step = 0"
        )
    if decode and (steps < 0).any():
        raise SpecError(f"{where}: generation_attention step must be ≥ 0 (tokens already cached), got {steps.min()!s}")
    if "beam_width" in rows.columns and (rows.get_column("beam_width") != 1).any():
        raise SpecError(f"{where}: attention rows with beam_width > 1 are not read; keep beam_width = 1")
    window = pl.col("window_size") if "window_size" in rows.columns else pl.lit(0, pl.Int64)
    return rows.select(
        "device",
        pl.col("kernel_source").alias("kernel"),
        pl.lit("attention_decode" if decode else "attention_prefill").alias("kind"),
        _dtype("attn_dtype").alias("dtype"),
        _dtype("kv_cache_dtype").alias("kv_dtype"),
        pl.col("batch_size").alias("batch"),
        (pl.col("step") + 1 if decode else pl.col("isl")).alias("seq_len"),
        (pl.lit(1, pl.Int64) if decode else pl.col("isl")).alias("new_tokens"),
        pl.col("num_heads").alias("heads"),
        pl.col("num_key_value_heads").alias("kv_heads"),
        "head_dim",
        window.cast(pl.Int64).alias("window"),
        _seconds(),
    )


def _nccl(rows: pl.DataFrame, where: str) -> pl.DataFrame:
    types = rows.get_column("nccl_dtype").unique().to_list()
    for name in types:
        if name not in _ELEMENT_BYTES:
            raise unknown_name(f"{where}: nccl_dtype", name, _ELEMENT_BYTES, what="element type")
    return rows.select(
        "device",
        pl.col("kernel_source").alias("kernel"),
        pl.col("op_name").alias("kind"),
        _dtype("nccl_dtype").alias("dtype"),
        pl.col("num_gpus").alias("gpus"),
        (pl.col("message_size") * pl.col("nccl_dtype").replace_strict(_ELEMENT_BYTES, return_dtype=pl.Int64)).alias(
            "message_bytes"
        ),
        _seconds(),
    )


def _moe(rows: pl.DataFrame, where: str) -> pl.DataFrame:
    return rows.select(
        "device",
        pl.col("kernel_source").alias("kernel"),
        pl.lit("moe").alias("kind"),
        _dtype("moe_dtype").alias("dtype"),
        pl.col("num_tokens").alias("tokens"),
        pl.col("hidden_size").alias("hidden"),
        pl.col("inter_size").alias("intermediate"),
        "topk",
        pl.col("num_experts").alias("experts"),
        pl.col("moe_tp_size").alias("moe_tp"),
        pl.col("moe_ep_size").alias("moe_ep"),
        "distribution",
        _seconds(),
    )


_TABLE_READERS = {
    "gemm": _gemm,
    "context_attention": _attention,
    "generation_attention": _attention,
    "nccl": _nccl,
    "moe": _moe,
}


def _seconds() -> pl.Expr:
    """aiconfigurator's ``latency`` is milliseconds per call."""
    return (pl.col("latency").cast(pl.Float64) / 1e3).alias("measured_time_s")


def _check_times(frame: pl.DataFrame, where: str) -> None:
    times = frame.get_column("measured_time_s")
    bad = frame.filter(~(times > 0) | times.is_infinite() | times.is_null())
    if bad.height:
        raise SpecError(f"{where}: {bad.height} rows have no positive finite time (first: {bad.row(0, named=True)})")
    ints = [c for c in frame.columns if frame.schema[c].is_integer()]
    for column in ints:
        values = frame.get_column(column)
        if (values <= 0).any() and column not in ("window",):
            raise SpecError(f"{where}: {column} must be positive, got {values.min()!s}")


def _with_hardware(frame: pl.DataFrame, where: str, hardware: str | None) -> pl.DataFrame:
    """The ``hardware`` column: the given name, or each row's device mapped to its preset."""
    if hardware is None:
        presets = {}
        for device in frame.get_column("device").unique().sort().to_list():
            preset = preset_for_kind(device)
            if preset is None:
                raise SpecError(
                    f"{where}: device {device!r} is no GPU rooflax has a preset for (presets: "
                    f"{', '.join(HARDWARE)}); give hardware= (--hardware) to name the one it is"
                )
            presets[device] = preset.name
        named = pl.col("device").replace_strict(presets, return_dtype=pl.String)
    else:
        named = pl.lit(hardware)
    frame = frame.with_columns(named.alias("hardware"))
    return _in_schema(frame)


def _in_schema(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with the key columns and ``measured_time_s`` in order, the kinds' missing shape columns null."""
    return frame.select(
        [
            pl.col(c).cast(t) if c in frame.columns else pl.lit(None, t).alias(c)
            for c, t in {**_KEYS, "measured_time_s": pl.Float64}.items()
        ]
    )


def _validation_rows(table: pl.DataFrame, where: str, source: str, hardware: str | None) -> pl.DataFrame:
    """A ``rooflax validate`` result: one measured row per point and op (already a median of its repeats)."""
    missing = [c for c in _VALIDATION if c not in table.columns]
    if missing:
        raise SpecError(f"{where}: a `rooflax validate` result needs column {missing[0]!r}")
    _check_times(table.select("measured_time_s"), where)
    frame = table.select(
        pl.lit(source).alias("source"),
        pl.col("device").cast(pl.String),
        pl.col("op").cast(pl.String).alias("kind"),
        pl.lit("rooflax validate").alias("kernel"),
        pl.col("dtype").cast(pl.String),
        pl.col("model").cast(pl.String),
        pl.col("phase").cast(pl.String),
        "batch",
        "seq_len",
        "spec_k",
        "measured_time_s",
        pl.col("hardware").cast(pl.String).alias("_preset"),
    )
    if hardware is None:
        unnamed = frame.filter(pl.col("_preset").is_null())
        if unnamed.height:
            raise SpecError(
                f"{where}: measured on {unnamed.get_column('device')[0]!r}, which has no preset; give "
                "hardware= (--hardware) to name the preset or profile it was measured on"
            )
        frame = frame.with_columns(pl.col("_preset").alias("hardware"))
    else:
        frame = frame.with_columns(pl.lit(hardware).alias("hardware"))
    frame = frame.drop("_preset")
    return _in_schema(frame)
