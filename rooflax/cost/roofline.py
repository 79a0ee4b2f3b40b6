"""Roofline arithmetic and model totals, on Python numbers or jnp arrays alike.

Per op: ``intensity = flops / bytes``; ``attainable = min(peak, bandwidth · intensity)``;
``time = max(flops / peak, bytes / bandwidth)``; compute-bound where
``intensity ≥ ridge = peak / bandwidth``, compared as those two quotients (each within
float64's range for every accelerator :mod:`rooflax.hardware` accepts), so a row's
``bound`` agrees with its ``intensity`` column and the ridge every chart and table shows.

Collectives (:attr:`~rooflax.cost.ops.OpDef.collective`) run under the third roof, the
interconnect: ``time = bytes / interconnect + hops · latency``, bound ``network``. One
function, :func:`op_row`, prices an op's row (the engine, :func:`rooflax.evaluate` and the
frames all take it from there), and op costs add as :class:`Cost` values.

Per configuration and phase (DESIGN.md, "Model totals"): ``L · Σ layer ops + lm_head``
for flops, bytes and time (each op at its own roof); ``tokens_per_s = B·Q / time``
(prompt tokens per second in prefill, generated tokens per second in decode, verified
draft tokens per second in verify); memory = weights + KV cache + peak activations.

Many devices (rows per device, :mod:`rooflax.ops`): ``batch`` is the whole system's, and
every figure of memory is one device's, the fullest (``fits_in_memory`` is per device).
Pipeline rules, with ``pp`` stages of ``L/pp`` layers:

- **latency** (``time_s``): a step passes every stage in turn, so
  ``time_s = L · layer + lm_head + (pp−1) · pp_send``: pipelining does not shorten it;
- **throughput** (``tokens_per_s``): ``pp`` micro-batches of ``batch`` sequences are in
  flight, one per stage, and the slowest stage (the last: its layers, the LM head and a
  send) sets the pace, so ``tokens_per_s = B·Q / (L/pp · layer + lm_head + pp_send)``;
  with ``pp = 1`` the two coincide;
- hence a device keeps the KV cache of ``pp`` micro-batches for its ``L/pp`` layers:
  ``k·2·G·d·L·B·S`` per device with ``G``, ``B`` its own share (``⌈G/tp⌉``, ``⌈B/ep⌉``).

Collectives are not overlapped with compute: their time adds. ``tokens_per_s`` is the
system's; ``tokens_per_s_per_gpu`` divides it by the ``tp·pp·ep`` devices.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import jax

from rooflax.config.dtypes import tensor_bytes
from rooflax.cost.achieved import achieved_time, pymath
from rooflax.cost.ops import LM_HEAD, ONCE, PP_SEND, OpDef, Step, StepT, cache_bytes, layer_weight_bytes, step_ops
from rooflax.names import BOUNDS, GROUPS, TERM_GROUPS

if TYPE_CHECKING:
    from rooflax.config.dtypes import DtypePolicy
    from rooflax.config.hardware import Hardware

__all__ = [
    "Cost",
    "OpRow",
    "Roof",
    "activation_bytes",
    "attainable",
    "device_weight_bytes",
    "intensity",
    "is_compute_bound",
    "kv_cache_bytes",
    "model_totals",
    "op_achieved_time",
    "op_row",
    "step_totals",
]

Num = Any


@jax.tree_util.register_dataclass
@dataclass(frozen=True, slots=True, kw_only=True)
class Roof:
    """The ceilings an op runs under (a pytree of numbers): one accelerator at one dtype.

    ``inv_peak`` and ``inv_bandwidth`` are the host's reciprocals: the engine multiplies by
    them, because XLA compiles a division by a scalar differently with and without
    sharding, and results must not depend on the device count. ``ridge`` is the host's
    ``peak / bandwidth`` (FLOP/byte), for the same reason.
    """

    peak: Num  # FLOP/s
    bandwidth: Num  # bytes/s
    memory: Num  # bytes of device memory
    inv_peak: Num
    inv_bandwidth: Num
    ridge: Num
    interconnect: Num = 0.0  # bytes/s over the GPU-to-GPU link, one way
    inv_interconnect: Num = 0.0
    latency: Num = 0.0  # seconds per hop of a collective
    # below the roof (rooflax.achieved), one entry per terms group of rooflax.names.TERM_GROUPS:
    overhead_s: Num = ()  # kernel_overhead_s
    seconds_per_flop: Num = ()  # 1 / (peak · compute_efficiency)
    seconds_per_byte: Num = ()  # 1 / (bandwidth · bandwidth_efficiency)
    corner: Num = ()  # the share of the lesser of compute and memory time added to the greater
    link_scaling: Num = 0.0  # γ: a collective over p devices moves its bytes (p/2)^γ times slower than over 2
    # the error band of the achieved time, per group: measured / predicted at p10 and p90 (NaN: none)
    band_low: Num = ()
    band_high: Num = ()
    sm_count: Num = 1
    tile_m: Num = 1
    tile_n: Num = 1
    tile_k: Num = 1

    @classmethod
    def of(cls, hardware: Hardware, dtype: DtypePolicy, phase: str | None = None, spec_k: int | None = None) -> Roof:
        """The roof of ``hardware`` for ``dtype``'s matmuls, its interconnect for collectives, and its
        achieved-performance terms (in ``phase``, where the profile has terms of its own for it).

        A verify step of one token (``spec_k = 1``) runs the decode kernels and takes the
        decode terms, so a round with no drafts is plain decode; longer verify steps take the
        verify terms (a fitted profile gives them the prefill kernel's, as serving engines
        verify drafts with their prefill attention over a cached prefix).
        """
        if phase == "verify" and spec_k == 1:
            phase = "decode"
        peak, bandwidth = hardware.peak(dtype.compute, policy=dtype.name), hardware.bandwidth_bytes_per_s
        link = hardware.interconnect_bytes_per_s
        terms = [hardware.terms(group, phase) for group in TERM_GROUPS]
        # collectives move their bytes over the link, at the comm group's own efficiency (1 unless fitted)
        in_phase = dict(hardware.phase_terms).get(phase, ()) if phase is not None else ()
        fitted = {**dict(dict(hardware.group_terms).get("comm", ())), **dict(dict(in_phase).get("comm", ()))}
        link_efficiency = fitted.get("bandwidth_efficiency", 1.0)
        per_byte = [
            1 / (link * link_efficiency) if group == "comm" else 1 / (bandwidth * t["bandwidth_efficiency"])
            for group, t in zip(TERM_GROUPS, terms, strict=True)
        ]
        return cls(
            peak=peak,
            bandwidth=bandwidth,
            memory=hardware.memory_bytes,
            inv_peak=1 / peak,
            inv_bandwidth=1 / bandwidth,
            ridge=peak / bandwidth,
            interconnect=link,
            inv_interconnect=1 / link,
            latency=hardware.interconnect_latency_s,
            overhead_s=tuple(t["kernel_overhead_s"] for t in terms),
            seconds_per_flop=tuple(1 / (peak * t["compute_efficiency"]) for t in terms),
            seconds_per_byte=tuple(per_byte),
            corner=tuple(t["corner"] for t in terms),
            link_scaling=terms[GROUPS.index("comm")]["link_scaling"],
            band_low=_band(terms, "band_low"),
            band_high=_band(terms, "band_high"),
            sm_count=hardware.sm_count,
            tile_m=hardware.tile_m,
            tile_n=hardware.tile_n,
            tile_k=hardware.tile_k,
        )


def _band(terms: list[dict[str, float]], key: str) -> tuple[float, ...]:
    """Each group's band factor: its fitted one; 1 for a group no measurement covers (elementwise ops), so
    the band spans the measured families' error; NaN everywhere on a profile with no band at all."""
    if all(math.isnan(t[key]) for t in terms):
        return tuple(math.nan for _ in terms)
    return tuple(1.0 if math.isnan(t[key]) else t[key] for t in terms)


def op_achieved_time(
    op: OpDef[StepT], step: StepT, flops: Num, bytes_: Num, roof: Roof, *, xp: Any = pymath, latency_s: Num = None
) -> Num:
    """Predicted seconds of ``op`` on a real device, with the terms of the op's group (:attr:`OpDef.terms_group`).

    A product or an elementwise op: :func:`rooflax.cost.achieved.achieved_time`. A collective
    (:attr:`~rooflax.cost.ops.OpDef.collective`): the kernel overhead plus its bytes over the
    link at the ``comm`` group's bandwidth efficiency (1, the ideal link, unless a profile
    fitted it), ``(p/2)^γ`` times slower for a tensor- or expert-parallel collective over ``p``
    devices (``γ``: the roof's ``link_scaling``, 0 unless fitted: NVLink's switch gives every GPU
    its own links, while on PCIe every added GPU shares the host's, so a ring's bus bandwidth
    falls with ``p``: NVIDIA's nccl-tests *Performance* notes on bus bandwidth), plus one
    latency a hop. ``latency_s``: the hops' latency in seconds when the
    caller has it (the engine computes it on the host); ``xp``: the numeric backend
    (:data:`~rooflax.cost.achieved.pymath`, ``numpy`` or ``jax.numpy``).
    """
    g = TERM_GROUPS.index(op.terms_group)
    if op.hops is not None:  # a collective
        moved = bytes_ * roof.seconds_per_byte[g]
        if op.only in ("tp", "ep") and not (isinstance(roof.link_scaling, float) and roof.link_scaling == 0):
            moved = moved * (getattr(step, op.only) / 2) ** roof.link_scaling
        return roof.overhead_s[g] + moved + _latency(op.hops, step, roof, latency_s)
    return achieved_time(
        flops,
        bytes_,
        op.gemms(step),
        seconds_per_flop=roof.seconds_per_flop[g],
        seconds_per_byte=roof.seconds_per_byte[g],
        kernel_overhead_s=roof.overhead_s[g],
        corner=roof.corner[g],
        sm_count=roof.sm_count,
        tile_m=roof.tile_m,
        tile_n=roof.tile_n,
        tile_k=roof.tile_k,
        xp=xp,
    )


def _latency(hops: Callable[[StepT], Num], step: StepT, roof: Roof, latency_s: Num) -> Num:
    """A collective's link latency in seconds: ``hops · latency`` (``hops``: its :attr:`OpDef.hops`), unless the
    caller gives it."""
    return hops(step) * roof.latency if latency_s is None else latency_s


def intensity(flops: Num, bytes_: Num) -> Num:
    """Operational intensity in FLOP/byte."""
    return flops / bytes_


def attainable(flops: Num, bytes_: Num, peak: Num, bandwidth: Num, *, xp: Any = pymath) -> Num:
    """Attainable FLOP/s: ``min(peak, bandwidth · intensity)``."""
    return xp.minimum(peak, bandwidth * (flops / bytes_))


def is_compute_bound(flops: Num, bytes_: Num, ridge: Num) -> Num:
    """True where the op sits at or right of the ridge: ``intensity ≥ ridge`` (``ridge = peak / bandwidth``).

    Compared as quotients, never as the products ``flops · bandwidth`` and ``peak · bytes``,
    which overflow float64 for large figures: the intensity is the frame's own column, and
    a correctly rounded quotient never decreases as the exact one grows, so the bound
    flips once along any axis on which the intensity rises.
    """
    return intensity(flops, bytes_) >= ridge


@dataclass(frozen=True, slots=True, kw_only=True)
class Cost:
    """What an op (or a sum of ops) costs, adding field by field (as ``jax.experimental.roofline``'s result does).

    ``bytes`` are memory's, ``network_bytes`` the interconnect's (a collective has only
    those); ``time_s`` and ``achieved_time_s`` are the ideal and predicted seconds, and
    ``achieved_lo_s``, ``achieved_hi_s`` the predicted seconds' error band (NaN where the
    profile has none). The fields are Python numbers or arrays alike; a sum starts from
    ``Cost()`` (all zero).

    >>> Cost(flops=2, bytes=3, time_s=1.0) + Cost(network_bytes=5, time_s=0.5)
    Cost(flops=2, bytes=3, network_bytes=5, time_s=1.5, achieved_time_s=0, achieved_lo_s=0, achieved_hi_s=0)
    """

    flops: Num = 0
    bytes: Num = 0
    network_bytes: Num = 0
    time_s: Num = 0
    achieved_time_s: Num = 0
    achieved_lo_s: Num = 0
    achieved_hi_s: Num = 0

    def __add__(self, other: Cost) -> Cost:
        if not isinstance(other, Cost):
            return NotImplemented
        return Cost(
            flops=self.flops + other.flops,
            bytes=self.bytes + other.bytes,
            network_bytes=self.network_bytes + other.network_bytes,
            time_s=self.time_s + other.time_s,
            achieved_time_s=self.achieved_time_s + other.achieved_time_s,
            achieved_lo_s=self.achieved_lo_s + other.achieved_lo_s,
            achieved_hi_s=self.achieved_hi_s + other.achieved_hi_s,
        )


_MEMORY, _COMPUTE, _NETWORK = range(len(BOUNDS))


@dataclass(frozen=True, slots=True, kw_only=True)
class OpRow:
    """One op's row of the long frame: its counts, its place under the roof and below it.

    ``bound`` is an index into :data:`rooflax.names.BOUNDS` (``memory``, ``compute``, ``network``).
    """

    op: OpDef[Step]
    flops: Num
    bytes: Num
    intensity: Num
    attainable_flops: Num
    time_s: Num
    achieved_flops: Num
    achieved_time_s: Num
    bound: Num

    @property
    def cost(self) -> Cost:
        """The row as a :class:`Cost`: a collective's bytes go to the interconnect (no band: :func:`step_totals`)."""
        if self.op.collective:
            return Cost(
                flops=self.flops, network_bytes=self.bytes, time_s=self.time_s, achieved_time_s=self.achieved_time_s
            )
        return Cost(flops=self.flops, bytes=self.bytes, time_s=self.time_s, achieved_time_s=self.achieved_time_s)


def op_row(
    op: OpDef[Step], step: Step, flops: Num, bytes_: Num, roof: Roof, *, xp: Any = pymath, latency_s: Num = None
) -> OpRow:
    """The one place an op's row is priced: the engine, :func:`rooflax.evaluate` and the frames all use it.

    An op runs under the memory roof: ``time = max(flops / peak, bytes / bandwidth)``, bound
    ``compute`` where ``intensity ≥ ridge``, else ``memory``. A collective
    (:attr:`~rooflax.cost.ops.OpDef.collective`) runs under the interconnect:
    ``time = bytes / interconnect + hops · latency``, bound ``network``. Divisions by the roof
    are products with its reciprocals (:class:`Roof`), so every caller gets the same bits.

    Args:
        op, step: the op and the step it runs in.
        flops, bytes_: the op's counts (:func:`rooflax.cost.ops.op_costs`).
        roof: the ceilings (:meth:`Roof.of`).
        xp: the numeric backend: :data:`~rooflax.cost.achieved.pymath` for Python numbers,
            ``numpy`` or ``jax.numpy`` for arrays.
        latency_s: a collective's link latency in seconds when the caller has it (the engine
            multiplies it on the host); by default ``op.hops(step) · roof.latency``.

    >>> from rooflax import get_dtype, get_hardware, get_model
    >>> from rooflax.cost.ops import make_step, op_costs
    >>> from rooflax.cost.shape import Shape
    >>> step = make_step(Shape.of(get_model("llama-13b"), get_dtype("fp16"), phase="decode", batch=1, seq_len=2048))
    >>> op, flops, bytes_ = op_costs(step)[1]
    >>> row = op_row(op, step, flops, bytes_, Roof.of(get_hardware("a40"), get_dtype("fp16")))
    >>> op.name, row.flops, BOUNDS[row.bound]
    ('qkv_proj', 157286400, 'memory')
    """
    achieved = op_achieved_time(op, step, flops, bytes_, roof, xp=xp, latency_s=latency_s)
    if op.hops is not None:  # a collective; its flops are 0: the max keeps the expression (and the engine's bits)
        link_s = _latency(op.hops, step, roof, latency_s)  # of the memory roof
        time_s = xp.maximum(flops * roof.inv_peak, bytes_ * roof.inv_interconnect) + link_s
        bandwidth, bound = roof.interconnect, _NETWORK
    else:
        time_s = xp.maximum(flops * roof.inv_peak, bytes_ * roof.inv_bandwidth)
        bandwidth = roof.bandwidth
        bound = xp.where(is_compute_bound(flops, bytes_, roof.ridge), _COMPUTE, _MEMORY)
    return OpRow(
        op=op,
        flops=flops,
        bytes=bytes_,
        intensity=intensity(flops, bytes_),
        attainable_flops=attainable(flops, bytes_, roof.peak, bandwidth, xp=xp),
        time_s=time_s,
        achieved_flops=flops / achieved,
        achieved_time_s=achieved,
        bound=bound,
    )


def _fullest_stage(steps: Sequence[Step], per_layer: Sequence[Num], xp: Any) -> Num:
    """The most of ``per_layer`` (one value per kind) any pipeline stage's layers sum to (:attr:`Step.stages`)."""
    totals = [
        sum((n * value for n, value in zip(stage[1:], per_layer[1:], strict=True)), stage[0] * per_layer[0])
        for stage in steps[0].stages
    ]
    fullest = totals[0]
    for total in totals[1:]:
        fullest = xp.maximum(fullest, total)
    return fullest


def device_weight_bytes(steps: Sequence[Step], *, xp: Any = pymath) -> Num:
    """Weights one device holds: the fullest pipeline stage's layers (:func:`~rooflax.cost.ops.layer_weight_bytes`,
    every expert counted) and the vocabulary (``⌈V/tp⌉ × h``; a pipeline end holds one matrix) and final norm.

    Biases (``attention_bias``, ``mlp_bias``) are counted in :attr:`rooflax.Model.params`, not here.
    """
    s = steps[0]
    copies = 1 + (s.pp == 1) * (not s.tied_embeddings)
    layers = _fullest_stage(steps, [layer_weight_bytes(step) for step in steps], xp)
    return layers + copies * tensor_bytes(s.w, s.vocab, s.hidden) + tensor_bytes(s.w, 1, s.hidden)


def kv_cache_bytes(steps: Sequence[Step], *, xp: Any = pymath) -> Num:
    """KV cache held after the step: each layer's cache (:func:`~rooflax.cost.ops.cache_bytes`: ``2·G`` vectors
    of ``d``, or the latent and the rotary key, a token) of ``B`` sequences of its tokens (``S``, or
    ``min(S, W)`` in a sliding layer), over the layers; with ``pp`` stages a device holds ``pp``
    micro-batches of its stage's layers (the fullest stage), ``k·2·G·d·L·B·S`` when the layers are alike
    and the format has no block scales."""
    s = steps[0]
    if len(steps) == 1:
        return cache_bytes(s, s.batch * s.cache_tokens) * s.layers
    per_layer = [cache_bytes(step, step.batch * step.cache_tokens) for step in steps]
    return s.pp * _fullest_stage(steps, per_layer, xp)


def activation_bytes(s: Step, *, xp: Any = pymath) -> Num:
    """Peak live activations of one layer (layers run one after another), in bytes: each tensor a row of
    its width per token in the activation format (:func:`~rooflax.config.dtypes.tensor_bytes`).

    The largest of: the residual stream plus the QKV output, ``M·(h + (H+2G)d)``; the
    residual stream plus scores and probabilities, ``M·h + 2·B·H·P`` (``M·h + B·H·Q·d``
    fused); the residual stream plus the MLP's inner tensors, ``M·(h + 3I)`` gated
    (``M·(h + 2I)`` not); with experts, the residual stream plus their inputs and inner
    tensors, ``M·h + R·(h + 3·I_e)`` for the ``R`` routed pairs; and the logits, ``B·V``
    (``B·K·V`` in verify); times ``a``. Every size is the device's own. With latent
    attention the QKV output is the queries, ``M·(h + H(d_n + d_r))``, plus (naive) the
    up-projected keys and values of the whole cache, ``B·T·H(d_n + d_v)``; the fused
    output ``B·H·Q`` times the value width (``d_v`` naive, ``r_kv`` absorbed).
    """
    m, h, a = s.tokens, s.hidden, s.a

    def acts(tokens: Num, width: Num) -> Num:  # rows of ``width`` activations, each blocked along it
        return tensor_bytes(a, 1, width, tokens)

    stream = acts(m, h)
    if s.mla:
        qkv = stream + acts(m, s.heads * (s.qk_nope_head_dim + s.qk_rope_head_dim))
        if not s.absorbed:
            qkv = qkv + acts(s.batch * s.attended, s.heads * (s.qk_nope_head_dim + s.v_head_dim))
        out_width = s.kv_lora_rank if s.absorbed else s.v_head_dim
    else:
        qkv = stream + acts(m, (s.heads + 2 * s.kv_heads) * s.head_dim)
        out_width = s.head_dim
    if s.fused_attention:
        attn = stream + acts(s.batch * s.new, s.heads * out_width)
    else:
        attn = stream + 2 * tensor_bytes(a, s.batch * s.heads, s.pairs)
    mlp = stream + (3 if s.gated_mlp else 2) * acts(m, s.intermediate)
    if s.moe:
        mlp = xp.maximum(mlp, stream + acts(s.routed, h) + 3 * acts(s.routed, s.expert_width))
    logits = acts(s.logits_tokens, s.vocab)
    return xp.maximum(xp.maximum(qkv, attn), xp.maximum(mlp, logits))


def _over_layers(steps: Sequence[Step], layers: Sequence[Cost], name: str, counts: Sequence[Num] | None = None) -> Num:
    """``Σ count · layer.name`` over the layer kinds (``counts``: each kind's layers, default the model's)."""
    counts = [step.count for step in steps] if counts is None else counts
    total = counts[0] * getattr(layers[0], name)
    for count, layer in zip(counts[1:], layers[1:], strict=True):
        total = total + count * getattr(layer, name)
    return total


def model_totals(
    steps: Sequence[Step],
    *,
    layers: Sequence[Cost],
    head: Cost,
    memory_capacity: Num,
    xp: Any = pymath,
    send: Cost | None = None,
) -> dict[str, Num]:
    """Totals of one configuration and phase (DESIGN.md, "Model totals"; pipeline rules above).

    Args:
        steps: the step of each layer kind (:func:`rooflax.cost.ops.make_steps`; layers, layout and
            structure included).
        layers: one layer's cost for each kind, every op's (collectives included) summed; the model's
            are each kind's times its layers, summed.
        head: the cost of ``lm_head`` (once per model).
        memory_capacity: device memory in bytes, for ``fits_in_memory``.
        xp: the numeric backend (:data:`~rooflax.cost.achieved.pymath`, ``numpy`` or ``jax.numpy``).
        send: the cost of ``pp_send``, with pipeline stages.

    Returns:
        ``flops``, ``bytes``, ``network_bytes``, ``intensity``, ``time_s`` (latency),
        ``tokens_per_s`` (``B·Q`` over the slowest stage's time: of each distinct stage, its
        layers, a send, and the LM head on the last), ``tokens_per_s_per_gpu``,
        ``achieved_time_s`` and ``achieved_tokens_per_s`` (the same below the roof),
        ``achieved_time_lo_s`` and ``achieved_time_hi_s`` (its error band, every op at the
        p10 and the p90 of its group's measured / predicted ratio: errors taken as fully
        correlated across ops, so the band is wide; NaN without measurements),
        and per device ``weight_bytes`` (each weight tensor held, in its format), ``kv_cache_bytes``,
        ``activation_bytes``, ``memory_bytes`` (their sum) and ``fits_in_memory``; where the
        layers differ, the weights and the KV cache are each the fullest stage's.
    """
    s = steps[0]
    flops = _over_layers(steps, layers, "flops") + head.flops
    bytes_ = _over_layers(steps, layers, "bytes") + head.bytes
    time_s = _over_layers(steps, layers, "time_s") + head.time_s
    achieved_s = _over_layers(steps, layers, "achieved_time_s") + head.achieved_time_s
    low_s = _over_layers(steps, layers, "achieved_lo_s") + head.achieved_lo_s
    high_s = _over_layers(steps, layers, "achieved_hi_s") + head.achieved_hi_s
    network = _over_layers(steps, layers, "network_bytes")
    stage_s, achieved_stage_s = time_s, achieved_s
    if send is not None:
        network = network + (s.pp - 1) * send.network_bytes
        stage_s = achieved_stage_s = None
        for j, stage in enumerate(s.stages):  # the last stage first: it holds the LM head
            own = _over_layers(steps, layers, "time_s", stage)
            own_achieved = _over_layers(steps, layers, "achieved_time_s", stage)
            if j == 0:
                own, own_achieved = own + head.time_s, own_achieved + head.achieved_time_s
            own, own_achieved = own + send.time_s, own_achieved + send.achieved_time_s
            stage_s = own if stage_s is None else xp.maximum(stage_s, own)
            achieved_stage_s = own_achieved if achieved_stage_s is None else xp.maximum(achieved_stage_s, own_achieved)
        time_s = time_s + (s.pp - 1) * send.time_s
        achieved_s = achieved_s + (s.pp - 1) * send.achieved_time_s
        low_s, high_s = low_s + (s.pp - 1) * send.achieved_lo_s, high_s + (s.pp - 1) * send.achieved_hi_s
    weights = device_weight_bytes(steps, xp=xp)
    kv = kv_cache_bytes(steps, xp=xp)
    acts = activation_bytes(s, xp=xp)
    for step in steps[1:]:
        acts = xp.maximum(acts, activation_bytes(step, xp=xp))
    memory = weights + kv + acts
    tokens_per_s = s.system_tokens / stage_s
    return {
        "flops": flops,
        "bytes": bytes_,
        "network_bytes": network,
        "intensity": flops / bytes_,
        "time_s": time_s,
        "tokens_per_s": tokens_per_s,
        "tokens_per_s_per_gpu": tokens_per_s / (s.tp * s.pp * s.ep),
        "achieved_time_s": achieved_s,
        "achieved_tokens_per_s": s.system_tokens / achieved_stage_s,
        "achieved_time_lo_s": low_s,
        "achieved_time_hi_s": high_s,
        "weight_bytes": weights,
        "kv_cache_bytes": kv,
        "activation_bytes": acts,
        "memory_bytes": memory,
        "fits_in_memory": memory <= memory_capacity,
    }


def step_totals(
    steps: Sequence[Step], rows: Sequence[OpRow], *, memory_capacity: Num, roof: Roof, xp: Any = pymath
) -> dict[str, Num]:
    """:func:`model_totals` from every op's row (:func:`op_row`), in :func:`rooflax.cost.ops.model_costs` order.

    The one place that splits a step's ops: each layer kind's ops (their costs summed op by op,
    in order: a collective's bytes go to the interconnect, the others' to memory),
    ``lm_head`` once per model, and ``pp_send`` between pipeline stages. The error band
    multiplies each op group's summed achieved time by the group's band factors (``roof``),
    once per group rather than per op. :func:`rooflax.evaluate` passes Python numbers, the
    engine traced scalars.
    """
    layers, start = [], 0
    for step in steps:
        count = sum(1 for op in step_ops(step) if op not in ONCE)
        layers.append(_banded(rows[start : start + count], roof, xp))
        start += count
    head = _banded([row for row in rows[start:] if row.op.name == LM_HEAD.name], roof, xp)
    sends = [row for row in rows[start:] if row.op.name == PP_SEND.name]
    return model_totals(
        steps,
        layers=layers,
        head=head,
        memory_capacity=memory_capacity,
        xp=xp,
        send=_banded(sends, roof, xp) if sends else None,
    )


def _banded(rows: Sequence[OpRow], roof: Roof, xp: Any) -> Cost:
    """The rows' costs summed op by op, with the band: each group's achieved time at its factors."""
    total = sum((row.cost for row in rows), Cost())
    by_group: dict[int, Num] = {}
    for row in rows:
        g = TERM_GROUPS.index(row.op.terms_group)
        by_group[g] = by_group[g] + row.achieved_time_s if g in by_group else row.achieved_time_s
    # each product goes through a max before it is added, so no compiler contracts it into a multiply-add
    # (which it does on one device count and not another: results must not depend on the devices)
    low = sum(xp.maximum(time * roof.band_low[g], 0.0) for g, time in by_group.items())
    high = sum(xp.maximum(time * roof.band_high[g], 0.0) for g, time in by_group.items())
    return replace(total, achieved_lo_s=low, achieved_hi_s=high)
