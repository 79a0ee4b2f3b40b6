"""The sweep engine: the one place with ``jit`` and ``vmap``.

A sweep is cut into *blocks* (one per model × hardware × dtype), each block into
*steps* (prefill, decode, one verify step per ``spec_k``), and each step's grid of
``batch × seq_len × hidden`` points into chunks of at most ``chunk_size`` points. A
chunk is decoded from a flat index on the device (the grid is never built on the
host), evaluated by one jitted, vmapped function per static configuration, and
sharded over every local device. Verify points with ``seq_len < spec_k`` are never
produced: each verify step starts at the first valid ``seq_len``.

Chunk boundaries depend only on the spec and ``chunk_size`` (every step is cut at
multiples of it), never on the devices, so a dataset interrupted on one machine resumes
on another. The compiled length of a step's chunks is the step's points rounded up to a
power of two, capped at ``chunk_size``, and at least :data:`MIN_LENGTH`; it is padded up
to a multiple of the device count only at dispatch. The axis tables are padded to powers
of two the same way, so sweeps of nearby sizes share one compiled function.

All arithmetic runs in float64 inside a local ``jax.enable_x64`` context: counts
stay exact to 2**53 and global JAX configuration is left as it was.
"""

from __future__ import annotations

import functools
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from rooflax.dtypes import DtypePolicy
from rooflax.errors import SpecError, positive_int
from rooflax.hardware import Hardware
from rooflax.models import Model, llama_intermediate
from rooflax.ops import PHASES, OpDef, layer_ops, make_step, new_tokens
from rooflax.roofline import attainable, intensity, is_compute_bound, model_totals
from rooflax.spec import SweepSpec

__all__ = ["DEFAULT_CHUNK_SIZE", "MAX_CHUNK_SIZE", "Chunk", "Task", "check_chunk_size", "plan", "run"]

#: Grid points per chunk unless told otherwise (about 1 M op rows, 90 MB of frame).
DEFAULT_CHUNK_SIZE = 1 << 16
#: Most grid points per chunk. A point of the long frame is up to 16 op rows of about
#: 80 B of frame plus the engine's output, about 1.5 KB in all (one chunk of 2**20
#: points peaks at 1.5 GiB RSS); a stream keeps up to three chunks alive, so at the
#: bound a sweep stays under about 5 GB whatever the grid. Chunks past the default run
#: no faster.
MAX_CHUNK_SIZE = 1 << 20
#: Fewest points a chunk is compiled for: small sweeps of any size share one function.
MIN_LENGTH = 64

#: Output columns of a chunk in summary mode.
SUMMARY_COLUMNS = ("batch", "seq_len", "hidden", "flops", "bytes", "intensity", "time_s", "tokens_per_s",
                   "weight_bytes", "kv_cache_bytes", "activation_bytes", "memory_bytes", "fits_in_memory")


@dataclass(frozen=True, slots=True)
class Task:
    """One chunk to compute: where it sits in the sweep and what it covers."""

    index: int  # position among all chunks of the sweep (part number of a dataset)
    model: Model
    hardware: Hardware
    dtype: DtypePolicy
    hidden: tuple[int, ...]
    ops: tuple[OpDef, ...]
    phase: str
    spec_k: int | None
    seq_start: int  # first valid seq_len index of this step
    start: int  # first point (flat index within the step)
    count: int  # points in this chunk
    length: int  # compiled chunk length before padding to the device count (count padded up)

    def width(self, summary: bool) -> int:
        """Rows per grid point: one per op, or one in summary mode."""
        return 1 if summary else len(self.ops)


@dataclass(frozen=True, slots=True)
class Chunk:
    """A computed chunk: its task and host columns (numpy), trimmed to real rows."""

    task: Task
    columns: dict[str, np.ndarray]

    @property
    def rows(self) -> int:
        return len(self.columns["flops"])


def check_chunk_size(chunk_size: object) -> int:
    """``chunk_size`` as an int, or a one-line SpecError outside ``1..MAX_CHUNK_SIZE``."""
    allowed = f"expected an integer from 1 to {MAX_CHUNK_SIZE} (2**20 grid points), got {chunk_size!r}"
    try:
        value = positive_int("chunk_size", chunk_size)
    except SpecError:
        raise SpecError(f"chunk_size: {allowed}") from None
    if value > MAX_CHUNK_SIZE:
        raise SpecError(f"chunk_size: {allowed}")
    return value


def _bucket(n: int) -> int:
    """``n`` rounded up to a power of two, at least :data:`MIN_LENGTH`."""
    return max(MIN_LENGTH, 1 << max(n - 1, 0).bit_length())


def plan(spec: SweepSpec, chunk_size: int = DEFAULT_CHUNK_SIZE) -> list[Task]:
    """Every chunk of the sweep, in output order; the same on any number of devices."""
    chunk_size = check_chunk_size(chunk_size)
    tasks = []
    for model in spec.models:
        hidden = spec.hidden_for(model)
        ops = layer_ops(gated_mlp=model.gated_mlp, fused_attention=spec.fused_attention)
        for hardware in spec.hardware:
            for dtype in spec.dtypes:
                for phase, spec_k, seq_start in spec.steps():
                    points = len(spec.batch) * (len(spec.seq_len) - seq_start) * len(hidden)
                    length = max(MIN_LENGTH, min(chunk_size, _bucket(points)))
                    for start in range(0, points, chunk_size):
                        tasks.append(Task(len(tasks), model, hardware, dtype, hidden, ops, phase, spec_k,
                                          seq_start, start, min(chunk_size, points - start), length))
    return tasks


#: Names of the packed per-chunk integer and float parameters (one transfer each per chunk).
_INTS = ("start", "count", "seq_start", "n_seq", "n_hidden", "phase", "spec_k", "model_hidden", "heads", "kv_heads",
         "head_dim", "group_size", "intermediate", "vocab", "layers")
_FLOATS = ("w", "a", "k", "peak", "bandwidth", "memory", "inv_peak", "inv_bandwidth")


def _unpack(packed: dict) -> dict:
    """The named parameters of a chunk from its packed vectors and axis tables."""
    return {**{name: packed["ints"][i] for i, name in enumerate(_INTS)},
            **{name: packed["floats"][i] for i, name in enumerate(_FLOATS)},
            **{name: packed[name] for name in ("batch_values", "seq_values", "hidden_values")}}


def _point(index, p, *, ops, gated, tied, fused, causal, summary):
    """Costs of one grid point: decode the flat index, scale the model, count every op."""
    f64 = jnp.float64
    n_hidden = p["n_hidden"]
    n_seq = p["n_seq"] - p["seq_start"]
    rest, h_i = jnp.divmod(index, n_hidden)
    b_i, s_i = jnp.divmod(rest, n_seq)
    batch = p["batch_values"][b_i]
    seq_len = p["seq_values"][p["seq_start"] + s_i]
    hidden = p["hidden_values"][h_i]
    own = hidden == p["model_hidden"]
    heads = jnp.where(own, p["heads"], hidden // p["head_dim"])
    kv_heads = jnp.where(own, p["kv_heads"], heads // p["group_size"])
    intermediate = jnp.where(own, p["intermediate"], llama_intermediate(hidden))
    new = new_tokens(p["phase"], seq_len, p["spec_k"], jnp.where)
    # counts in float64 from here on: an int64 product such as B·K can overflow
    logits_tokens = batch.astype(f64) * jnp.where(p["phase"] == PHASES.index("verify"), p["spec_k"], 1).astype(f64)
    step = make_step(batch=batch.astype(f64), seq_len=seq_len.astype(f64), new=new.astype(f64),
                     hidden=hidden.astype(f64), heads=heads.astype(f64), kv_heads=kv_heads.astype(f64),
                     head_dim=p["head_dim"].astype(f64), intermediate=intermediate.astype(f64),
                     vocab=p["vocab"].astype(f64), w=p["w"], a=p["a"], k=p["k"], causal=causal,
                     logits_tokens=logits_tokens)
    costs = [op.cost(step) for op in ops]
    flops = jnp.stack([c[0] for c in costs])
    bytes_ = jnp.stack([c[1] for c in costs])
    peak, bandwidth = p["peak"], p["bandwidth"]
    # roofline.op_time divides by the peak and bandwidth; here the host's reciprocals are
    # multiplied instead, because XLA compiles a division by a scalar differently with and
    # without sharding, and results must not depend on the device count.
    times = jnp.maximum(flops * p["inv_peak"], bytes_ * p["inv_bandwidth"])
    coords = {"batch": batch, "seq_len": seq_len, "hidden": hidden}
    if not summary:
        n_ops = len(ops)
        return {
            **{name: jnp.broadcast_to(value, (n_ops,)) for name, value in coords.items()},
            "flops": flops, "bytes": bytes_, "intensity": intensity(flops, bytes_),
            "attainable_flops": attainable(flops, bytes_, peak, bandwidth, minimum=jnp.minimum), "time_s": times,
            "compute_bound": is_compute_bound(flops, bytes_, peak, bandwidth),
        }
    # the last op is the once-per-model lm_head
    totals = model_totals(step, layer=(flops[:-1].sum(), bytes_[:-1].sum(), times[:-1].sum()),
                          head=(flops[-1], bytes_[-1], times[-1]), layers=p["layers"].astype(f64), gated_mlp=gated,
                          tied_embeddings=tied, fused_attention=fused, memory_capacity=p["memory"],
                          maximum=jnp.maximum)
    return {**coords, **totals}


@functools.lru_cache(maxsize=128)
def _compiled(ops: tuple[OpDef, ...], gated: bool, tied: bool, fused: bool, causal: bool, summary: bool,
              length: int, devices: tuple):
    """The jitted chunk function for one static configuration (cached: no recompiles)."""
    point = functools.partial(_point, ops=ops, gated=gated, tied=tied, fused=fused, causal=causal,
                              summary=summary)

    def chunk(packed):
        p = _unpack(packed)
        index = jnp.minimum(p["start"] + jnp.arange(length, dtype=jnp.int64), p["count"] - 1)
        if len(devices) > 1:
            index = jax.lax.with_sharding_constraint(index, sharding)
        out = jax.vmap(point, in_axes=(0, None))(index, p)
        return {name: value.reshape(-1) for name, value in out.items()}

    if len(devices) == 1:
        return jax.jit(chunk)
    sharding = NamedSharding(Mesh(np.array(devices), ("points",)), PartitionSpec("points"))
    return jax.jit(chunk, out_shardings=sharding)


def _table(values: tuple[int, ...]) -> jax.Array:
    """An axis on the device, padded with its last value to :func:`_bucket` of its length."""
    return jnp.asarray(values + values[-1:] * (_bucket(len(values)) - len(values)), jnp.int64)


def _tables(spec: SweepSpec, hidden: tuple[int, ...]) -> dict:
    """The axis value tables on the device (sent once per sweep and hidden set)."""
    return {"batch_values": _table(spec.batch), "seq_values": _table(spec.seq_len), "hidden_values": _table(hidden)}


def _params(task: Task, spec: SweepSpec, tables: dict) -> dict:
    """The packed parameters of one chunk: two small vectors plus the shared axis tables."""
    m, hw, dt = task.model, task.hardware, task.dtype
    peak = hw.peak(dt.compute)
    ints = {"start": task.start, "count": task.start + task.count, "seq_start": task.seq_start,
            "n_seq": len(spec.seq_len), "n_hidden": len(task.hidden),
            "phase": PHASES.index(task.phase), "spec_k": task.spec_k or 0, "model_hidden": m.hidden,
            "heads": m.heads, "kv_heads": m.kv_heads, "head_dim": m.head_dim, "group_size": m.group_size,
            "intermediate": m.intermediate, "vocab": m.vocab, "layers": m.layers}
    floats = {"w": dt.weight_bytes, "a": dt.act_bytes, "k": dt.kv_bytes, "peak": peak,
              "bandwidth": hw.bandwidth_bytes_per_s, "memory": hw.memory_bytes, "inv_peak": 1 / peak,
              "inv_bandwidth": 1 / hw.bandwidth_bytes_per_s}  # reciprocals: see _point
    return {"ints": np.array([ints[n] for n in _INTS], np.int64),
            "floats": np.array([floats[n] for n in _FLOATS], np.float64), **tables}


def compiled_for(task: Task, spec: SweepSpec, summary: bool, devices: tuple):
    """The cached jitted function that computes ``task``: its length padded to a multiple of the devices."""
    length = -(-task.length // len(devices)) * len(devices)
    return _compiled(task.ops, task.model.gated_mlp, task.model.tied_embeddings, spec.fused_attention,
                     spec.causal, summary, length, devices)


def _dispatch(task: Task, spec: SweepSpec, summary: bool, devices: tuple, tables: dict):
    with jax.enable_x64(True):
        return compiled_for(task, spec, summary, devices)(_params(task, spec, tables))


def _to_host(task: Task, out: dict, summary: bool) -> Chunk:
    rows = task.count * task.width(summary)
    return Chunk(task, {name: np.asarray(value)[:rows] for name, value in out.items()})


def run(spec: SweepSpec, *, summary: bool = False, chunk_size: int = DEFAULT_CHUNK_SIZE,
        skip: frozenset[int] = frozenset(), devices: tuple | None = None) -> Iterator[Chunk]:
    """Compute the sweep chunk by chunk, the next chunk running while the caller handles this one.

    Args:
        spec: the sweep.
        summary: one row per configuration and phase (model totals) instead of one per op.
        chunk_size: most grid points per chunk; bounds memory.
        skip: chunk indices not to compute (already written, on resume).
        devices: JAX devices to shard over; all local devices by default.
    """
    devices = tuple(devices or jax.local_devices())
    pending: deque = deque()
    tables: dict[tuple, dict] = {}
    for task in plan(spec, chunk_size):
        if task.index in skip:
            continue
        if task.hidden not in tables:
            with jax.enable_x64(True):
                tables[task.hidden] = _tables(spec, task.hidden)
        pending.append((task, _dispatch(task, spec, summary, devices, tables[task.hidden])))
        if len(pending) > 1:
            yield _to_host(*pending.popleft(), summary)
    while pending:
        yield _to_host(*pending.popleft(), summary)
