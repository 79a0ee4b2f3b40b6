"""One configuration, evaluated eagerly in exact Python arithmetic (no JAX), validated first."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from types import MappingProxyType

from rooflax.config.dtypes import DtypePolicy, get_dtype
from rooflax.config.hardware import Hardware, get_hardware
from rooflax.config.models import Model, get_model
from rooflax.cost.ops import ONCE, OpDef, Step, make_steps, model_costs
from rooflax.cost.roofline import Roof, op_row, step_totals
from rooflax.cost.shape import Shape
from rooflax.errors import SpecError, boolean, positive_int, unknown_name
from rooflax.names import BOUNDS, MLA_DECODE, PHASES

__all__ = ["Evaluation", "OpEvaluation", "evaluate"]


@dataclass(frozen=True, slots=True, kw_only=True)
class OpEvaluation:
    """One op of :func:`evaluate`: its row of the long frame (the same columns, the same values).

    Counts (``flops``, ``bytes``) are per layer (``lm_head``, ``pp_send``: once per model),
    exact Python integers where the dtype's byte sizes are whole; ``bound`` is ``memory``,
    ``compute`` or ``network`` (a collective of the ``comm`` group); ``layer`` is the op's
    layer kind (``full/dense``, ...; None for ``lm_head`` and ``pp_send``).
    """

    layer: str | None
    op: str
    group: str
    flops: float
    bytes: float
    intensity: float
    attainable_flops: float
    time_s: float
    achieved_flops: float
    achieved_time_s: float
    bound: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Evaluation:
    """What :func:`evaluate` gives: every op's row (``ops``, in layer order) and the model totals as attributes.

    The totals are the summary frame's columns for the configuration and phase (the same
    values): ``time_s`` is one step of the whole model (time to first token in prefill, time
    per output token in decode), ``tokens_per_s`` the system's, ``tokens_per_s_per_gpu`` per
    device; ``achieved_time_lo_s`` and ``achieved_time_hi_s`` bound ``achieved_time_s`` (NaN
    for a profile without measurements); the memory columns are per device.
    """

    ops: Mapping[str, OpEvaluation]
    flops: float
    bytes: float
    network_bytes: float
    intensity: float
    time_s: float
    tokens_per_s: float
    tokens_per_s_per_gpu: float
    achieved_time_s: float
    achieved_tokens_per_s: float
    achieved_time_lo_s: float
    achieved_time_hi_s: float
    weight_bytes: float
    kv_cache_bytes: float
    activation_bytes: float
    memory_bytes: float
    fits_in_memory: bool

    def totals(self) -> dict[str, float]:
        """The model totals by name (every attribute but ``ops``): the summary frame's columns, in its order."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "ops"}

    def __repr__(self) -> str:
        totals = ", ".join(f"{name}={value!r}" for name, value in self.totals().items())
        return f"Evaluation({totals}, ops=<{len(self.ops)}: {', '.join(self.ops)}>)"


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
) -> Evaluation:
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
        An :class:`Evaluation`: ``ops`` maps each op's name to its :class:`OpEvaluation`
        (the long frame's row), and the model totals are its attributes (the summary frame's
        columns). Counts are exact Python integers where the dtype's byte sizes are whole.
        Where the model's layers differ, a layer op's key in ``ops`` is ``kind:op``
        (``sliding/moe:qk``), one per kind, as the long frame has a row per kind.

    >>> r = evaluate(phase="decode", batch=1, seq_len=2048)
    >>> r.ops["qkv_proj"].flops, r.ops["qkv_proj"].bound
    (157286400, 'memory')
    >>> round(r.tokens_per_s, 2), r.fits_in_memory
    (25.38, True)
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
    hw.check_layout(tp=tp, pp=pp, ep=ep)
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
        _row_name(step, row.op, len(steps)): OpEvaluation(
            layer=None if row.op in ONCE else step.kind.name,
            op=row.op.name,
            group=row.op.group,
            flops=row.flops,
            bytes=row.bytes,
            intensity=row.intensity,
            attainable_flops=row.attainable_flops,
            time_s=row.time_s,
            achieved_flops=row.achieved_flops,
            achieved_time_s=row.achieved_time_s,
            bound=BOUNDS[row.bound],
        )
        for (step, *_), row in zip(costs, rows, strict=True)
    }
    totals = step_totals(steps, rows, memory_capacity=roof.memory, roof=roof)
    return Evaluation(ops=MappingProxyType(ops), **totals)


def _row_name(step: Step, op: OpDef[Step], kinds: int) -> str:
    """An op's key in :func:`evaluate`'s ``ops``: its name, or ``kind:name`` (``sliding/moe:qk``) for a layer
    op of a model whose layers differ (the once-per-model ops keep their names)."""
    return op.name if kinds == 1 or op in ONCE else f"{step.kind.name}:{op.name}"
