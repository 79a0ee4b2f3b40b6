"""Predict measured rows with the sweeps' own op formulas: one code path for a measured kernel and a swept op.

:func:`predict_measurements` takes a frame of :func:`rooflax.read_measurements` and adds,
per row, the op's ``flops`` and ``bytes`` (the counting contract), ``ideal_time_s`` (the
roof) and ``predicted_time_s`` (below the roof, :mod:`rooflax.cost.achieved`) on the row's
preset or a given profile. Each measured kind is one op (or the ops of one fused kernel)
of :mod:`rooflax.cost.ops`, priced through :func:`rooflax.cost.ops.make_step` on a
:class:`~rooflax.cost.shape.Shape` holding the row's numbers, exactly as a sweep prices it:

``gemm``
    ``up_proj`` with ``M = m`` tokens, ``h = k``, ``I = n``: ``[m, k] × [k, n]``, weights
    read once, input read and output written (a swept ``qkv_proj``, ``o_proj``, ... of the
    same shape has the same costs and the same terms).
``attention_prefill``, ``attention_decode``
    the fused ``attention`` op in prefill (causal, ``Q = T = seq_len``) or decode
    (``Q = 1``, ``T = seq_len``); KV bytes at the row's ``kv_dtype``.
``all_reduce``
    ``attn_allreduce`` at ``tp = gpus`` on a message of ``message_bytes``;
``alltoall``, ``all_gather``, ``reduce_scatter``
    ``moe_dispatch`` at ``ep = gpus`` (``(p−1)/p`` of the message crosses, ``p−1`` hops; an
    all-gather and a reduce-scatter move the same share as an all-to-all).
``moe``
    the routed experts of one layer, ``expert_gate``, ``expert_up``, ``expert_silu_mul`` and
    ``expert_down`` at ``tp = moe_tp``, ``ep = moe_ep``, summed (each with the ``moe`` terms, as a
    sweep prices them); ``balanced`` routing spreads
    tokens over every expert, ``power_law_α`` gives the timed GPU the pairs and touched
    experts of the most loaded rank under aiconfigurator's power-law router
    (:func:`power_law_load`). The activation (``expert_silu_mul``) runs over every token's ``k``
    pairs, local or not: aiconfigurator times vLLM's ``fused_experts`` with an expert map
    (expert parallelism without a dispatch), whose activation and intermediate buffers span
    all ``T·k`` pairs while the products skip the blocks of other ranks' experts.
a ``rooflax validate`` op name
    that op of :func:`rooflax.evaluate` at the row's model and grid point (a model scaled to
    another width, ``name@h<hidden>``, is the preset scaled as a sweep scales it). Its fitted
    family (:func:`fitted_family`) is ``gemm`` for the linear ops and, for ``qk`` and ``pv``,
    the attention family of the phase whose terms price it (decode, or prefill for prefill
    and verify), so a profile fitted to validate's timings prices a sweep's ops with the
    terms fitted to them.

Rows rooflax cannot price yet keep null predictions: sliding-window attention
(``window > 0``), and types it has no dtype policy for (``fp8_block``, ``nvfp4``, 4-bit
weights).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np
import polars as pl

from rooflax.config.dtypes import DTYPES, KV_DTYPES, DtypePolicy
from rooflax.config.hardware import Hardware, get_hardware
from rooflax.config.models import LayerKind, Model, get_model
from rooflax.cost.achieved import spent_flops
from rooflax.cost.ops import Step, layer_ops, make_step, op_costs
from rooflax.cost.roofline import Roof, op_row
from rooflax.cost.shape import Shape
from rooflax.errors import SpecError, boolean
from rooflax.names import LAYOUT, TERM_GROUPS

__all__ = [
    "FAMILY_OF_KIND",
    "ROUTING_DRAWS",
    "fitted_family",
    "power_law_load",
    "predict_measurements",
    "replay_roof",
    "work",
]

#: The op family (achieved-model terms) each measured kind belongs to.
FAMILY_OF_KIND = {
    "gemm": "gemm",
    "attention_prefill": "attention_prefill",
    "attention_decode": "attention_decode",
    "all_reduce": "all_reduce",
    "alltoall": "alltoall",
    "all_gather": "alltoall",
    "reduce_scatter": "alltoall",
    "moe": "moe",
}
_EXPERT_PRODUCTS = ("expert_gate", "expert_up", "expert_down")
_MOE_OPS = (*_EXPERT_PRODUCTS, "expert_silu_mul")
_OP_OF_KIND = {
    "gemm": ("up_proj",),
    "attention_prefill": ("attention",),
    "attention_decode": ("attention",),
    "all_reduce": ("attn_allreduce",),
    "alltoall": ("moe_dispatch",),
    "all_gather": ("moe_dispatch",),
    "reduce_scatter": ("moe_dispatch",),
    "moe": _MOE_OPS,
}
#: Each op's group, over every op set (the op names ``rooflax validate`` times are among them).
_GROUP_OF_OP = {
    op.name: op.group
    for fused in (False, True)
    for gated in (False, True)
    for op in layer_ops(gated_mlp=gated, fused_attention=fused, moe=True, comm=LAYOUT)
}
#: The phase whose terms a measured kind runs with (the others: any phase's).
_PHASE_OF_KIND = {"attention_prefill": "prefill", "attention_decode": "decode"}
#: Element bytes of the measured dtypes rooflax prices (others stay unpriced).
_ELEMENT = {name: policy.act_bytes for name, policy in DTYPES.items() if name in ("fp32", "fp16", "bf16", "fp8")}
#: Element bytes of the measured KV-cache dtypes without block scales (a block-scaled one stays unpriced).
_KV_ELEMENT = {name: fmt.element_bytes for name, fmt in KV_DTYPES.items() if not fmt.block[0]}


#: Draws of aiconfigurator's power-law router that :func:`power_law_load` averages (a fixed seed: the same everywhere).
ROUTING_DRAWS = 64


def power_law_load(tokens: int, experts: int, topk: int, ep: int, alpha: float) -> tuple[float, float]:
    """``(routed, touched)`` on the timed GPU under aiconfigurator's power-law router: the expected token-expert
    pairs and touched experts of the most loaded expert-parallel rank.

    aiconfigurator's ``power_law_α`` tables (``collector/common_test_cases.py``,
    ``_generate_power_law_distribution``) draw each expert's load independently from a power
    law ``P(x) ∝ x^−α`` on ``[1, 0.8·T]`` (on ``[0.01, 2]`` when ``T·k ≤ E``), scale the draws to
    the ``T·k`` pairs and round them, and time the rank whose ``E/ep`` consecutive experts
    carry the most pairs (they swap it to rank 0). So the timed GPU's pairs are the expected
    *largest* group's, not ``T·k/ep``: an expected-value count (``E_eff = 1/Σp²``) would
    price an average rank and miss the slowest. This is the mean over :data:`ROUTING_DRAWS`
    draws of that generator (inverse-CDF sampling, seed 0; rounding's surplus settled as it
    does, one pair at a time from the largest loads, a shortfall from the smallest).

    Args:
        tokens, experts, topk, ep: ``T``, ``E``, ``k`` and the expert-parallel degree.
        alpha: the power law's exponent (``≠ 1``, as the tables' 1.01 and 1.2).

    >>> power_law_load(64, 8, 2, 1, 1.2)[0]  # one rank: every pair
    128.0
    >>> routed, touched = power_law_load(64, 8, 2, 8, 1.2)  # one expert a rank: the largest load
    >>> 128 / 8 < routed < 128 and touched == 1.0
    True
    """
    low, high = (1.0, 0.8 * tokens) if tokens * topk > experts else (0.01, 2.0)
    u = np.random.default_rng(0).random((ROUTING_DRAWS, experts))
    a, b = low ** (1 - alpha), high ** (1 - alpha)
    x = ((b - a) * u + a) ** (1 / (1 - alpha))
    loads = np.round(x / x.sum(axis=1, keepdims=True) * (tokens * topk))
    for draw in loads:  # rounding's surplus or shortfall, as the generator settles it: from the largest loads
        delta = int(tokens * topk - draw.sum())
        order = np.argsort(-draw, kind="stable")
        if delta > 0:
            np.add.at(draw, order[np.arange(delta) % experts], 1)
        for i in range(-delta):
            smallest = order[-(i % experts) - 1]
            draw[smallest if draw[smallest] > 0 else np.argmax(draw)] -= 1
    groups = loads.reshape(ROUTING_DRAWS, ep, experts // ep)
    rank = groups.sum(axis=2).argmax(axis=1)
    heaviest = groups[np.arange(ROUTING_DRAWS), rank]
    return float(heaviest.sum(axis=1).mean()), float((heaviest > 0).sum(axis=1).mean())


def _zeros(n: int) -> np.ndarray:
    return np.zeros(n, dtype=np.float64)


def _shape(n: int, **numbers) -> dict:
    """Keyword arguments of a Shape over ``n`` rows: every numeric field an array, unset ones 1 (0 for MoE fields)."""
    ones = np.ones(n, dtype=np.float64)
    base = {
        name: ones
        for name in (
            "batch",
            "seq_len",
            "hidden",
            "heads",
            "kv_heads",
            "head_dim",
            "intermediate",
            "vocab",
            "layers",
            "w",
            "a",
            "k",
        )
    }
    base.update(phase=ones, spec_k=_zeros(n))
    return {**base, **{name: np.asarray(value, dtype=np.float64) * ones for name, value in numbers.items()}}


def _gemm(rows: pl.DataFrame, w: np.ndarray) -> Shape:
    return Shape(**_shape(rows.height, batch=rows["m"], hidden=rows["k"], intermediate=rows["n"], w=w, a=w, k=w))


def _attention(rows: pl.DataFrame, w: np.ndarray, kv: np.ndarray, prefill: bool) -> Shape:
    heads, head_dim = rows["heads"].to_numpy(), rows["head_dim"].to_numpy()
    return Shape(
        **_shape(
            rows.height,
            batch=rows["batch"],
            seq_len=rows["seq_len"],
            phase=0 if prefill else 1,
            hidden=heads * head_dim,
            heads=heads,
            kv_heads=rows["kv_heads"],
            head_dim=head_dim,
            w=w,
            a=w,
            k=kv,
        ),
        fused_attention=True,
        causal=prefill,
    )


def _collective(rows: pl.DataFrame, w: np.ndarray, ring: bool) -> Shape:
    elements = rows["message_bytes"].to_numpy() / w
    gpus = rows["gpus"].to_numpy()
    if ring:
        return Shape(**_shape(rows.height, hidden=elements, w=w, a=w, k=w, tp=gpus), comm=("tp",))
    return Shape(
        **_shape(
            rows.height,
            hidden=elements,
            w=w,
            a=w,
            k=w,
            ep=gpus,
            experts=gpus,
            experts_per_token=1,
            routing_experts=gpus,
            moe_intermediate=1,
        ),
        kinds=(LayerKind(mlp="moe"),),
        comm=("ep",),
    )


def _moe(rows: pl.DataFrame, w: np.ndarray) -> Shape:
    tp, ep = rows["moe_tp"].to_numpy(), rows["moe_ep"].to_numpy()
    comm = ()  # the kernel alone: the layout's collectives are timed on their own
    return Shape(
        **_shape(
            rows.height,
            batch=rows["tokens"],
            hidden=rows["hidden"],
            w=w,
            a=w,
            k=w,
            experts=rows["experts"],
            experts_per_token=rows["topk"],
            moe_intermediate=rows["intermediate"],
            routing_experts=rows["experts"],
            tp=tp,
            ep=ep,
        ),
        kinds=(LayerKind(mlp="moe"),),
        comm=comm,
    )


def _routed(step: Step, rows: pl.DataFrame) -> Step:
    """``step`` with the power-law rows' pairs and touched experts those of the timed, most loaded rank
    (:func:`power_law_load`); balanced rows keep the step's even spread over every expert."""
    routed, touched = np.array(step.routed, dtype=np.float64), np.array(step.touched, dtype=np.float64)
    columns = ("tokens", "experts", "topk", "moe_ep", "distribution")
    for i, (tokens, experts, topk, ep, distribution) in enumerate(rows.select(columns).iter_rows()):
        if distribution != "balanced":
            routed[i], touched[i] = _load(tokens, experts, topk, ep, float(distribution.removeprefix("power_law_")))
    return step._replace(routed=routed, touched=touched)


_load = functools.lru_cache(maxsize=None)(power_law_load)


#: The parts of a measured kind: the ops each prices, on the step :func:`_step` gives it.
Parts = tuple[tuple[Step, tuple[str, ...]], ...]


def _costs(kind: str, parts: Parts) -> list:
    """``(op, step, flops, bytes)`` of every op of the parts, in their order."""
    costs = []
    for step, names in parts:
        found = [(op, step, f, b) for op, f, b in op_costs(step) if op.name in names]
        if len(found) != len(names):
            raise AssertionError(f"{kind}: the step lacks an op of {names}")
        costs += found
    return costs


def _priced(kind: str, parts: Parts, roof: Roof, replayed: Roof | None, resident_bytes: float) -> dict[str, np.ndarray]:
    """Summed flops, bytes, ideal and achieved seconds of the ops of ``parts`` (numpy rows).

    With a ``replayed`` roof, an op whose bytes are at most ``resident_bytes`` reads them from
    the L2 cache: its achieved time is the one under that roof.
    """
    costs = _costs(kind, parts)
    out: dict[str, Any] = {
        "flops": 0.0,
        "bytes": 0.0,
        "time_s": 0.0,
        "achieved_time_s": 0.0,  # arrays once summed
        "achieved_lo_s": 0.0,
        "achieved_hi_s": 0.0,
    }
    for op, step, flops, bytes_ in costs:
        row = op_row(op, step, flops, bytes_, roof, xp=np)
        achieved = row.achieved_time_s
        if replayed is not None and not op.collective:
            cached = op_row(op, step, flops, bytes_, replayed, xp=np).achieved_time_s
            achieved = np.where(bytes_ <= resident_bytes, cached, achieved)
        g = TERM_GROUPS.index(op.terms_group)
        low, high = achieved * roof.band_low[g], achieved * roof.band_high[g]
        for key, value in (
            ("flops", flops),
            ("bytes", bytes_),
            ("time_s", row.time_s),
            ("achieved_time_s", achieved),
            ("achieved_lo_s", low),
            ("achieved_hi_s", high),
        ):
            out[key] = out[key] + value
    return out


def replay_roof(hardware: Hardware, policy: DtypePolicy, phase: str | None) -> Roof:
    """The roof of a replayed kernel whose operands stay in L2: each group's memory time over its ``l2_speedup``."""
    roof = Roof.of(hardware, policy, phase)
    speedups = [hardware.terms(group, phase)["l2_speedup"] for group in TERM_GROUPS]
    return replace(
        roof,
        seconds_per_byte=tuple(
            spb / (1.0 if group == "comm" else speedup)
            for spb, speedup, group in zip(roof.seconds_per_byte, speedups, TERM_GROUPS, strict=True)
        ),
    )


def _policy(dtype: str):
    """The dtype policy a measured ``dtype`` runs at (its peak), or None when rooflax has none."""
    return DTYPES.get(dtype) if dtype in _ELEMENT else None


def _step(kind: str, rows: pl.DataFrame, hardware: Hardware, dtype: str) -> tuple[Parts, DtypePolicy] | None:
    """The ops a measured kind runs on their steps, and its dtype policy; None where rooflax cannot price it."""
    policy = _policy(dtype)
    if policy is None or policy.compute not in hardware.dtypes or kind not in _OP_OF_KIND:
        return None
    w = np.full(rows.height, float(policy.act_bytes))
    if kind == "gemm":
        shape = _gemm(rows, w)
    elif kind in ("attention_prefill", "attention_decode"):
        kv = np.array([_KV_ELEMENT.get(name, np.nan) for name in rows["kv_dtype"].to_list()], dtype=np.float64)
        shape = _attention(rows, w, kv, kind == "attention_prefill")
    elif kind == "moe":
        rank = _routed(make_step(_moe(rows, w)), rows)
        every = rank._replace(routed=(rows["tokens"] * rows["topk"]).to_numpy().astype(np.float64))
        return ((rank, _EXPERT_PRODUCTS), (every, ("expert_silu_mul",))), policy
    else:
        shape = _collective(rows, w, kind == "all_reduce")
    return ((make_step(shape), _OP_OF_KIND[kind]),), policy


def _price_kind(
    kind: str, rows: pl.DataFrame, hardware: Hardware, dtype: str, replayed: bool
) -> dict[str, np.ndarray] | None:
    stepped = _step(kind, rows, hardware, dtype)
    if stepped is None:
        return None
    parts, policy = stepped
    phase = _PHASE_OF_KIND.get(kind)
    cached = replay_roof(hardware, policy, phase) if replayed and hardware.l2_resident_bytes else None
    return _priced(kind, parts, Roof.of(hardware, policy, phase), cached, hardware.l2_resident_bytes)


_WORK = ("compute_s", "memory_s", "hops", "bytes", "devices", "flops")


def _op_work(op, step: Step, flops, bytes_, hardware: Hardware, policy: DtypePolicy) -> tuple:
    """One op's :data:`_WORK` at ``hardware``'s ceilings (:func:`work`)."""
    zero = 0.0 * bytes_
    devices = (getattr(step, op.only) if op.only in ("tp", "ep") else 2) + zero
    if op.collective:
        return zero, bytes_ / hardware.interconnect_bytes_per_s, op.hops(step) + zero, bytes_, devices, flops + zero
    spent = spent_flops(
        flops,
        op.gemms(step),
        sm_count=hardware.sm_count,
        tile_m=hardware.tile_m,
        tile_n=hardware.tile_n,
        tile_k=hardware.tile_k,
        xp=np,
    )
    return spent / hardware.peak(policy.compute), bytes_ / hardware.bandwidth_bytes_per_s, zero, bytes_, devices, flops


def work(kind: str, rows: pl.DataFrame, hardware: Hardware, dtype: str) -> dict[str, np.ndarray] | None:
    """What the achieved model's terms multiply, per row and op of a measured kind (for fitting).

    Returns ``{"compute_s", "memory_s", "hops", "bytes", "devices", "flops"}``, arrays of
    ``rows × ops``: the FLOPs the device spends (tile and wave quantization, never fewer than
    the op's own) over the peak, the bytes over the memory bandwidth (a collective's over the
    link), a collective's link latencies (0 for other ops), the bytes, a tensor- or
    expert-parallel collective's devices (2 for other ops) and the op's own FLOPs; None where
    rooflax cannot price the kind. A ``rooflax validate`` op (any kind not of
    :data:`FAMILY_OF_KIND`) is that op of the step at each row's model and grid point, one op a row.
    """
    if kind not in FAMILY_OF_KIND:
        policy = _policy(dtype)
        if policy is None or policy.compute not in hardware.dtypes:
            return None
        per_row = []
        for row in rows.iter_rows(named=True):
            op, step, flops, bytes_ = _validation_op(row, policy)
            per_row.append(_op_work(op, step, flops, bytes_, hardware, policy))
        columns = [np.array(values, dtype=np.float64)[:, None] for values in zip(*per_row, strict=True)]
        return dict(zip(_WORK, columns, strict=True))
    stepped = _step(kind, rows, hardware, dtype)
    if stepped is None:
        return None
    parts, policy = stepped
    ones = np.ones(rows.height)
    per_op = [_op_work(op, step, flops, bytes_, hardware, policy) for op, step, flops, bytes_ in _costs(kind, parts)]
    return {key: np.stack([np.asarray(values[i]) * ones for values in per_op], 1) for i, key in enumerate(_WORK)}


def fitted_family(frame: pl.DataFrame) -> pl.Series:
    """Each measured row's fitted family (:data:`rooflax.calibration.fit.FITTED_GROUPS`), null where none fits it.

    Kernel tables: ``gemm``, ``attention_prefill``, ``attention_decode``, a collective's
    ``comm``, ``moe``. A ``rooflax validate`` op: ``gemm`` for a linear op,
    ``attention_decode`` for ``qk``/``pv`` in decode (or verify of one token, which runs
    decode's terms, :meth:`rooflax.cost.roofline.Roof.of`), else ``attention_prefill``.
    """
    tables = {
        kind: family
        for kind, family in FAMILY_OF_KIND.items()
        if family in ("gemm", "attention_prefill", "attention_decode", "moe")
    }
    tables |= {kind: "comm" for kind, family in FAMILY_OF_KIND.items() if family in ("all_reduce", "alltoall")}
    decode = (pl.col("phase") == "decode") | ((pl.col("phase") == "verify") & (pl.col("spec_k") == 1))
    attention = pl.when(decode).then(pl.lit("attention_decode")).otherwise(pl.lit("attention_prefill"))
    linear = [name for name, group in _GROUP_OF_OP.items() if group in ("qkv mlp", "up/gate/down", "lm_head")]
    scores = [name for name, group in _GROUP_OF_OP.items() if group == "qk/pv"]
    kind = pl.col("kind")
    return frame.select(
        pl.when(kind.is_in(list(tables)))
        .then(kind.replace_strict(tables, default=None, return_dtype=pl.String))
        .when(kind.is_in(linear))
        .then(pl.lit("gemm"))
        .when(kind.is_in(scores))
        .then(attention)
        .otherwise(pl.lit(None, pl.String))
        .alias("family")
    ).to_series()


def _model(name: str) -> Model:
    """A validation row's model: a preset, or one scaled to another width (``name@h<hidden>``, ``Model.at_hidden``)."""
    base, scaled, hidden = name.partition("@h")
    model = get_model(base)
    if not scaled:
        return model
    if not hidden.isdigit():
        raise SpecError(f"measurements: model {name!r}: expected a preset name or <preset>@h<hidden>")
    return model.at_hidden(int(hidden))


def _validation_op(row: dict, policy: DtypePolicy) -> tuple:
    """``(op, step, flops, bytes)`` of the op a ``rooflax validate`` row timed, at its model and grid point."""
    step = make_step(
        Shape.of(
            _model(row["model"]),
            policy,
            phase=row["phase"],
            batch=row["batch"],
            seq_len=row["seq_len"],
            spec_k=row["spec_k"],
        )
    )
    for op, flops, bytes_ in op_costs(step):
        if op.name == row["kind"]:
            return op, step, flops, bytes_
    raise SpecError(f"measurements: op {row['kind']!r} is no op of {row['model']!r} in {row['phase']}")


def _validation(rows: pl.DataFrame, hardware: Hardware) -> dict[str, np.ndarray]:
    from rooflax.engine.evaluate import evaluate

    out: dict[str, list] = {"flops": [], "bytes": [], "time_s": [], "achieved_time_s": []}
    for row in rows.iter_rows(named=True):
        result = evaluate(
            model=_model(row["model"]),
            hardware=hardware,
            dtype=row["dtype"],
            phase=row["phase"],
            batch=row["batch"],
            seq_len=row["seq_len"],
            spec_k=row["spec_k"],
        ).ops
        if row["kind"] not in result:
            raise SpecError(f"measurements: op {row['kind']!r} is no op of {row['model']!r} in {row['phase']}")
        for key in out:
            out[key].append(float(getattr(result[row["kind"]], key)))
    nan = np.full(rows.height, np.nan)  # evaluate's rows carry no band
    return {
        **{key: np.array(values, dtype=np.float64) for key, values in out.items()},
        "achieved_lo_s": nan,
        "achieved_hi_s": nan,
    }


def predict_measurements(
    frame: pl.DataFrame, hardware: str | Hardware | Mapping[str, Hardware] | None = None, *, replayed: bool = True
) -> pl.DataFrame:
    """``frame`` (:func:`rooflax.read_measurements`) with every row priced as a sweep prices that op.

    Args:
        frame: measured rows (the columns of :data:`rooflax.calibration.measurements.MEASUREMENT_SCHEMA`).
        hardware: a preset name or profile to price every row on, or a mapping from a
            row's ``hardware`` to the profile to price it on (others: their preset); by
            default each row's ``hardware`` preset.
        replayed: price the rows as the benchmark ran them, one kernel replayed on the same
            operands, so that operands of at most the profile's ``l2_resident_bytes`` come
            from the L2 cache (at each group's ``l2_speedup``); False prices them as a sweep
            does, every operand from device memory (a forward pass).

    Returns:
        ``frame`` in its order with ``family`` (the achieved model's op family, null for a
        validation op), ``flops``, ``bytes``, ``ideal_time_s`` (the roof), ``predicted_time_s``
        (below the roof, the achieved model), its error band ``predicted_lo_s``, ``predicted_hi_s``
        (null where the profile has none) and ``error`` (``predicted_time_s / measured_time_s − 1``);
        null where rooflax cannot price the row (module docstring).
    """
    replayed = boolean("replayed", replayed)
    if not isinstance(frame, pl.DataFrame) or "measured_time_s" not in frame.columns:
        raise SpecError("measurements: expected the frame of rooflax.read_measurements (with measured_time_s)")
    profiles = dict(hardware) if isinstance(hardware, Mapping) else {}
    given = None if hardware is None or isinstance(hardware, Mapping) else get_hardware(hardware)
    indexed = frame.with_row_index("_row")
    parts = []
    keys = ["hardware", "kind", "dtype"]
    for (name, kind, dtype), rows in indexed.group_by(keys, maintain_order=True):
        hw = given or profiles.get(name) or get_hardware(name)
        if kind in FAMILY_OF_KIND:
            if "window" in rows.columns:
                priced_rows = rows.filter(pl.col("window").fill_null(0) == 0)
            else:
                priced_rows = rows
            priced = _price_kind(kind, priced_rows, hw, dtype, replayed) if priced_rows.height else None
        else:
            priced_rows, priced = rows, _validation(rows, hw)
        if priced is None:
            continue
        parts.append(
            priced_rows.select("_row").with_columns(
                pl.lit(FAMILY_OF_KIND.get(kind), pl.String).alias("family"),
                *(
                    pl.Series(key, np.broadcast_to(value, priced_rows.height), pl.Float64)
                    for key, value in priced.items()
                ),
            )
        )
    columns = {
        "family": pl.String,
        "flops": pl.Float64,
        "bytes": pl.Float64,
        "time_s": pl.Float64,
        "achieved_time_s": pl.Float64,
        "achieved_lo_s": pl.Float64,
        "achieved_hi_s": pl.Float64,
    }
    table = pl.concat(parts) if parts else pl.DataFrame(schema={"_row": pl.UInt32, **columns})
    out = indexed.join(table, on="_row", how="left").sort("_row").drop("_row")
    out = out.with_columns(pl.col(columns).exclude("family").fill_nan(None))
    out = out.rename(
        {
            "time_s": "ideal_time_s",
            "achieved_time_s": "predicted_time_s",
            "achieved_lo_s": "predicted_lo_s",
            "achieved_hi_s": "predicted_hi_s",
        }
    )
    return out.with_columns((pl.col("predicted_time_s") / pl.col("measured_time_s") - 1).alias("error"))
