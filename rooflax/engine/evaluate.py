"""One configuration, evaluated eagerly in exact Python arithmetic (no JAX), validated first."""

from __future__ import annotations

from typing import Any

from rooflax.config.dtypes import DtypePolicy, get_dtype
from rooflax.config.hardware import Hardware, get_hardware
from rooflax.config.models import Model, get_model
from rooflax.cost.ops import ONCE, OpDef, Step, make_steps, model_costs
from rooflax.cost.roofline import Roof, op_row, step_totals
from rooflax.cost.shape import Shape
from rooflax.errors import SpecError, boolean, positive_int, unknown_name
from rooflax.names import BOUNDS, MLA_DECODE, PHASES

__all__ = ["evaluate"]


def evaluate(
    *,
    model: str | Model = "llama-13b",
    hardware: str | Hardware = "a40",
    dtype: str | DtypePolicy = "fp16",
    kv_dtype: str | None = None,
    phase: str = "decode",
    batch: int,
    seq_len: int,
    spec_k: int | None = None,
    hidden: int | None = None,
    fused_attention: bool = False,
    causal: bool = False,
    tp: int = 1,
    pp: int = 1,
    ep: int = 1,
    mla_decode: str = "absorbed",
) -> dict[str, dict[str, Any]]:
    """Costs of every op, and the model totals, for one configuration and phase.

    ``tp``, ``pp`` and ``ep`` are the parallel degrees (:mod:`rooflax.ops`): rows are per
    device, collectives are ops of the ``comm`` group with ``bound`` ``"network"``.

    Args:
        model: a preset name or a :class:`rooflax.Model`.
        hardware: a preset name or a :class:`rooflax.Hardware`.
        dtype: a policy name or a :class:`rooflax.DtypePolicy`.
        kv_dtype: the KV cache's dtype when it differs from the activations' (``fp8``, ...).
        phase: ``prefill``, ``decode`` or ``verify``.
        batch: sequences in the batch, ``B``.
        seq_len: sequence length after the step, ``S``.
        spec_k: tokens verified per sequence, ``K`` (verify only).
        hidden: the model width, scaled as Llama scales (None: the model's own).
        fused_attention: one fused ``attention`` op instead of ``qk``, ``softmax``, ``pv``.
        causal: count only the causal scores (default: the full ``Q×T`` block).
        tp, pp, ep: tensor-, pipeline- and expert-parallel degrees (1: none).
        mla_decode: how a model with multi-head latent attention runs decode and verify,
            ``"absorbed"`` or ``"naive"`` (:data:`rooflax.names.MLA_DECODE`; prefill is always
            naive); other models ignore it.

    Returns:
        ``{"ops": {op: {"layer", "group", "flops", "bytes", "intensity", "attainable_flops",
        "time_s", "achieved_flops", "achieved_time_s", "bound"}}, "totals": {"flops", "bytes",
        "network_bytes", "time_s", "tokens_per_s", "tokens_per_s_per_gpu", "achieved_time_s",
        "achieved_tokens_per_s", "weight_bytes", "kv_cache_bytes", "activation_bytes",
        "memory_bytes", "fits_in_memory"}}``. Counts are exact Python integers where the
        dtype's byte sizes are whole. ``layer`` is the op's layer kind (``full/dense``, ...;
        None for ``lm_head`` and ``pp_send``); where the model's layers differ, a layer op's key
        is ``kind:op`` (``sliding/moe:qk``), one per kind, as the long frame has a row per kind.

    >>> r = evaluate(phase="decode", batch=1, seq_len=2048)
    >>> r["ops"]["qkv_proj"]["flops"]
    157286400
    """
    fused_attention, causal = boolean("fused_attention", fused_attention), boolean("causal", causal)
    m, hw, dt = get_model(model), get_hardware(hardware), get_dtype(dtype, kv_dtype)
    if phase not in PHASES:
        raise unknown_name("phase", phase, PHASES)
    if mla_decode not in MLA_DECODE:
        raise unknown_name("mla_decode", mla_decode, MLA_DECODE)
    batch, seq_len = positive_int("batch", batch), positive_int("seq_len", seq_len)
    if phase == "verify":
        spec_k = positive_int("spec_k", spec_k)
        if seq_len < spec_k:
            raise SpecError(f"seq_len: verify needs seq_len ≥ spec_k, got seq_len={seq_len} < spec_k={spec_k}")
    elif spec_k is not None:
        raise SpecError(f"spec_k: only meaningful in the verify phase, got spec_k={spec_k!r} with phase={phase!r}")
    m = m.at_hidden(m.hidden if hidden is None else hidden)
    tp, pp, ep = (positive_int(name, value) for name, value in (("tp", tp), ("pp", pp), ("ep", ep)))
    m.check_layout(tp=tp, pp=pp, ep=ep)
    steps = make_steps(
        Shape.of(
            m,
            dt,
            phase=phase,
            batch=batch,
            seq_len=seq_len,
            spec_k=spec_k,
            fused_attention=fused_attention,
            causal=causal,
            tp=tp,
            pp=pp,
            ep=ep,
            mla_decode=mla_decode,
        )
    )
    roof = Roof.of(hw, dt, phase, spec_k)
    costs = model_costs(steps)
    rows = [op_row(op, step, flops, bytes_, roof) for step, op, flops, bytes_ in costs]
    ops = {
        _row_name(step, row.op, len(steps)): {
            "layer": None if row.op in ONCE else step.kind.name,
            "group": row.op.group,
            "flops": row.flops,
            "bytes": row.bytes,
            "intensity": row.intensity,
            "attainable_flops": row.attainable_flops,
            "time_s": row.time_s,
            "achieved_flops": row.achieved_flops,
            "achieved_time_s": row.achieved_time_s,
            "bound": BOUNDS[row.bound],
        }
        for (step, *_), row in zip(costs, rows, strict=True)
    }
    return {"ops": ops, "totals": step_totals(steps, rows, memory_capacity=roof.memory, roof=roof)}


def _row_name(step: Step, op: OpDef[Step], kinds: int) -> str:
    """An op's key in :func:`evaluate`'s ``ops``: its name, or ``kind:name`` (``sliding/moe:qk``) for a layer
    op of a model whose layers differ (the once-per-model ops keep their names)."""
    return op.name if kinds == 1 or op in ONCE else f"{step.kind.name}:{op.name}"
