"""Crossovers: the smallest batch, sequence length or width at which each op turns compute-bound.

For every model × hardware × dtype × phase step × op, and every value of the spec's other
two axes, :func:`crossover` finds the smallest value ``v`` of the crossed axis at which the
op is compute-bound, exactly over the integers: at ``v`` the op is compute-bound by
:func:`rooflax.evaluate`, at the legal value just below ``v`` it is memory-bound.

How: one bisection per op over every cell at once, as jnp arrays on the default device
(float64 inside a local ``jax.enable_x64``; like the engine's, the jitted solver is cached
per static configuration, so a second call does not recompile), then an exact check of each answer and of the
value below it in Python integers (the arithmetic of :func:`rooflax.evaluate`); a cell
whose float64 answer fails that check (possible only once counts pass 2**53) is bisected
again in Python integers.

Legal values and limits (:data:`LIMIT` = 2**40):

- ``batch``: 1 … 2**40.
- ``seq_len``: 1 … 2**40, from ``spec_k`` on in a verify step (verify needs ``S ≥ K``).
- ``hidden``: the widths the model scales to, multiples of ``head_dim × heads per KV
  head`` up to 2**40, plus the model's own width.

``crossover`` is null where the op is not compute-bound anywhere up to the limit.

Scope: dense models on one device. A spec with a mixture-of-experts model, or with a
``tp``, ``pp`` or ``ep`` degree other than 1, is refused (:func:`supported`).

Monotone: along ``batch`` and ``seq_len`` each op's intensity ``flops / bytes`` never
falls (its numerator and denominator are affine in the axis, or the axis times an affine
function), and its correctly rounded quotient, compared with the ridge, never falls either,
so once compute-bound an op stays compute-bound (``tests/test_crossover.py`` checks this property). Along ``hidden``
the Llama-scaled widths are monotone too, but a preset's own width keeps its own shape
(``llama-3-8b`` has intermediate 14336, not the 11008 the Llama rule gives at 4096), so
its bound can differ from its neighbours'. The answer is still the smallest compute-bound
width; ``monotone`` is false where some larger width up to the limit is memory-bound again.
"""

from __future__ import annotations

import functools
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import polars as pl

from rooflax.answers.tables import Table
from rooflax.config.models import llama_scaled
from rooflax.config.spec import SweepSpec
from rooflax.cost.ops import GROUPS, OP_NAMES, PHASES, OpDef, layer_ops, make_step
from rooflax.cost.roofline import is_compute_bound
from rooflax.cost.shape import Shape
from rooflax.data.frames import check_in_memory, resolve_spec
from rooflax.errors import SpecError, unknown_name

__all__ = ["AXES", "LIMIT", "crossover", "crossover_table", "supported"]

#: Axes a crossover can be found along.
AXES = ("batch", "seq_len", "hidden")
#: Largest value searched on every axis.
LIMIT = 2**40
_ITERATIONS = LIMIT.bit_length() + 1
#: Peak bytes of memory a crossover takes per row of its frame (cells in Python integers, the
#: bisection's arrays on the device, the frame): measured about 160 B, with room to spare.
ROW_BYTES = 400  # bisection steps that narrow [n_lo - 1, n_hi + 1] to one value

#: Per-cell parameters, all integers (Python ints on the host, float64 on the device) but the last four.
_INTS = ("phase", "spec_k", "batch", "seq_len", "hidden", "heads", "kv_heads", "head_dim", "group_size",
         "intermediate", "vocab", "n_lo", "n_hi", "step")
_NUMS = ("w", "a", "k", "ridge")


def _step(p: dict, along: str, value, *, causal: bool, where, family: bool):
    """The :class:`rooflax.cost.ops.Step` of every cell with the crossed axis at ``value``.

    Along ``hidden`` the model is scaled as :meth:`rooflax.Model.at_hidden` does; with
    ``family`` the model's own width is scaled by the rule too (a monotone family).
    """
    batch, seq_len, hidden = p["batch"], p["seq_len"], p["hidden"]
    heads, kv_heads, intermediate = p["heads"], p["kv_heads"], p["intermediate"]
    if along == "batch":
        batch = value
    elif along == "seq_len":
        seq_len = value
    else:
        scaled = llama_scaled(value, p["head_dim"], p["group_size"])
        if family:
            heads, kv_heads, intermediate = scaled
        else:
            own = value == hidden
            heads, kv_heads, intermediate = (where(own, mine, theirs) for mine, theirs in
                                             zip((heads, kv_heads, intermediate), scaled, strict=True))
        hidden = value
    return make_step(Shape(batch=batch, seq_len=seq_len, phase=p["phase"], spec_k=p["spec_k"], hidden=hidden,
                           heads=heads, kv_heads=kv_heads, head_dim=p["head_dim"], intermediate=intermediate,
                           vocab=p["vocab"], layers=1, w=p["w"], a=p["a"], k=p["k"], causal=causal))


@functools.lru_cache(maxsize=32)
def _solver(ops: tuple[OpDef, ...], along: str, causal: bool):
    """The jitted bisection: for each op and cell, the first index ``n`` whose value ``n·step`` is compute-bound.

    Returns ``n_hi + 1`` where no index up to ``n_hi`` is. Cached per static configuration.
    """

    def bound(p: dict, n):
        out = []
        for j, op in enumerate(ops):
            step = _step(p, along, (n[j] * p["step"]).astype(jnp.float64), causal=causal, where=jnp.where,
                         family=True)
            flops, bytes_ = op.cost(step)
            out.append(is_compute_bound(flops, bytes_, p["ridge"]))
        return jnp.stack(out)

    def solve(ints: jax.Array, nums: jax.Array):
        floats = ints.astype(jnp.float64)
        p = {name: floats[i] for i, name in enumerate(_INTS)}
        p.update({name: nums[i] for i, name in enumerate(_NUMS)})
        p["step"] = ints[_INTS.index("step")]
        shape = (len(ops), ints.shape[1])
        lo = jnp.broadcast_to(ints[_INTS.index("n_lo")] - 1, shape)
        hi = jnp.broadcast_to(ints[_INTS.index("n_hi")] + 1, shape)

        def narrow(_, state):
            lo, hi = state
            active = hi - lo > 1
            mid = jnp.where(active, (lo + hi) // 2, hi)
            compute = bound(p, mid)
            return jnp.where(active & ~compute, mid, lo), jnp.where(active & compute, mid, hi)

        return jax.lax.fori_loop(0, _ITERATIONS, narrow, (lo, hi))[1]

    return jax.jit(solve)


def _device_bisect(cells: dict, ops: tuple[OpDef, ...], along: str, causal: bool) -> np.ndarray:
    """:func:`_solver` on the cells, padded to a power of two so that few shapes compile."""
    count = len(cells["phase"])
    length = 1 << max(count - 1, 0).bit_length()
    pad = np.r_[np.arange(count), np.full(length - count, count - 1)]
    ints = np.stack([cells[name].astype(np.int64)[pad] for name in _INTS])
    nums = np.stack([cells[name].astype(np.float64)[pad] for name in _NUMS])
    with jax.enable_x64(True):
        n = _solver(ops, along, causal)(jnp.asarray(ints), jnp.asarray(nums))
        return np.asarray(n)[:, :count].astype(object)


def _exact(cells: dict, op: OpDef, along: str, value: np.ndarray, *, causal: bool, family: bool):
    """Exact ``(compute-bound, intensity)`` of ``op`` at ``value`` per cell, as :func:`rooflax.evaluate` has them.

    Python integers in numpy object arrays: the same operations, in the same order, as
    :func:`rooflax.evaluate` on Python numbers.
    """
    step = _step(cells, along, value, causal=causal, where=np.where, family=family)
    flops, bytes_ = op.cost(step)
    compute = np.asarray(is_compute_bound(flops, bytes_, cells["ridge"]), dtype=bool)
    return compute, np.asarray(flops / bytes_, dtype=np.float64)


def _host_bisect(cells: dict, op: OpDef, along: str, causal: bool) -> np.ndarray:
    """The same bisection as :func:`_solver`, in exact Python integers (for the cells given)."""
    lo, hi = cells["n_lo"] - 1, cells["n_hi"] + 1
    while True:
        active = hi - lo > 1
        if not active.any():
            return hi
        mid = np.where(active, (lo + hi) // 2, hi)
        compute, _ = _exact(cells, op, along, mid * cells["step"], causal=causal, family=True)
        lo, hi = np.where(active & ~compute, mid, lo), np.where(active & compute, mid, hi)


def _solve(cells: dict, ops: tuple[OpDef, ...], along: str, causal: bool) -> list[np.ndarray]:
    """Per op, the first compute-bound index of the (monotone) family, checked exactly and repaired."""
    out = []
    for j, n in enumerate(_device_bisect(cells, ops, along, causal)):
        op, n_lo, n_hi, step = ops[j], cells["n_lo"], cells["n_hi"], cells["step"]
        at, _ = _exact(cells, op, along, np.minimum(n, n_hi) * step, causal=causal, family=True)
        below, _ = _exact(cells, op, along, np.maximum(n - 1, n_lo) * step, causal=causal, family=True)
        wrong = ((n <= n_hi) & ~at) | ((n > n_lo) & below)
        if wrong.any():
            n = n.copy()
            n[wrong] = _host_bisect({name: v[wrong] for name, v in cells.items()}, op, along, causal)
        out.append(n)
    return out


def _answers(cells: dict, n: np.ndarray, along: str, compute_at_own: np.ndarray):
    """``(crossover, value below it, monotone)`` per cell; crossover and below are 0 where absent.

    Along ``batch`` and ``seq_len`` these follow from the first compute-bound index. Along
    ``hidden`` the model's own width ``h0`` (bound ``compute_at_own``) is spliced into the
    scaled family whose first compute-bound width is ``c``.
    """
    step, top = cells["step"], cells["n_hi"] * cells["step"]
    if along != "hidden":
        found = n <= cells["n_hi"]
        return np.where(found, n, 0), np.where(found & (n > cells["n_lo"]), n - 1, 0), np.ones(len(n), bool)
    never = top + step
    c = n * step  # == never where the family never turns compute-bound
    h0 = cells["hidden"]
    inside = h0 <= top
    own = compute_at_own & inside
    c_other = np.where((c == h0) & (c < never), c + step, c)  # first compute-bound scaled width other than h0
    c_other = np.where(c_other > top, never, c_other)
    answer = np.where(own, np.minimum(h0, c_other), c_other)
    next_above_own = (h0 // step + 1) * step
    monotone = ~((own & (next_above_own <= top) & (next_above_own < c))  # memory-bound widths above h0
                 | (~own & inside & (c_other < h0)))  # h0 memory-bound above compute-bound widths
    lattice_below = (answer - 1) // step * step
    below = np.where((h0 < answer) & inside, np.maximum(lattice_below, h0), lattice_below)
    found = answer < never
    return np.where(found, answer, 0), np.where(found, below, 0), monotone


def _cells(spec: SweepSpec, along: str) -> list[tuple[dict, dict, tuple[OpDef, ...]]]:
    """Blocks of cells: ``(labels, cells, ops)`` per model × hardware × dtype × phase step.

    ``cells`` holds Python-integer object arrays of :data:`_INTS` and :data:`_NUMS` over
    the grid of the two other axes (in frame order: batch, seq_len, hidden).
    """
    blocks = []
    for model in spec.models:
        ops = layer_ops(gated_mlp=model.gated_mlp, fused_attention=spec.fused_attention)
        hidden_values = (model.hidden,) if along == "hidden" else spec.hidden_for(model)
        shapes = {h: model.at_hidden(h) for h in hidden_values}
        for hw in spec.hardware:
            for dt in spec.dtypes:
                for phase, spec_k, seq_start in spec.steps():
                    axes = {"batch": spec.batch, "seq_len": spec.seq_len[seq_start:], "hidden": hidden_values}
                    axes[along] = (0,)
                    grid = [a.ravel() for a in np.meshgrid(*(np.array(v, dtype=object) for v in axes.values()),
                                                           indexing="ij")]
                    cells = dict(zip(axes, grid, strict=True))
                    size = len(grid[0])
                    shape = [shapes[h] for h in cells["hidden"]] if along != "hidden" else [model] * size
                    cells.update({
                        "heads": np.array([m.heads for m in shape], dtype=object),
                        "kv_heads": np.array([m.kv_heads for m in shape], dtype=object),
                        "intermediate": np.array([m.intermediate for m in shape], dtype=object),
                    })
                    if along == "hidden":
                        cells["hidden"] = np.full(size, model.hidden, dtype=object)
                    lattice = model.head_dim * model.group_size if along == "hidden" else 1
                    lowest = spec_k if along == "seq_len" and phase == "verify" else 1
                    scalars = {"phase": PHASES.index(phase), "spec_k": spec_k or 0, "head_dim": model.head_dim,
                               "group_size": model.group_size, "vocab": model.vocab, "n_lo": lowest,
                               "n_hi": LIMIT // lattice, "step": lattice, "w": dt.weight_bytes, "a": dt.act_bytes,
                               "k": dt.kv_bytes, "ridge": hw.ridge(dt.compute)}
                    for name, value in scalars.items():
                        cells[name] = np.full(size, value, dtype=object)
                    labels = {"model": model.name, "hardware": hw.name, "dtype": dt.name, "phase": phase,
                              "spec_k": spec_k, "ridge": hw.ridge(dt.compute)}
                    blocks.append((labels, cells, ops))
    return blocks


def _rows(cells: dict, ops: tuple[OpDef, ...], along: str, causal: bool) -> dict[str, np.ndarray]:
    """``crossover`` (0: none), ``intensity_below``, ``intensity_at`` (NaN: none) and ``monotone``.

    One entry per cell × op, ops varying fastest; every cell shares ``ops``.
    """
    own = np.zeros(len(cells["phase"]), bool)
    placeholder = cells["n_lo"] * cells["step"]  # a legal value to evaluate where there is none
    columns: dict[str, list] = {"crossover": [], "intensity_below": [], "intensity_at": [], "monotone": []}
    for op, n in zip(ops, _solve(cells, ops, along, causal), strict=True):
        if along == "hidden":
            own, _ = _exact(cells, op, along, cells["hidden"], causal=causal, family=False)
        answer, below, monotone = _answers(cells, n, along, own)
        for name, value in (("intensity_at", answer), ("intensity_below", below)):
            _, intensity = _exact(cells, op, along, np.where(value > 0, value, placeholder), causal=causal,
                                  family=False)
            columns[name].append(np.where(value > 0, intensity, np.nan))
        columns["crossover"].append(answer.astype(np.int64))
        columns["monotone"].append(monotone.astype(bool))
    return {name: np.stack(parts, axis=1).ravel() for name, parts in columns.items()}


def _frame(labels: dict, cells: dict, ops: tuple[OpDef, ...], along: str, rows: dict,
           schema: pl.Schema) -> pl.DataFrame:
    """The crossover frame of one block from its :func:`_rows`."""
    size = len(cells["phase"])
    count = size * len(ops)
    frame = {
        **{name: [labels[name]] * count for name in ("model", "hardware", "dtype", "phase", "spec_k")},
        "op": [op.name for op in ops] * size, "group": [op.group for op in ops] * size,
        **{axis: np.repeat(cells[axis].astype(np.int64), len(ops)) for axis in AXES if axis != along},
        "crossover": rows["crossover"], "ridge": np.full(count, labels["ridge"]),
        "intensity_below": rows["intensity_below"], "intensity_at": rows["intensity_at"],
        "monotone": rows["monotone"],
    }
    df = pl.DataFrame(frame, schema_overrides={"spec_k": pl.Int64}, nan_to_null=True)
    return df.with_columns(pl.when(pl.col("crossover") > 0).then(pl.col("crossover"))).cast(schema)


def _schema(spec: SweepSpec, along: str) -> pl.Schema:
    """Column names and types of a crossover frame."""
    from rooflax.data.frames import schemas

    keys = schemas(spec)[0]
    return pl.Schema({
        **{name: keys[name] for name in ("model", "hardware", "dtype", "phase", "spec_k")},
        "op": pl.Enum(OP_NAMES), "group": pl.Enum(GROUPS),
        **{axis: pl.Int64 for axis in AXES if axis != along},
        "crossover": pl.Int64, "ridge": pl.Float64, "intensity_below": pl.Float64, "intensity_at": pl.Float64,
        "monotone": pl.Boolean,
    })


def supported(spec: SweepSpec) -> str | None:
    """Why crossovers do not cover ``spec`` (one ``field: …`` line), or None where they do.

    Crossovers cover dense single-device layers: no model with experts, every
    ``tp``, ``pp`` and ``ep`` degree 1.
    """
    scope = "crossovers cover dense single-device layers for now"
    moe = [model.name for model in spec.models if model.experts]
    if moe:
        return f"model: {', '.join(moe)} {'has' if len(moe) == 1 else 'have'} experts; {scope} (dense models only)"
    for axis in ("tp", "pp", "ep"):
        degrees = getattr(spec, axis)
        if degrees != (1,):
            return f"{axis}: {', '.join(map(str, degrees))} given; {scope} ({axis} = 1 only)"
    return None


def crossover(spec: SweepSpec | str | Path | None = None, *, along: str = "batch", **keys: object) -> pl.DataFrame:
    """The smallest value of ``along`` at which each op turns compute-bound (module docstring).

    Args:
        spec: a :class:`rooflax.SweepSpec`, a TOML path, or None: ``keys`` with the
            reference sweep's batch and seq_len axes where they are not given.
        along: ``batch``, ``seq_len`` or ``hidden``. The spec's values of this axis are
            ignored; its other two axes give one row each per value.
        **keys: the spec's TOML keys (``model``, ``hardware``, ``dtype``, ``phases``,
            ``seq_len``, ...), replacing those of ``spec``.

    Raises:
        SpecError: ``along`` is not an axis, or the spec is out of scope (:func:`supported`).

    Returns:
        One row per model × hardware × dtype × phase step × value of the two other axes
        × op: ``model``, ``hardware``, ``dtype``, ``phase``, ``spec_k``, ``op``,
        ``group``, the two other axes, ``crossover`` (null: not compute-bound up to
        :data:`LIMIT`), ``ridge`` (FLOP/byte), ``intensity_below`` (at the legal value
        just below the crossover; null where the crossover is the smallest legal
        value), ``intensity_at`` and ``monotone`` (false where the op is memory-bound
        again at some larger value: only along ``hidden``, at a preset's own width).

    >>> df = crossover(model="llama-13b", hardware="a40", phases=["decode"], seq_len=[2048])
    >>> df.filter(op="up_proj").select("crossover", "intensity_below", "intensity_at").row(0)
    (229, 214.88668902887997, 215.77474388772637)
    """
    if not isinstance(along, str) or along not in AXES:
        raise unknown_name("along", along, AXES, what="axis")
    if along in keys or along in (keys.get("axes") or {}):
        raise SpecError(f"{along}: the crossover is searched along {along} (every value up to 2**40), so values of "
                        f"{along} are not read; leave {along} out, or cross another axis")
    # the crossed axis is searched whole: one placeholder value stands in for the spec's (a seq_len
    # past every spec_k, so that any verify step is legal)
    placeholder = {"batch": [1], "seq_len": [LIMIT], "hidden": None}[along]
    spec = resolve_spec(spec, {**keys, along: placeholder}, reference_axes=True)
    refused = supported(spec)
    if refused is not None:
        raise SpecError(refused)
    # one row per cell of the two other axes (the crossed one holds its placeholder) and op
    rows = sum(len(spec.batch) * (len(spec.seq_len) - first) * len(spec.hidden_for(m))
               * len(layer_ops(gated_mlp=m.gated_mlp, fused_attention=spec.fused_attention))
               for m in spec.models for _, _, first in spec.steps()) * len(spec.hardware) * len(spec.dtypes)
    check_in_memory("crossover", rows, ROW_BYTES, instead="a crossover frame is solved in memory: give fewer values "
                    f"of the axes not crossed ({', '.join(a for a in AXES if a != along)}), or fewer phases, models, "
                    "accelerators or dtypes")
    schema = _schema(spec, along)
    blocks = _cells(spec, along)
    by_ops: dict[tuple[OpDef, ...], list[int]] = {}
    for i, (_, _, ops) in enumerate(blocks):
        by_ops.setdefault(ops, []).append(i)
    frames: list[pl.DataFrame] = [pl.DataFrame()] * len(blocks)
    for ops, indices in by_ops.items():  # one bisection over every cell of every block with these ops
        cells = {name: np.concatenate([blocks[i][1][name] for i in indices]) for name in blocks[indices[0]][1]}
        rows = _rows(cells, ops, along, spec.causal)
        start = 0
        for i in indices:
            labels, block, _ = blocks[i]
            end = start + len(block["phase"]) * len(ops)
            frames[i] = _frame(labels, block, ops, along, {name: v[start:end] for name, v in rows.items()}, schema)
            start = end
    return pl.concat(frames)


def crossover_table(df: pl.DataFrame) -> str:
    """A crossover frame as plain text: columns equal on every row go into a title line.

    ``never`` marks a null crossover; ``-`` an absent value.
    """
    along = next((axis for axis in AXES if axis not in df.columns), None)
    if along is None or "crossover" not in df.columns:
        raise SpecError(f"crossover_table: expected a frame of rooflax.crossover, got columns {df.columns}")
    if df.is_empty():
        return f"no crossovers along {along} (no rows)"
    keys = ("model", "hardware", "dtype", "phase", "spec_k", *(a for a in AXES if a != along), "ridge")
    constant = [name for name in keys if df.get_column(name).n_unique() == 1]
    title = ", ".join(f"{name} {_cell(df.get_column(name)[0])}" + (" FLOP/byte" if name == "ridge" else "")
                      for name in constant if df.get_column(name)[0] is not None)
    shown = [name for name in (*keys, "op") if name not in constant]
    header = [*shown, f"{along} crossover", "intensity below", "at"]
    rows = tuple((*(_cell(row[name]) for name in shown),
                  _cell(row["crossover"], "never") + ("" if row["monotone"] else " *"),
                  _cell(row["intensity_below"]), _cell(row["intensity_at"]))
                 for row in df.iter_rows(named=True))
    numeric = tuple(name not in ("model", "hardware", "dtype", "phase", "op") for name in shown) + (True,) * 3
    intro = f"smallest {along} at which each op is compute-bound (intensities in FLOP/byte; never: not up to 2**40)"
    text = Table("\n".join(filter(None, (intro, title))), tuple(header), rows, numeric).text()
    if not df.get_column("monotone").all():
        text += "\n* memory-bound again at a larger value (a preset's own width differs from the Llama scaling)"
    return text


def _cell(value: object, null: str = "-") -> str:
    """One table cell: integers as they are, floats to five significant digits."""
    if value is None:
        return null
    if isinstance(value, float):
        return f"{value:.5g}"
    return str(value)
