"""The sweep engine: the one place with ``jit`` and ``vmap``.

A sweep is cut into *blocks* (one per model × hardware × dtype × parallel layout
``(tp, pp, ep)``), each block into
*steps* (prefill, decode, one verify step per ``spec_k``), and each step's grid of
``batch × seq_len × hidden`` points into chunks of at most ``chunk_size`` points. A
chunk is decoded from a flat index on the device (the grid is never built on the
host), evaluated by one jitted, vmapped function per static configuration, and
sharded over every local device. Verify points with ``seq_len < spec_k`` are never
produced: each verify step starts at the first valid ``seq_len``.

Per point, the chunk function gathers the model's :class:`~rooflax.cost.shape.Shape` at the
point's hidden size from a table built on the host with :meth:`Shape.of
<rooflax.cost.shape.Shape.of>` (a step of one hidden size shares the shape's scalars with
every point instead), fills in ``batch`` and ``seq_len``, and hands the shapes to
``jax.vmap``; the costs come from :func:`~rooflax.cost.ops.make_step` and
:func:`~rooflax.cost.ops.op_costs`, and each op's row from
:func:`~rooflax.cost.roofline.op_row`, exactly as in :func:`rooflax.evaluate`.

Chunk boundaries depend only on the spec and ``chunk_size`` (every step is cut at
multiples of it), never on the devices, so a dataset interrupted on one machine resumes
on another. The compiled length of a step's chunks is the step's points rounded up to a
power of two, capped at ``chunk_size``, and at least :data:`MIN_LENGTH`; it is padded up
to a multiple of the device count only at dispatch. The axis tables are padded to powers
of two the same way, so sweeps of nearby sizes share one compiled function.

The parallel degrees are leaves of the shape, so every layout runs the same compiled
function; only which collectives exist (a degree above 1 or not) is static, because an
op that does not exist at ``tp = 1`` has no row there (a one-device layout keeps exactly
the frames of a one-device sweep).

All arithmetic runs in float64 inside a local ``jax.enable_x64`` context: counts
stay exact to 2**53 and global JAX configuration is left as it was.
"""

from __future__ import annotations

import functools
from collections import deque
from collections.abc import Callable, Container, Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from rooflax.config.dtypes import DtypePolicy
from rooflax.config.hardware import Hardware
from rooflax.config.models import LayerKind, Model
from rooflax.config.spec import SweepSpec
from rooflax.cost.ops import OpDef, Step, make_steps, model_costs
from rooflax.cost.roofline import Roof, op_row, step_totals
from rooflax.cost.shape import Shape
from rooflax.errors import SpecError, positive_int
from rooflax.names import DEFAULT_CHUNK_SIZE, DEFAULT_SUMMARY_CHUNK_SIZE, GRID, MAX_CHUNK_SIZE

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_SUMMARY_CHUNK_SIZE",
    "MAX_CHUNK_SIZE",
    "Block",
    "Chunk",
    "Task",
    "blocks",
    "check_chunk_size",
    "chunk_count",
    "chunk_rows",
    "plan",
    "run",
    "step_shapes",
]

#: Fewest points a chunk is compiled for: small sweeps of any size share one function.
MIN_LENGTH = 64

#: Numeric output columns of a chunk in long mode, one per field of an op's row
#: (:class:`~rooflax.cost.roofline.OpRow`); ``bound`` comes with them as its index into
#: :data:`~rooflax.names.BOUNDS`.
ROW_COLUMNS = ("flops", "bytes", "intensity", "attainable_flops", "time_s", "achieved_flops", "achieved_time_s")
#: Output columns of a chunk in summary mode.
SUMMARY_COLUMNS = (
    "batch",
    "seq_len",
    "hidden",
    "flops",
    "bytes",
    "network_bytes",
    "intensity",
    "time_s",
    "tokens_per_s",
    "tokens_per_s_per_gpu",
    "achieved_time_s",
    "achieved_tokens_per_s",
    "achieved_time_lo_s",
    "achieved_time_hi_s",
    "weight_bytes",
    "kv_cache_bytes",
    "activation_bytes",
    "memory_bytes",
    "fits_in_memory",
)
#: The error band's two ends, which leave a summary chunk as one complex column (:data:`BAND_OUTPUT`).
BAND_ENDS = ("achieved_time_lo_s", "achieved_time_hi_s")
#: The band as the chunk function returns it: ``low + i·high``, split into :data:`BAND_ENDS` on the host.
#: XLA on the CPU fuses each output with everything it reads and has no multi-output loops, so two
#: band columns evaluated every op's achieved time once each; one output evaluates it once for both.
#: That one evaluation is still the achieved time's second (``achieved_time_s`` has its own), and the
#: divisions both read (tile and wave counts) are written out rather than fused: a summary with the band
#: takes about 1.4× the CPU time of one without (``benchmarks/bench_frames.py --band``).
BAND_OUTPUT = "achieved_time_band"
#: Output names of a summary chunk function (without :data:`BAND_OUTPUT` on a roof with no band).
CHUNK_SUMMARY_OUTPUTS = (*(name for name in SUMMARY_COLUMNS if name not in BAND_ENDS), BAND_OUTPUT)
#: Summary columns that depend on neither batch nor seq_len: a chunk of a step with one hidden
#: size holds each as one value (0-d), which the frame repeats without writing it per row.
POINT_CONSTANT = ("hidden", "weight_bytes")

#: A compiled chunk function: ``(bounds, axes, shapes, roof, latency)`` to its output columns.
ChunkFunction = Callable[..., dict[str, jax.Array]]
#: What every chunk of a step shares (:func:`_step_inputs`): axis tables, shapes, roof, link latencies.
StepInputs = tuple[dict[str, np.ndarray | np.int64], Shape, Roof, np.ndarray]


@dataclass(frozen=True, slots=True, kw_only=True)
class Task:
    """One chunk to compute: where it sits in the sweep and what it covers."""

    index: int  # position among all chunks of the sweep (part number of a dataset)
    model: Model
    hardware: Hardware
    dtype: DtypePolicy
    hidden: tuple[int, ...]
    ops: tuple[tuple[LayerKind | None, OpDef[Step]], ...]  # each row's layer kind (None: once per model) and op
    phase: str
    spec_k: int | None
    seq_start: int  # first valid seq_len index of this step
    start: int  # first point (flat index within the step)
    count: int  # points in this chunk
    length: int  # compiled chunk length before padding to the device count (count padded up)
    layout: tuple[int, int, int] = (1, 1, 1)  # tp, pp, ep

    def width(self, summary: bool) -> int:
        """Rows per grid point: one per op, or one in summary mode."""
        return 1 if summary else len(self.ops)


@dataclass(frozen=True, slots=True, kw_only=True)
class Chunk:
    """A computed chunk: its task and host columns (numpy), trimmed to real rows."""

    task: Task
    columns: dict[str, np.ndarray]  # one array a column, or one value (0-d) for a whole chunk (POINT_CONSTANT)

    @property
    def rows(self) -> int:
        return len(self.columns["flops"])


def check_chunk_size(chunk_size: object, summary: bool = False) -> int:
    """``chunk_size`` as an int (None: the default of a long or ``summary`` sweep), or a one-line
    SpecError outside ``1..MAX_CHUNK_SIZE``."""
    if chunk_size is None:
        return DEFAULT_SUMMARY_CHUNK_SIZE if summary else DEFAULT_CHUNK_SIZE
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


@dataclass(frozen=True, slots=True, kw_only=True)
class Block:
    """One block of the sweep (a model, accelerator, dtype, layout and phase step) and the chunks it is cut into."""

    first: int  # index of its first chunk
    chunks: int
    points: int
    model: Model
    hardware: Hardware
    dtype: DtypePolicy
    hidden: tuple[int, ...]
    ops: tuple[tuple[LayerKind | None, OpDef[Step]], ...]  # each row's layer kind (None: once per model) and op
    phase: str
    spec_k: int | None
    seq_start: int
    layout: tuple[int, int, int]

    def task(self, j: int, chunk_size: int) -> Task:
        """The block's ``j``-th chunk."""
        start = j * chunk_size
        length = max(MIN_LENGTH, min(chunk_size, _bucket(self.points)))
        return Task(
            index=self.first + j,
            model=self.model,
            hardware=self.hardware,
            dtype=self.dtype,
            hidden=self.hidden,
            ops=self.ops,
            phase=self.phase,
            spec_k=self.spec_k,
            seq_start=self.seq_start,
            start=start,
            count=min(chunk_size, self.points - start),
            length=length,
            layout=self.layout,
        )

    def rows(self, chunk_size: int, summary: bool) -> tuple[int, int]:
        """Rows of each chunk but the last, and of the last."""
        width = 1 if summary else len(self.ops)
        return chunk_size * width, (self.points - (self.chunks - 1) * chunk_size) * width


def blocks(spec: SweepSpec, chunk_size: int) -> Iterator[Block]:
    """Every block of the sweep in output order, generated one at a time (memory independent of the grid)."""
    chunk_size = check_chunk_size(chunk_size)
    first = 0
    for model in spec.models:
        hidden = spec.hidden_for(model)
        for hardware in spec.hardware:
            for dtype in spec.dtypes:
                for layout in spec.layouts():
                    for phase, spec_k, seq_start in spec.steps():
                        ops = spec.ops_for(model, layout, phase=phase)
                        points = len(spec.batch) * (len(spec.seq_len) - seq_start) * len(hidden)
                        chunks = -(-points // chunk_size)
                        yield Block(
                            first=first,
                            chunks=chunks,
                            points=points,
                            model=model,
                            hardware=hardware,
                            dtype=dtype,
                            hidden=hidden,
                            ops=ops,
                            phase=phase,
                            spec_k=spec_k,
                            seq_start=seq_start,
                            layout=layout,
                        )
                        first += chunks


def plan(spec: SweepSpec, chunk_size: int) -> Iterator[Task]:
    """Every chunk of the sweep, in output order; the same on any number of devices.

    Generated lazily: a sweep of 10^14 points starts at once, in memory independent of its size.
    """
    chunk_size = check_chunk_size(chunk_size)
    for block in blocks(spec, chunk_size):
        for j in range(block.chunks):
            yield block.task(j, chunk_size)


def chunk_count(spec: SweepSpec, chunk_size: int) -> int:
    """How many chunks (a dataset's parts) the sweep is cut into, counted without listing them."""
    return sum(block.chunks for block in blocks(spec, chunk_size))


def chunk_rows(spec: SweepSpec, chunk_size: int, summary: bool, indices: Iterable[int]) -> list[int]:
    """Rows of each chunk of ``indices`` (a resumed run's finished parts), in increasing index order."""
    wanted = sorted(indices)
    rows: list[int] = []
    for block in blocks(spec, chunk_size):
        if len(rows) == len(wanted):
            break
        full, last = block.rows(chunk_size, summary)
        while len(rows) < len(wanted) and wanted[len(rows)] < block.first + block.chunks:
            rows.append(last if wanted[len(rows)] == block.first + block.chunks - 1 else full)
    return rows


def _point(shape: Shape, roof: Roof, latency: jax.Array, *, summary: bool) -> dict[str, jax.Array]:
    """Costs of one grid point (vmapped): every op's row (:func:`~rooflax.cost.roofline.op_row`), or the model totals.

    Each op's row is computed as scalars and only then stacked into columns (long frame) or
    summed op by op (summary): XLA fuses the sums into one elementwise loop, where a
    reduction over stacked rows runs several times slower on the CPU. ``latency`` holds
    each op's link latency in seconds (``hops · latency``, 0 for other ops), multiplied on
    the host: a product traced here is fused into a multiply-add on one device count and
    not on another, and results must not depend on the devices.
    """
    steps = make_steps(shape)
    rows = [
        op_row(op, step, flops, bytes_, roof, xp=jnp, latency_s=latency[i])
        for i, (step, op, flops, bytes_) in enumerate(model_costs(steps))
    ]
    coords = {name: getattr(shape, name).astype(jnp.int64) for name in GRID}
    if summary:
        return {**coords, **step_totals(steps, rows, memory_capacity=roof.memory, roof=roof, xp=jnp)}
    columns = {name: jnp.stack([getattr(row, name) for row in rows]) for name in ROW_COLUMNS}
    return {
        **{name: jnp.broadcast_to(value, (len(rows),)) for name, value in coords.items()},
        **columns,
        "bound": jnp.stack([jnp.asarray(row.bound, jnp.uint8) for row in rows]),
    }


def _has_band(roof: Roof) -> bool:
    """Whether ``roof`` has an error band: its factors are all numbers or all NaN (:meth:`Roof.of`)."""
    return not np.isnan(roof.band_low[0])


@functools.lru_cache(maxsize=128)
def _compiled(summary: bool, length: int, devices: tuple[jax.Device, ...], shared: bool, banded: bool) -> ChunkFunction:
    """The jitted chunk function for one output kind, length and device set (cached: no recompiles).

    ``shared``: the step has one hidden size, so every point shares the shape's numbers
    (scalars, not per-point gathers: XLA folds them into the arithmetic instead of writing
    them out per point), and a summary's :data:`POINT_CONSTANT` columns come back as one
    value for the whole chunk. The shape's static fields (gated MLP, fused attention, ...)
    are part of jit's own cache key. ``banded``: a summary whose roof has an error band; without
    one the chunk leaves the band out (:data:`BAND_OUTPUT`), and the compiler drops its
    arithmetic with it.
    """
    constant = POINT_CONSTANT if summary and shared else ()
    outputs = tuple(name for name in CHUNK_SUMMARY_OUTPUTS if banded or name != BAND_OUTPUT)

    def chunk(
        bounds: jax.Array, axes: dict[str, jax.Array], shapes: Shape, roof: Roof, latency: jax.Array
    ) -> dict[str, jax.Array]:
        index = jnp.minimum(bounds[0] + jnp.arange(length, dtype=jnp.int64), bounds[1] - 1)
        if len(devices) > 1:
            index = jax.lax.with_sharding_constraint(index, sharding)
        # truncating division: cheaper than floor division, and equal on these non-negative values
        if shared:
            rest, in_axes = index, replace(jax.tree.map(lambda _: None, shapes), batch=0, seq_len=0)
        else:
            rest, h_i = jax.lax.div(index, axes["n_hidden"]), jax.lax.rem(index, axes["n_hidden"])
            shapes, in_axes = jax.tree.map(lambda table: table[h_i], shapes), 0
        b_i, s_i = jax.lax.div(rest, axes["n_seq"]), jax.lax.rem(rest, axes["n_seq"])
        shape = replace(
            shapes, batch=axes["batch"][b_i].astype(jnp.float64), seq_len=axes["seq_len"][s_i].astype(jnp.float64)
        )
        out_axes = {name: None if name in constant else 0 for name in SUMMARY_COLUMNS} if summary else 0
        out = jax.vmap(functools.partial(_point, summary=summary), in_axes=(in_axes, None, None), out_axes=out_axes)(
            shape, roof, latency
        )
        if summary:  # both ends of the band in one output: one fused loop computes the group sums they share
            low, high = (out.pop(name) for name in BAND_ENDS)
            if banded:
                out[BAND_OUTPUT] = jax.lax.complex(low, high)
        # op-major (every point's first op, then the second, ...): how XLA lays out the
        # stacked op rows, so the long columns are written without a transposing copy
        return {name: value if name in constant else value.T.reshape(-1) for name, value in out.items()}

    if len(devices) == 1:
        return jax.jit(chunk)
    mesh = Mesh(np.array(devices), ("points",))
    sharding = NamedSharding(mesh, PartitionSpec("points"))
    if constant:
        whole = NamedSharding(mesh, PartitionSpec())
        return jax.jit(chunk, out_shardings={name: whole if name in constant else sharding for name in outputs})
    return jax.jit(chunk, out_shardings=sharding)


def _padded(values: tuple[Any, ...], size: int) -> tuple[Any, ...]:
    """``values`` padded with its last value to ``size``."""
    return values + values[-1:] * (size - len(values))


def step_shapes(step: Block | Task, spec: SweepSpec) -> tuple[Shape, ...]:
    """The :class:`Shape` of a step (a block or one of its chunks) at each of its hidden sizes, in order.

    ``batch`` and ``seq_len`` are 0 (every grid point fills in its own); the leaves are
    Python numbers. The sweep's tables are these shapes stacked, so other callers
    (:func:`rooflax.crossover`) price exactly the sweep's steps.
    """
    tp, pp, ep = step.layout
    return tuple(
        Shape.of(
            step.model.at_hidden(h),
            step.dtype,
            phase=step.phase,
            batch=0,
            seq_len=0,
            spec_k=step.spec_k,
            fused_attention=spec.fused_attention,
            causal=spec.causal,
            tp=tp,
            pp=pp,
            ep=ep,
            tree_pairs=spec.tree_pairs(step.spec_k),
            mla_decode=spec.mla_decode,
        )
        for h in step.hidden
    )


def _step_inputs(task: Task, spec: SweepSpec) -> StepInputs:
    """What every chunk of a step shares: the axis tables, the shape at each
    hidden size (a :class:`Shape` of tables, batch and seq_len filled in per point) and the roof.

    Tables are padded to :func:`_bucket` of the spec's axis lengths, so every step of a sweep,
    and sweeps of nearby sizes, run the same compiled function.
    """
    seq = spec.seq_len[task.seq_start :]
    rows = step_shapes(task, spec)
    if len(rows) == 1:  # one hidden size: scalars shared by every point (_compiled's ``shared``)
        shapes = jax.tree.map(np.float64, rows[0])
    else:
        size = _bucket(len(task.hidden))
        shapes = jax.tree.map(lambda *leaves: np.asarray(_padded(leaves, size), np.float64), *rows)
    axes: dict[str, np.ndarray | np.int64] = {
        "batch": np.asarray(_padded(spec.batch, _bucket(len(spec.batch))), np.int64),
        "seq_len": np.asarray(_padded(seq, _bucket(len(spec.seq_len))), np.int64),
        "n_seq": np.int64(len(seq)),
        "n_hidden": np.int64(len(task.hidden)),
    }
    host_roof = Roof.of(task.hardware, task.dtype, task.phase, task.spec_k)
    roof = jax.tree.map(lambda x: np.float64(x), host_roof)
    step = make_steps(rows[0])[0]  # link latencies depend on the layout only
    latency = np.array(
        [op.hops(step) * host_roof.latency if op.hops is not None else 0.0 for _, op in task.ops], np.float64
    )
    # numpy on the host, handed to the compiled function as they are (its C++ path moves them):
    # jnp.asarray or device_put per leaf costs a Python dispatch each, milliseconds a step
    return axes, shapes, roof, latency


def compiled_for(task: Task, summary: bool, devices: tuple[jax.Device, ...]) -> ChunkFunction:
    """The cached jitted function that computes ``task``: its length padded to a multiple of the devices."""
    length = -(-task.length // len(devices)) * len(devices)
    banded = summary and _has_band(Roof.of(task.hardware, task.dtype, task.phase, task.spec_k))
    return _compiled(summary, length, devices, len(task.hidden) == 1, banded)


def _dispatch(task: Task, summary: bool, devices: tuple[jax.Device, ...], inputs: StepInputs) -> dict[str, jax.Array]:
    with jax.enable_x64(True):
        bounds = np.array([task.start, task.start + task.count], np.int64)
        return compiled_for(task, summary, devices)(bounds, *inputs)


def _to_host(task: Task, out: dict[str, jax.Array], summary: bool) -> Chunk:
    """The chunk's real rows on the host: without a copy, unless padded points sit between ops.

    A column of one value (:data:`POINT_CONSTANT`) stays one value; a summary's band output
    (:data:`BAND_OUTPUT`) becomes its two columns (:data:`BAND_ENDS`), the real and imaginary parts
    (a roof with no band has neither).
    """
    width = task.width(summary)
    columns = {name: np.asarray(value) for name, value in out.items()}
    if BAND_OUTPUT in columns:
        band = columns.pop(BAND_OUTPUT)
        # contiguous copies: polars reads a strided view several times slower than it copies one
        columns.update(zip(BAND_ENDS, (np.ascontiguousarray(band.real), np.ascontiguousarray(band.imag)), strict=True))
    padded = len(columns["flops"]) // width
    if padded != task.count:
        columns = {
            name: value if value.ndim == 0 else value.reshape(width, padded)[:, : task.count].reshape(-1)
            for name, value in columns.items()
        }
    return Chunk(task=task, columns=columns)


def run(
    spec: SweepSpec,
    *,
    summary: bool = False,
    chunk_size: int | None = None,
    skip: Container[int] = frozenset(),
    devices: tuple[jax.Device, ...] | None = None,
) -> Iterator[Chunk]:
    """Compute the sweep chunk by chunk, the next chunk running while the caller handles this one.

    Args:
        spec: the sweep.
        summary: one row per configuration and phase (model totals) instead of one per op.
        chunk_size: most grid points per chunk; bounds memory. None: the default of
            the output kind (:data:`DEFAULT_CHUNK_SIZE`, :data:`DEFAULT_SUMMARY_CHUNK_SIZE`).
        skip: chunk indices not to compute (already written, on resume).
        devices: JAX devices to shard over; all local devices by default.
    """
    chunk_size = check_chunk_size(chunk_size, summary)
    devices = tuple(devices or jax.local_devices())
    pending: deque[tuple[Task, dict[str, jax.Array]]] = deque()
    step: tuple[object, ...] | None = None
    inputs: StepInputs  # set at the first task: its key differs from None
    for task in plan(spec, chunk_size):
        if task.index in skip:
            continue
        key = (task.model, task.hardware, task.dtype, task.layout, task.phase, task.spec_k)
        if key != step:  # a step's chunks are adjacent
            step = key
            with jax.enable_x64(True):
                inputs = _step_inputs(task, spec)
        pending.append((task, _dispatch(task, summary, devices, inputs)))
        if len(pending) > 1:
            yield _to_host(*pending.popleft(), summary)
    while pending:
        yield _to_host(*pending.popleft(), summary)
