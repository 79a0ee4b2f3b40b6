"""Crossovers: the smallest batch, sequence length or width at which each op turns compute-bound.

For every model × hardware × dtype × parallel layout × phase step × op, and every value of
the spec's other two axes, :func:`crossover` finds the smallest value ``v`` of the crossed
axis at which the op is compute-bound, exactly over the integers: at ``v`` the op is
compute-bound by :func:`rooflax.evaluate`, at the legal value just below ``v`` it is
memory-bound.

The steps are the sweep's own: the engine's blocks (:func:`rooflax.engine.vectorized.blocks`)
and their :class:`~rooflax.cost.shape.Shape` tables
(:func:`rooflax.engine.vectorized.step_shapes`), with the crossed axis put in by
:func:`dataclasses.replace`; every cost comes from :func:`rooflax.cost.ops.make_step`. So a
mixture of experts (router, routed experts), a ``tp``/``pp``/``ep`` layout (rows per device)
and a verify step under a tree mask are priced exactly as a sweep prices them.

How: one bisection per op over every cell at once, as jnp arrays on the default device
(float64 inside a local ``jax.enable_x64``; like the engine's, the jitted solver is cached
per static configuration, so a second call does not recompile), then an exact check of
each answer and of the value below it in Python numbers (the arithmetic of
:func:`rooflax.evaluate`); a cell whose float64 answer fails that check (possible only
once counts pass 2**53) is bisected again in Python numbers.

Legal values and limits (:data:`LIMIT` = 2**40):

- ``batch``: 1 … 2**40.
- ``seq_len``: 1 … 2**40, from ``spec_k`` on in a verify step (verify needs ``S ≥ K``).
- ``hidden``: the widths the model scales to (:meth:`rooflax.Model.at_hidden`) that the
  layout splits evenly, up to 2**40, plus the model's own width: multiples of ``head_dim ×
  heads per KV head × tp``, and, with ``tp`` > 1, the narrower widths whose ``k`` KV heads
  divide ``tp`` (replicated KV heads). A mixture of experts is not scaled, and a ``tp``
  that does not divide 256 does not split every Llama MLP width (multiples of 256): both
  are refused along ``hidden``.

``crossover`` is null where the op is not compute-bound anywhere up to the limit.
Collectives (group ``comm``: all-reduces, all-to-alls, pipeline sends) do no FLOPs and
move their bytes over the interconnect: they are network-bound at every value, so their
rows say so (``network`` true, ``crossover`` null) instead of being searched.

Monotone: along ``batch`` and ``seq_len`` each op's intensity ``flops / bytes`` never
falls (its numerator and denominator are affine in the axis, or the axis times an affine
function; the per-device batch ``⌈B/ep⌉`` never falls; the experts touched grow slower than
the tokens routed to them), and its correctly rounded quotient, compared with the ridge,
never falls either, so once compute-bound an op stays compute-bound
(``tests/test_crossover.py`` checks this property). Along ``hidden`` the Llama-scaled
widths are monotone too, but a preset's own width keeps its own shape (``llama-3-8b`` has
intermediate 14336, not the 11008 the Llama rule gives at 4096), so its bound can differ
from its neighbours'. The answer is still the smallest compute-bound width; ``monotone`` is
false where some larger legal width up to the limit is memory-bound again.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Unpack

import jax
import jax.numpy as jnp
import numpy as np
import polars as pl

from rooflax.answers.tables import Table
from rooflax.config.models import LayerKind, llama_scaled
from rooflax.config.spec import SpecKeys, SweepSpec
from rooflax.cost.ops import OP_NAMES, OpDef, make_steps
from rooflax.cost.roofline import is_compute_bound
from rooflax.cost.shape import Shape
from rooflax.data.frames import check_in_memory, resolve_spec
from rooflax.engine import vectorized as engine
from rooflax.errors import SpecError, unknown_name
from rooflax.names import ENTITIES, GRID, GROUPS, LAYOUT

__all__ = ["AXES", "LIMIT", "crossover", "crossover_table"]

#: Axes a crossover can be found along: the grid's.
AXES = GRID
#: Largest value searched on every axis.
LIMIT = 2**40
_ITERATIONS = LIMIT.bit_length() + 1  # bisection steps that narrow [n_lo - 1, n_hi + 1] to one value
#: Peak bytes of memory a crossover takes per row of its frame (cells in Python integers, the
#: bisection's arrays on the device, the frame): measured about 160 B, with room to spare.
ROW_BYTES = 400
#: The search per cell, besides its shape: the ridge, and the values ``n·step`` for ``n_lo ≤ n ≤ n_hi``.
_SEARCH = ("ridge", "n_lo", "n_hi", "step")


@dataclass(frozen=True, slots=True, kw_only=True)
class _KindOp:
    """An op of one layer kind (the ``kind``-th of the shape's: :func:`rooflax.cost.ops.make_steps`), priced
    from a shape; ``layer`` is the kind (None: once per model)."""

    kind: int
    layer: LayerKind | None
    op: OpDef

    @property
    def name(self) -> str:
        return self.op.name

    @property
    def group(self) -> str:
        return self.op.group

    @property
    def hops(self):
        return self.op.hops

    def cost(self, shape: Shape):
        """``(flops, bytes)`` of the op in its kind's step of ``shape``."""
        return self.op.cost(make_steps(shape)[self.kind])


def _at(shape: Shape, along: str, value, *, family: bool, where=np.where) -> Shape:
    """``shape`` with the crossed axis at ``value`` (per cell).

    Along ``hidden`` the model is scaled as :meth:`rooflax.Model.at_hidden` does; the shape's
    own width keeps its own heads and MLP unless ``family`` (the scaled family, monotone).
    """
    if along != "hidden":
        return replace(shape, **{along: value})
    scaled = llama_scaled(value, shape.head_dim, shape.heads // shape.kv_heads)
    if not family:
        own = value == shape.hidden
        scaled = tuple(
            where(own, mine, theirs)
            for mine, theirs in zip((shape.heads, shape.kv_heads, shape.intermediate), scaled, strict=True)
        )
    heads, kv_heads, intermediate = scaled
    return replace(shape, hidden=value, heads=heads, kv_heads=kv_heads, intermediate=intermediate)


@functools.lru_cache(maxsize=32)
def _solver(ops: tuple[_KindOp, ...], along: str):
    """The jitted bisection: for each op and cell, the first index ``n`` whose value ``n·step`` is compute-bound.

    Returns ``n_hi + 1`` where no index up to ``n_hi`` is. Cached per static configuration
    (the shape's static fields are part of jit's own cache key).
    """

    def bound(shape: Shape, search: dict, n):
        out = []
        for j, op in enumerate(ops):
            value = (n[j] * search["step"]).astype(jnp.float64)
            flops, bytes_ = op.cost(_at(shape, along, value, family=True, where=jnp.where))
            out.append(is_compute_bound(flops, bytes_, search["ridge"]))
        return jnp.stack(out)

    def solve(shape: Shape, search: dict):
        size = (len(ops), search["step"].shape[0])
        lo = jnp.broadcast_to(search["n_lo"] - 1, size)
        hi = jnp.broadcast_to(search["n_hi"] + 1, size)

        def narrow(_, state):
            lo, hi = state
            active = hi - lo > 1
            mid = jnp.where(active, (lo + hi) // 2, hi)
            compute = bound(shape, search, mid)
            return jnp.where(active & ~compute, mid, lo), jnp.where(active & compute, mid, hi)

        return jax.lax.fori_loop(0, _ITERATIONS, narrow, (lo, hi))[1]

    return jax.jit(solve)


def _take(tree, index: np.ndarray):
    """Every leaf of ``tree`` (a shape, or the search dict) at ``index``."""
    return jax.tree.map(lambda leaf: leaf[index], tree)


def _device_bisect(cells: Shape, search: dict, ops: tuple[_KindOp, ...], along: str) -> np.ndarray:
    """:func:`_solver` on the cells, padded to a power of two so that few shapes compile."""
    count = len(search["step"])
    length = 1 << max(count - 1, 0).bit_length()
    pad = np.r_[np.arange(count), np.full(length - count, count - 1)]
    shape = jax.tree.map(lambda leaf: np.asarray(leaf[pad], np.float64), cells)
    integers = {name: np.asarray(search[name][pad], np.int64) for name in ("n_lo", "n_hi", "step")}
    with jax.enable_x64(True):
        n = _solver(ops, along)(shape, {"ridge": np.asarray(search["ridge"][pad], np.float64), **integers})
        return np.asarray(n)[:, :count].astype(object)


def _exact(cells: Shape, search: dict, op: _KindOp, along: str, value: np.ndarray, *, family: bool):
    """Exact ``(compute-bound, intensity)`` of ``op`` at ``value`` per cell, as :func:`rooflax.evaluate` has them.

    Python numbers in numpy object arrays: the same operations, in the same order, as
    :func:`rooflax.evaluate` on Python numbers.
    """
    flops, bytes_ = op.cost(_at(cells, along, value, family=family))
    compute = np.asarray(is_compute_bound(flops, bytes_, search["ridge"]), dtype=bool)
    return compute, np.asarray(flops / bytes_, dtype=np.float64)


def _host_bisect(cells: Shape, search: dict, op: _KindOp, along: str) -> np.ndarray:
    """The same bisection as :func:`_solver`, in exact Python numbers (for the cells given)."""
    lo, hi = search["n_lo"] - 1, search["n_hi"] + 1
    while True:
        active = hi - lo > 1
        if not active.any():
            return hi
        mid = np.where(active, (lo + hi) // 2, hi)
        compute, _ = _exact(cells, search, op, along, mid * search["step"], family=True)
        lo, hi = np.where(active & ~compute, mid, lo), np.where(active & compute, mid, hi)


def _solve(cells: Shape, search: dict, ops: tuple[_KindOp, ...], along: str) -> list[np.ndarray]:
    """Per op, the first compute-bound index of the (monotone) family, checked exactly and repaired."""
    out = []
    n_lo, n_hi, step = search["n_lo"], search["n_hi"], search["step"]
    for op, n in zip(ops, _device_bisect(cells, search, ops, along), strict=True):
        at, _ = _exact(cells, search, op, along, np.minimum(n, n_hi) * step, family=True)
        below, _ = _exact(cells, search, op, along, np.maximum(n - 1, n_lo) * step, family=True)
        wrong = ((n <= n_hi) & ~at) | ((n > n_lo) & below)
        if wrong.any():
            n = n.copy()
            n[wrong] = _host_bisect(_take(cells, wrong), _take(search, wrong), op, along)
        out.append(n)
    return out


def _answers(search: dict, n: np.ndarray, along: str, extras: list[np.ndarray], compute: list[np.ndarray]):
    """``(crossover, value below it, monotone)`` per cell; crossover and below are 0 where absent.

    Along ``batch`` and ``seq_len`` these follow from the first compute-bound index. Along
    ``hidden`` the legal widths off the scaled lattice (``extras``: the model's own width
    ``h0``, which keeps its own shape, and with ``tp`` the narrow widths of replicated KV
    heads; 0 where a cell has fewer), each compute-bound or not (``compute``), are spliced
    into the scaled family whose first compute-bound width is ``c``.
    """
    step, top = search["step"], search["n_hi"] * search["step"]
    if along != "hidden":
        found = n <= search["n_hi"]
        return np.where(found, n, 0), np.where(found & (n > search["n_lo"]), n - 1, 0), np.ones(len(n), bool)
    never = top + step
    c = n * step  # == never where the family never turns compute-bound
    h0 = extras[0]
    c_other = np.where((c == h0) & (c < never), c + step, c)  # first compute-bound scaled width other than h0
    answer = np.where(c_other > top, never, c_other)
    for e, bound in zip(extras, compute, strict=True):
        answer = np.where(bound & (e > 0), np.minimum(answer, e), answer)
    lattice_below = (answer - 1) // step * step
    below = lattice_below
    for e in extras:
        below = np.where((e > 0) & (e < answer), np.maximum(below, e), below)
    next_up = (answer // step + 1) * step  # the first scaled width above the answer, not h0
    next_up = np.where(next_up == h0, next_up + step, next_up)
    again = (next_up <= top) & (next_up < c_other)  # memory-bound scaled widths above the answer
    for e, bound in zip(extras, compute, strict=True):
        again |= (e > answer) & ~bound
    found = answer < never
    return np.where(found, answer, 0), np.where(found, below, 0), ~again


def _extras(model_hidden: int, head_dim: int, group_size: int, tp: int, top: int) -> list[int]:
    """Legal widths off the lattice of multiples of ``head_dim·group_size·tp``: the own width first, then
    those whose ``k < tp`` KV heads divide ``tp`` (and whose heads ``tp`` divides), up to ``top``."""
    narrow = [head_dim * group_size * k for k in range(1, tp) if tp % k == 0 and group_size * k % tp == 0]
    own = [model_hidden] if model_hidden <= top else [0]
    return own + [h for h in narrow if h != model_hidden and h <= top]


def _cells(spec: SweepSpec, along: str) -> list[tuple[dict, Shape, dict, list, tuple[_KindOp, ...]]]:
    """Blocks of cells in the sweep's order: ``(labels, cells, search, extras, ops)`` per engine block.

    ``cells`` is the block's :class:`Shape` (leaves: Python-number object arrays) over the
    grid of the two other axes (in frame order: batch, seq_len, hidden); ``search`` holds
    :data:`_SEARCH` per cell, ``extras`` the legal widths off the lattice (``hidden`` only).
    """
    out = []
    for block in engine.blocks(spec, engine.MAX_CHUNK_SIZE):
        model, (tp, pp, ep) = block.model, block.layout
        table = jax.tree.map(lambda *leaves: np.array(leaves, dtype=object), *engine.step_shapes(block, spec))
        axes = {"batch": spec.batch, "seq_len": spec.seq_len[block.seq_start :], "hidden": block.hidden}
        axes[along] = (0,)
        grid = dict(
            zip(
                axes,
                (a.ravel() for a in np.meshgrid(*(np.arange(len(v)) for v in axes.values()), indexing="ij")),
                strict=True,
            )
        )
        coords = {name: np.array(values, dtype=object)[grid[name]] for name, values in axes.items()}
        # comm (static) only says which collectives exist, and none is searched: without it every
        # layout of a model shares one compiled solver (its degrees are leaves, as in the engine)
        cells = replace(_take(table, grid["hidden"]), batch=coords["batch"], seq_len=coords["seq_len"], comm=())
        size = len(grid["batch"])
        lattice = model.head_dim * model.group_size * tp if along == "hidden" else 1
        lowest = block.spec_k if along == "seq_len" and block.phase == "verify" else 1
        ridge = block.hardware.ridge(block.dtype.compute)
        search = {
            name: np.full(size, value, dtype=object)
            for name, value in zip(_SEARCH, (ridge, lowest, LIMIT // lattice, lattice), strict=True)
        }
        extras = (
            []
            if along != "hidden"
            else [
                np.full(size, e, dtype=object)
                for e in _extras(model.hidden, model.head_dim, model.group_size, tp, LIMIT // lattice * lattice)
            ]
        )
        labels = {
            "model": model.name,
            "hardware": block.hardware.name,
            "dtype": block.dtype.name,
            "tp": tp,
            "pp": pp,
            "ep": ep,
            "phase": block.phase,
            "spec_k": block.spec_k,
            "ridge": ridge,
            **{axis: coords[axis] for axis in AXES if axis != along},
        }
        kinds = [kind for kind, _ in model.layer_kinds]
        ops = tuple(_KindOp(kind=0 if kind is None else kinds.index(kind), layer=kind, op=op) for kind, op in block.ops)
        out.append((labels, cells, search, extras, ops))
    return out


def _rows(cells: Shape, search: dict, extras: list, ops: tuple[_KindOp, ...], along: str) -> dict[str, np.ndarray]:
    """``crossover`` (0: none), ``intensity_below``, ``intensity_at`` (NaN: none) and ``monotone``.

    One entry per cell × op, ops varying fastest; every cell shares ``ops`` (none a collective).
    """
    placeholder = search["n_lo"] * search["step"]  # a legal value to evaluate where there is none
    columns: dict[str, list] = {"crossover": [], "intensity_below": [], "intensity_at": [], "monotone": []}
    for op, n in zip(ops, _solve(cells, search, ops, along), strict=True):
        compute = [_exact(cells, search, op, along, np.where(e > 0, e, placeholder), family=False)[0] for e in extras]
        answer, below, monotone = _answers(search, n, along, extras, compute)
        for name, value in (("intensity_at", answer), ("intensity_below", below)):
            _, intensity = _exact(cells, search, op, along, np.where(value > 0, value, placeholder), family=False)
            columns[name].append(np.where(value > 0, intensity, np.nan))
        columns["crossover"].append(answer.astype(np.int64))
        columns["monotone"].append(monotone.astype(bool))
    return {name: np.stack(parts, axis=1).ravel() for name, parts in columns.items()}


def _frame(labels: dict, ops: tuple[_KindOp, ...], along: str, rows: dict, schema: pl.Schema) -> pl.DataFrame:
    """The crossover frame of one block from its :func:`_rows` (collectives included, network-bound)."""
    size = len(labels[next(axis for axis in AXES if axis != along)])
    count = size * len(ops)
    frame = {
        **{name: [labels[name]] * count for name in schema if name in (*ENTITIES, *LAYOUT, "phase", "spec_k")},
        "layer": [None if op.layer is None else op.layer.name for op in ops] * size,
        "op": [op.name for op in ops] * size,
        "group": [op.group for op in ops] * size,
        **{axis: np.repeat(labels[axis].astype(np.int64), len(ops)) for axis in AXES if axis != along},
        **rows,
        "ridge": np.full(count, labels["ridge"]),
    }
    if "network" in schema:
        frame["network"] = np.tile([op.hops is not None for op in ops], size)
    df = pl.DataFrame(frame, schema_overrides={"spec_k": pl.Int64}, nan_to_null=True).select(schema.names())
    return df.with_columns(pl.when(pl.col("crossover") > 0).then(pl.col("crossover"))).cast(schema)


def _schema(spec: SweepSpec, along: str) -> pl.Schema:
    """Column names and types of a crossover frame: the layout and ``network`` columns with a parallel layout."""
    from rooflax.data.frames import schemas

    keys = schemas(spec)[0]
    layouts = spec.layouts() != ((1, 1, 1),)
    differ = any(len(model.layer_kinds) > 1 for model in spec.models)
    return pl.Schema(
        {
            **{name: keys[name] for name in (*ENTITIES, *(LAYOUT if layouts else ()), "phase", "spec_k")},
            **({"layer": keys["layer"]} if differ else {}),
            "op": pl.Enum(OP_NAMES),
            "group": pl.Enum(GROUPS),
            **{axis: pl.Int64 for axis in AXES if axis != along},
            "crossover": pl.Int64,
            "ridge": pl.Float64,
            "intensity_below": pl.Float64,
            "intensity_at": pl.Float64,
            "monotone": pl.Boolean,
            **({"network": pl.Boolean} if layouts else {}),
        }
    )


def _check_hidden(spec: SweepSpec) -> None:
    """Refuse, in one line, a spec whose widths are not scaled: a mixture of experts, or a ``tp`` that
    does not split every Llama MLP width."""
    for model in spec.models:
        if model.experts or model.mla:
            kind = "a mixture of experts" if model.experts else "a model with latent attention"
            raise SpecError(
                f"along: hidden is not defined for {model.name}: {kind} is not scaled "
                "to other widths (rooflax.Model.at_hidden); cross batch or seq_len"
            )
    odd = [tp for tp in spec.tp if 256 % tp]
    if odd:
        raise SpecError(
            f"along: hidden with tp {', '.join(map(str, odd))}: the Llama rule's MLP widths (multiples "
            "of 256) split evenly only for tp dividing 256; cross batch or seq_len, or give such tp"
        )


def crossover(
    spec: SweepSpec | str | Path | None = None, *, along: str = "batch", **keys: Unpack[SpecKeys]
) -> pl.DataFrame:
    """The smallest value of ``along`` at which each op turns compute-bound (module docstring).

    Args:
        spec: a :class:`rooflax.SweepSpec`, a TOML path, or None: ``keys`` with the
            reference sweep's batch and seq_len axes where they are not given.
        along: ``batch``, ``seq_len`` or ``hidden``. The spec's values of this axis are
            ignored; its other two axes give one row each per value.
        **keys: the spec's TOML keys (``model``, ``hardware``, ``dtype``, ``phases``,
            ``seq_len``, ``tp``, ...), replacing those of ``spec``.

    Raises:
        SpecError: ``along`` is not an axis, or is given a value, or is ``hidden`` for a
            model that is not scaled (a mixture of experts) or a ``tp`` that does not
            divide 256.

    Returns:
        One row per model × hardware × dtype × layout × phase step × value of the two other
        axes × op: ``model``, ``hardware``, ``dtype``, ``tp``, ``pp``, ``ep`` (only where the
        spec has a parallel layout), ``phase``, ``spec_k``, ``op``, ``group``, the two other
        axes, ``crossover`` (null: not compute-bound up to :data:`LIMIT`), ``ridge``
        (FLOP/byte), ``intensity_below`` (at the legal value just below the crossover; null
        where the crossover is the smallest legal value), ``intensity_at``, ``monotone``
        (false where the op is memory-bound again at some larger value: only along
        ``hidden``, at a preset's own width) and, with a parallel layout, ``network`` (true
        for the collectives, group ``comm``: network-bound at every value, never crossing).

    >>> df = crossover(model="llama-13b", hardware="a40", phases=["decode"], seq_len=[2048])
    >>> df.filter(op="up_proj").select("crossover", "intensity_below", "intensity_at").row(0)
    (229, 214.88668902887997, 215.77474388772637)
    """
    if not isinstance(along, str) or along not in AXES:
        raise unknown_name("along", along, AXES, what="axis")
    if along in keys or along in (keys.get("axes") or {}):
        raise SpecError(
            f"{along}: the crossover is searched along {along} (every value up to 2**40), so values of "
            f"{along} are not read; leave {along} out, or cross another axis"
        )
    # the crossed axis is searched whole: one placeholder value stands in for the spec's (a seq_len
    # past every spec_k, so that any verify step is legal)
    placeholders: dict[str, SpecKeys] = {
        "batch": {"batch": [1]},
        "seq_len": {"seq_len": [LIMIT]},
        "hidden": {"hidden": None},
    }
    spec = resolve_spec(spec, {**keys, **placeholders[along]}, reference_axes=True)
    if along == "hidden":
        _check_hidden(spec)
    # one row per cell of the two other axes (the crossed one holds its placeholder) and op
    rows = sum(block.points * len(block.ops) for block in engine.blocks(spec, engine.MAX_CHUNK_SIZE))
    check_in_memory(
        "crossover",
        rows,
        ROW_BYTES,
        instead="a crossover frame is solved in memory: give fewer values "
        f"of the axes not crossed ({', '.join(a for a in AXES if a != along)}), or fewer phases, models, "
        "accelerators, dtypes or layouts",
    )
    schema = _schema(spec, along)
    blocks = _cells(spec, along)
    # one bisection over every cell of every block with the same searched ops and static shape
    by_kind: dict[tuple, list[int]] = {}
    for i, (_, cells, _, _, ops) in enumerate(blocks):
        searched = tuple(op for op in ops if op.hops is None)
        by_kind.setdefault((searched, jax.tree.structure(cells)), []).append(i)
    frames: list[pl.DataFrame] = [pl.DataFrame()] * len(blocks)
    for (searched, _), indices in by_kind.items():

        def joined(part, indices=indices):
            return jax.tree.map(lambda *leaves: np.concatenate(leaves), *(part(blocks[i]) for i in indices))

        # the blocks' widths off the lattice, each list padded with 0 (no width) to the longest
        extras = [
            np.concatenate(
                [
                    block[3][j] if j < len(block[3]) else np.zeros(len(block[3][0]), dtype=object)
                    for block in (blocks[i] for i in indices)
                ]
            )
            for j in range(max(len(blocks[i][3]) for i in indices))
        ]
        priced = _rows(joined(lambda b: b[1]), joined(lambda b: b[2]), extras, searched, along)
        start = 0
        for i in indices:
            labels, cells, _, _, ops = blocks[i]
            size = len(cells.phase)
            part = {name: v[start * len(searched) : (start + size) * len(searched)] for name, v in priced.items()}
            frames[i] = _frame(labels, ops, along, _with_collectives(part, ops, searched, size), schema)
            start += size
    return pl.concat(frames)


def _with_collectives(rows: dict, ops: tuple[_KindOp, ...], searched: tuple[_KindOp, ...], size: int) -> dict:
    """The searched ops' rows (cell × op, ops fastest) with the collectives' rows put in their place:
    no crossover, no intensities (no FLOPs), monotone."""
    if len(searched) == len(ops):
        return rows
    fill = {"crossover": 0, "intensity_below": np.nan, "intensity_at": np.nan, "monotone": True}
    out = {}
    for name, values in rows.items():
        table = np.full((size, len(ops)), fill[name], dtype=values.dtype)
        table[:, [op.hops is None for op in ops]] = values.reshape(size, len(searched))
        out[name] = table.ravel()
    return out


def crossover_table(df: pl.DataFrame) -> str:
    """A crossover frame as plain text: columns equal on every row go into a title line.

    ``never`` marks a null crossover, ``network`` a collective's (network-bound at every
    value); ``-`` an absent value.
    """
    along = next((axis for axis in AXES if axis not in df.columns), None)
    if along is None or "crossover" not in df.columns:
        raise SpecError(f"crossover_table: expected a frame of rooflax.crossover, got columns {df.columns}")
    if df.is_empty():
        return f"no crossovers along {along} (no rows)"
    layout = tuple(name for name in LAYOUT if name in df.columns)
    keys = (*ENTITIES, *layout, "phase", "spec_k", *(a for a in AXES if a != along), "ridge")
    constant = [name for name in keys if df.get_column(name).n_unique() == 1]
    title = ", ".join(
        f"{name} {_cell(df.get_column(name)[0])}" + (" FLOP/byte" if name == "ridge" else "")
        for name in constant
        if df.get_column(name)[0] is not None
    )
    layer = ("layer",) if "layer" in df.columns else ()
    shown = [name for name in (*keys, *layer, "op") if name not in constant]
    header = [*shown, f"{along} crossover", "intensity below", "at"]
    network = df.get_column("network") if "network" in df.columns else pl.Series([False] * df.height)
    rows = tuple(
        (
            *(_cell(row[name]) for name in shown),
            "network" if is_network else _cell(row["crossover"], "never") + ("" if row["monotone"] else " *"),
            _cell(row["intensity_below"]),
            _cell(row["intensity_at"]),
        )
        for row, is_network in zip(df.iter_rows(named=True), network, strict=True)
    )
    numeric = tuple(name not in ("model", "hardware", "dtype", "phase", "layer", "op") for name in shown) + (True,) * 3
    intro = f"smallest {along} at which each op is compute-bound (intensities in FLOP/byte; never: not up to 2**40)"
    text = Table(title="\n".join(filter(None, (intro, title))), header=tuple(header), rows=rows, numeric=numeric).text()
    if not df.get_column("monotone").all():
        text += "\n* memory-bound again at a larger value (a preset's own width differs from the Llama scaling)"
    if network.any():
        text += (
            "\nnetwork: a collective (group comm) does no FLOPs and moves its bytes over the interconnect, "
            "so it is network-bound at every value and never crosses"
        )
    return text


def _cell(value: object, null: str = "-") -> str:
    """One table cell: integers as they are, floats to five significant digits."""
    if value is None:
        return null
    if isinstance(value, float):
        return f"{value:.5g}"
    return str(value)
