"""What each operation of a decoder layer costs: the counting contract of DESIGN.md.

A configuration is a :class:`rooflax.cost.shape.Shape`; :func:`make_step` (the one place
this happens) turns it into a :class:`Step`, the symbols below, and :func:`op_costs`
prices every op of the step's layer. Every function here is plain arithmetic, so it
runs unchanged on Python numbers (exact integers), numpy arrays and traced jnp scalars
under ``jax.vmap``/``jax.jit``; there is no Python ``if`` on a traced value. Structural
choices (gated MLP, fused attention) are static and pick *which* ops exist.

Symbols: ``B`` batch, ``S`` seq_len (after the step), ``Q`` new tokens per sequence,
``T`` tokens attended, ``P`` scored query-key pairs per sequence and head (``Q·T``
dense; ``Q·(T-Q) + Q(Q+1)/2`` causal), ``M = B·Q``, ``h`` hidden, ``H`` query heads,
``G`` KV heads, ``d`` head dim, ``I`` intermediate, ``V`` vocab, and ``w``, ``a``, ``k``
the bytes per weight, activation and KV-cache element. In a block-scaled format a term such
as ``w·K·N`` is that tensor's exact bytes, scales and partial blocks included: every byte
count below goes through :func:`rooflax.config.dtypes.tensor_bytes` (which dimension of each
tensor is blocked: :mod:`rooflax.config.dtypes`).

To add an operation, write its cost function (and, for a matrix product, the function
giving its products' shapes) and add one :class:`OpDef` to
:data:`_LAYER_OPS` (or give the model a new structural flag); the engine, frames and
charts pick it up from there.

Parallelism (rows are per device; DESIGN.md, "Many devices"). With ``tp``-way tensor
parallelism (Megatron-style) qkv, gate and up are split by columns and o and down by
rows: a device holds ``H/tp`` query heads, ``⌈G/tp⌉`` KV heads (one, replicated, when
``tp`` exceeds ``G``), ``I/tp`` of the MLP and ``⌈V/tp⌉`` of the vocabulary; norms and
residuals run on the whole hidden state everywhere; two all-reduces per layer
(``attn_allreduce`` after o, ``mlp_allreduce`` after down) sum the partial outputs. In a
block-scaled format each device quantizes its own shard: a row-split weight (o, down) is
blocked along its ``K/tp`` columns, a column-split one has ``N/tp`` rows, each with its own
partial edge blocks.
With ``pp`` pipeline stages a device runs ``L/pp`` layers and passes its activations on
(``pp_send``, once per stage boundary). With ``ep``-way expert parallelism the system
is ``ep`` replicas of the ``tp × pp`` layout; the batch is spread over them (a device
runs ``⌈B/ep⌉`` sequences), each holds ``E/ep`` experts, and tokens travel to their
experts and back by all-to-all (``moe_dispatch``, ``moe_combine``). The system has
``tp·pp·ep`` devices.

Collectives are ops of the ``comm`` group with no FLOPs whose bytes cross the
interconnect: a ring all-reduce over ``p`` devices sends ``2(p−1)/p`` of the message
and waits ``2(p−1)`` link latencies; an all-to-all sends ``(p−1)/p`` of its message and
waits ``p−1`` latencies; a pipeline send moves the message once, one latency. Each
op's :attr:`OpDef.hops` gives its latency count; an op is a collective exactly when it has
``hops`` (:attr:`OpDef.collective`), and then its group is ``comm``.

Mixture of experts: ``router`` (``h → E``) and the routed experts' ``expert_gate``,
``expert_up``, ``expert_silu_mul`` and ``expert_down`` take the place of the dense MLP
(which remains, as the shared experts, when the model has them). A device's experts
process ``R = B·Q·k/ep`` token-expert pairs (the whole system's tokens, each sent to
``k`` experts, spread evenly over the ``ep`` replicas), ``B·Q·k/E`` per expert. Their
weights are read only for the experts touched. The router is taken to spread tokens
evenly over ``E_eff`` of the ``E`` experts (the model's ``routing_experts``, ``k ≤ E_eff
≤ E``; ``E_eff = E`` is uniform routing), each token choosing ``k`` distinct ones, and
tokens independently: an expert among them is missed by a token with probability
``1 − k/E_eff``, so ``T = B·Q`` tokens touch ``E_eff·(1 − (1 − k/E_eff)^T)`` distinct
experts in expectation (``k`` for one token, at most ``E_eff``). Those experts are
spread evenly over the ``ep`` replicas, so a device reads ``(E_eff/ep)·(1 − (1 −
k/E_eff)^T)`` experts' weights. :mod:`rooflax.models` says how to measure ``E_eff``
from a router histogram (``1/Σ p_i²``) and where the rule under-counts.

Multi-head latent attention (MLA; DeepSeek-V2, arXiv 2405.04434, §2.1; DeepSeek-V3, arXiv
2412.19437, §2.1.1) takes the place of ``qkv_proj``, ``rotary``, ``qk``, ``softmax``,
``pv`` (or ``attention``) and ``o_proj`` when the model has it. Symbols: ``r_q`` the query
latent (``q_lora_rank``), ``r_kv`` the cached latent (``kv_lora_rank``), ``d_n`` and ``d_r``
the query-key head width without and with rotary embedding (``qk_nope_head_dim``,
``qk_rope_head_dim``), ``d_v`` the value head width. The cache holds, per token and layer,
the normalized latent ``c`` (``r_kv`` elements) and the rotary key ``k_r`` (``d_r``, shared
by every head): ``k·(r_kv + d_r)`` bytes. A linear op is as above.

=================  ==============================  ==================================================================
op                 flops                           bytes
=================  ==============================  ==================================================================
q_down             linear ``h → r_q``              linear
q_norm             ``4·M·r_q``                     ``2a·M·r_q + a·r_q``
q_up               linear ``r_q → H(d_n + d_r)``   linear
kv_down            linear ``h → r_kv + d_r``       linear, the output written to the cache at ``k``
kv_norm            ``4·M·r_kv``                    ``2k·M·r_kv + a·r_kv`` (in the cache)
rotary             ``3·M·(H + 1)·d_r``             ``2a·M·H·d_r + 2k·M·d_r + a·Q·d_r``
o_proj             linear ``H·d_v → h``            linear
=================  ==============================  ==================================================================

Naive (every prefill; decode and verify with ``mla_decode = "naive"``): the whole cached
latent of ``B·T`` tokens is up-projected to per-head keys and values, then attention is
multi-head with query-key width ``d_n + d_r`` and value width ``d_v``:

=================  ==============================  ==================================================================
kv_up              ``2·B·T·r_kv·H(d_n + d_v)``     ``w·r_kv·H(d_n + d_v) + k·B·T·r_kv + a·B·T·H(d_n + d_v)``
qk                 ``2·B·H·P·(d_n + d_r)``         ``a·B·H·Q(d_n + d_r) + a·B·H·T·d_n + k·B·T·d_r + a·B·H·P``
softmax            ``5·B·H·P``                     ``2a·B·H·P``
pv                 ``2·B·H·P·d_v``                 ``a·B·H·P + a·B·H·T·d_v + a·B·H·Q·d_v``
attention, fused   the three summed                ``a·B·H·Q(d_n + d_r + d_v) + a·B·H·T(d_n + d_v) + k·B·T·d_r``
=================  ==============================  ==================================================================

Weight-absorbed (decode and verify with ``mla_decode = "absorbed"``, the default, as
FlashMLA runs them): ``W_UK`` (the key half of ``kv_up``) is folded into the query and
``W_UV`` (its value half) into the output, so every head attends over the cache itself,
multi-query attention with query-key width ``r_kv + d_r`` and value width ``r_kv``:

=================  ==============================  ==================================================================
q_absorb           ``2·M·H·d_n·r_kv``              ``w·H·d_n·r_kv + a·M·H·d_n + a·M·H·r_kv``
qk                 ``2·B·H·P·(r_kv + d_r)``        ``a·B·H·Q(r_kv + d_r) + k·B·T(r_kv + d_r) + a·B·H·P``
softmax            ``5·B·H·P``                     ``2a·B·H·P``
pv                 ``2·B·H·P·r_kv``                ``a·B·H·P + k·B·T·r_kv + a·B·H·Q·r_kv``
attention, fused   the three summed                ``a·B·H·Q(2·r_kv + d_r) + k·B·T(r_kv + d_r)``, the latent read once
o_absorb           ``2·M·H·r_kv·d_v``              ``w·H·r_kv·d_v + a·M·H·r_kv + a·M·H·d_v``
=================  ==============================  ==================================================================

Absorbing trades ``kv_up``'s ``B·T`` rows (growing with the context) for two per-head
products on the ``M`` new tokens, and scores ``(r_kv + d_r)/(d_n + d_r)`` times wider
(3× for DeepSeek-V3); so it wins in decode and loses in prefill, which always runs naive.
DeepSeek's own reference code (``inference/model.py``, ``attn_impl = "naive"``) caches
the up-projected keys and values instead of the latent; that layout is not modelled:
the cache here always holds the latent. Under ``tp`` a device holds ``H/tp`` heads of
``q_up``, ``kv_up``, ``q_absorb``, ``o_absorb`` and ``o_proj``, while ``q_down``,
``kv_down``, the norms and the latent cache are replicated (every head reads the whole
latent).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, NamedTuple, TypeVar

from rooflax.config.dtypes import tensor_bytes
from rooflax.config.models import LayerKind
from rooflax.cost.achieved import Gemm, ceil_div, floor_div
from rooflax.cost.shape import Shape
from rooflax.names import LAYOUT

__all__ = [
    "LM_HEAD",
    "ONCE",
    "OP_NAMES",
    "PP_SEND",
    "TERMS_GROUP",
    "OpDef",
    "Step",
    "cache_bytes",
    "layer_ops",
    "layer_weight_bytes",
    "lm_head",
    "make_step",
    "make_steps",
    "minimum",
    "model_costs",
    "model_ops",
    "new_tokens",
    "op_costs",
    "scored_pairs",
    "step_ops",
    "window_pairs",
]

Num = Any  # a Python number or a jnp scalar


class Step(NamedTuple):
    """The counting contract's symbols for one configuration; built only by :func:`make_step`."""

    batch: Num  # B
    seq_len: Num  # S
    new: Num  # Q
    attended: Num  # T
    pairs: Num  # P
    hidden: Num  # h
    heads: Num  # H
    kv_heads: Num  # G
    head_dim: Num  # d
    intermediate: Num  # I
    vocab: Num  # V
    logits_tokens: Num  # tokens the LM head runs on: B (prefill, decode) or B·K (verify)
    layers: Num  # L
    w: Num
    a: Num
    k: Num
    gated_mlp: bool
    tied_embeddings: bool
    fused_attention: bool
    tp: Num = 1
    pp: Num = 1
    ep: Num = 1
    system_tokens: Num = 0  # B·Q over the whole system (every ep replica)
    kind: LayerKind = LayerKind()  # the layer's kind: the step prices one layer of it
    count: Num = 0  # the model's layers of this kind
    stages: tuple[tuple[Num, ...], ...] = ()  # layers of each kind per pipeline stage, the last first
    cache_tokens: Num = 0  # tokens of each sequence the layer's KV cache holds: S, or min(S, W) sliding
    attention_sinks: bool = False
    experts: Num = 0  # E/ep, the routed experts a device holds
    router_experts: Num = 0  # E, the router's outputs
    experts_per_token: Num = 0  # k
    shared_experts: Num = 0
    routed: Num = 0  # R, token-expert pairs a device's experts process
    touched: Num = 0  # experts whose weights a device reads
    expert_width: Num = 0  # each expert's width on a device, moe_intermediate/tp
    moe: bool = False
    dense_mlp: bool = True
    q_lora_rank: Num = 0  # r_q, latent attention's symbols (module docstring); 0 without it
    kv_lora_rank: Num = 0  # r_kv
    qk_nope_head_dim: Num = 0  # d_n
    qk_rope_head_dim: Num = 0  # d_r
    v_head_dim: Num = 0  # d_v
    mla: bool = False
    absorbed: bool = False
    comm: tuple[str, ...] = ()

    @property
    def tokens(self) -> Num:
        """``M = B·Q``, the rows of every linear op."""
        return self.batch * self.new


def new_tokens(phase: Num, seq_len: Num, spec_k: Num | None) -> Num:
    """``Q`` for a phase code (index into :data:`rooflax.names.PHASES`): ``S``, ``1`` or ``K``.

    Selected by multiplying with the phase tests, so it stays exact on Python integers
    and needs no branch on traced values; ``spec_k`` may be None outside verify.
    """
    k = 0 if spec_k is None else spec_k
    return seq_len * (phase == 0) + (phase == 1) + k * (phase == 2)


def scored_pairs(new: Num, attended: Num, causal: bool) -> Num:
    """``P``: query-key scores per sequence and head (dense, or unmasked only when causal).

    Causal: the ``Q`` new queries sit at the last ``Q`` of ``T`` positions, and query ``i``
    sees ``T - Q + i + 1`` keys, which sums to ``Q·(T-Q) + Q(Q+1)/2``.
    """
    if causal:
        return new * (attended - new) + floor_div(new * (new + 1), 2)
    return new * attended


def minimum(x: Num, y: Num) -> Num:
    """The smaller of ``x`` and ``y`` on Python numbers and arrays alike, with no branch on a traced value
    (exact on whole numbers)."""
    return y + (x - y) * (x < y)


def window_pairs(new: Num, seq_len: Num, window: Num, causal: bool) -> Num:
    """``P`` of a sliding layer: query-key scores per sequence and head, each query seeing the last ``W``
    positions, itself included (the window of transformers' sliding masks: key ``> query − W``).

    Causal: query ``i`` at position ``p = S − Q + i`` sees ``min(p + 1, W)`` keys. Summed, that is the
    causal count less what the window cuts: with ``c = min(Q, max(0, S − W))`` queries past the
    window, ``P = Q(S−Q) + Q(Q+1)/2 − (c·(S−W) − c(c−1)/2)``. Dense: every query scores a whole
    window, ``Q·min(S, W)`` (the band without its causal triangle; ``Q·S`` for a window of ``S``
    or more, as :func:`scored_pairs`).

    >>> window_pairs(5, 5, 2, causal=True), window_pairs(1, 4096, 128, causal=True)  # 1+2+2+2+2; decode
    (9, 128)
    """
    if causal:
        beyond = seq_len - window
        c = minimum(new, beyond * (beyond > 0))
        return scored_pairs(new, seq_len, True) - (c * beyond - floor_div(c * (c - 1), 2))
    return new * minimum(seq_len, window)


def make_steps(shape: Shape) -> tuple[Step, ...]:
    """The :class:`Step` of each layer kind of a shape (in the shape's ``kinds`` order): ``Q`` from the
    phase, ``T = S``, ``P`` from :func:`scored_pairs` (or, under a tree mask, ``Q·(T−Q)`` plus the
    shape's ``tree_pairs``: :mod:`rooflax.trees`), and the LM head's tokens (``B``, or ``B·K`` in
    verify), all per device under the shape's ``tp``, ``pp`` and ``ep`` (module docstring). The
    engine, :func:`rooflax.evaluate` and the benchmarks all build their steps here.

    A ``sliding`` layer attends at most ``W`` tokens a query: it reads ``T = min(S, W + Q − 1)``
    keys (the union of its queries' windows: ``min(S, W)`` in decode, all ``S`` in prefill), scores
    :func:`window_pairs` (under a tree mask, the tree's count capped at ``Q·W``: exact when the
    window holds every candidate's whole path or ``S − Q ≥ W``, else an upper bound), and its
    cache holds ``min(S, W)`` tokens. A ``moe`` layer has the routed experts (and the shared
    experts as its dense MLP); a ``dense`` one the model's dense MLP of width ``intermediate``.
    """
    s = shape
    new = new_tokens(s.phase, s.seq_len, s.spec_k)
    verify = s.phase == 2
    batch = ceil_div(s.batch, s.ep)
    system_tokens = s.batch * new
    full_pairs = scored_pairs(new, s.seq_len, s.causal) * (s.tree_pairs == 0) + (
        new * (s.seq_len - new) + s.tree_pairs
    ) * (s.tree_pairs != 0)
    model = {
        "batch": batch,
        "seq_len": s.seq_len,
        "new": new,
        "hidden": s.hidden,
        "heads": floor_div(s.heads, s.tp),
        "kv_heads": ceil_div(s.kv_heads, s.tp),
        "head_dim": s.head_dim,
        "vocab": ceil_div(s.vocab, s.tp),
        "logits_tokens": batch * (s.spec_k * verify + (s.phase != 2)),
        "layers": s.layers,
        "w": s.w,
        "a": s.a,
        "k": s.k,
        "gated_mlp": s.gated_mlp,
        "tied_embeddings": s.tied_embeddings,
        "fused_attention": s.fused_attention,
        "attention_sinks": s.attention_sinks,
        "tp": s.tp,
        "pp": s.pp,
        "ep": s.ep,
        "system_tokens": system_tokens,
        "stages": s.stages or ((floor_div(s.layers, s.pp),),),
        "q_lora_rank": s.q_lora_rank,
        "kv_lora_rank": s.kv_lora_rank,
        "qk_nope_head_dim": s.qk_nope_head_dim,
        "qk_rope_head_dim": s.qk_rope_head_dim,
        "v_head_dim": s.v_head_dim,
        "mla": s.mla,
        "absorbed": s.absorbed,
        "comm": s.comm,
    }
    steps = []
    for kind, count in zip(s.kinds, s.kind_layers or (s.layers,), strict=True):
        if kind.attention == "sliding":
            window_pairs_ = window_pairs(new, s.seq_len, s.window, s.causal) * (s.tree_pairs == 0) + minimum(
                new * (s.seq_len - new) + s.tree_pairs, new * s.window
            ) * (s.tree_pairs != 0)
            span = {
                "attended": minimum(s.seq_len, s.window + new - 1),
                "pairs": window_pairs_,
                "cache_tokens": minimum(s.seq_len, s.window),
            }
        else:
            span = {"attended": s.seq_len, "pairs": full_pairs, "cache_tokens": s.seq_len}
        if kind.mlp == "moe":
            mlp = {
                "experts": floor_div(s.experts, s.ep),
                "router_experts": s.experts,
                "experts_per_token": s.experts_per_token,
                "shared_experts": s.shared_experts,
                "routed": system_tokens * s.experts_per_token / s.ep,
                "touched": s.routing_experts
                / s.ep
                * (1 - (1 - s.experts_per_token / s.routing_experts) ** system_tokens),
                "expert_width": floor_div(s.moe_intermediate, s.tp),
                "intermediate": floor_div(s.shared_intermediate, s.tp),
                "moe": True,
                "dense_mlp": s.shared_mlp,
            }
        else:
            mlp = {"intermediate": floor_div(s.intermediate, s.tp)}
        steps.append(Step(**model, **span, **mlp, kind=kind, count=count))
    return tuple(steps)


def make_step(shape: Shape) -> Step:
    """The :class:`Step` of a shape whose layers are all of one kind (:func:`make_steps`).

    >>> from rooflax import get_dtype, get_model
    >>> step = make_step(Shape.of(get_model("llama-13b"), get_dtype("fp16"), phase="decode", batch=1, seq_len=2048))
    >>> step.new, step.attended, step.kind.name
    (1, 2048, 'full/dense')
    """
    steps = make_steps(shape)
    if len(steps) != 1:
        raise ValueError(f"make_step: the shape has {len(steps)} layer kinds ({shape.kinds}); use make_steps")
    return steps[0]


def _linear(tokens: Num, k_in: Num, n_out: Num, w: Num, a: Num) -> tuple[Num, Num]:
    """``[M, K] × [K, N]``: ``2·M·K·N`` FLOPs; the ``N × K`` weight, the input and the output bytes."""
    return 2 * tokens * k_in * n_out, tensor_bytes(w, n_out, k_in) + _acts(a, tokens, k_in) + _acts(a, tokens, n_out)


def _acts(a: Num, tokens: Num, width: Num) -> Num:
    """``tokens`` activation rows of ``width``, blocked along it: each row a tensor (``tokens`` may be an
    expected count)."""
    return tensor_bytes(a, 1, width, tokens)


def _cached(s: Step, vectors: Num, width: Num) -> Num:
    """``vectors`` cached vectors of ``width`` elements, each blocked along its width."""
    return tensor_bytes(s.k, vectors, width)


def _kv_vectors(s: Step, tokens: Num, heads: Num) -> Num:
    """The cached keys (or values) of ``tokens`` tokens and ``heads`` KV heads: vectors of ``d``."""
    return _cached(s, tokens * heads, s.head_dim)


def _latent(s: Step, tokens: Num) -> Num:
    """Latent attention's cache of ``tokens`` tokens: the latent ``c`` and the rotary key, each a vector of its own."""
    return _cached(s, tokens, s.kv_lora_rank) + _cached(s, tokens, s.qk_rope_head_dim)


def _scores(s: Step) -> Num:
    """The ``P`` scores (or probabilities) of each of ``B·H`` sequence-heads, one packed row each, blocked along it
    (in decode a query's row of keys)."""
    return tensor_bytes(s.a, s.batch * s.heads, s.pairs)


def _gemm(count: Num, m: Num, n: Num, k: Num) -> tuple[Gemm, ...]:
    return (Gemm(count, m, n, k),)


def qkv_proj(s: Step) -> tuple[Num, Num]:
    """``h → (H+2G)d``; Q is written as an activation, K and V to the cache at ``k`` bytes."""
    m, out = s.tokens, (s.heads + 2 * s.kv_heads) * s.head_dim
    flops = 2 * m * s.hidden * out
    weights = tensor_bytes(s.w, out, s.hidden)  # one fused matrix
    return flops, weights + _acts(s.a, m, s.hidden) + _acts(s.a, m, s.heads * s.head_dim) + _kv_vectors(
        s, m, 2 * s.kv_heads
    )


def o_proj(s: Step) -> tuple[Num, Num]:
    """``Hd → h``."""
    return _linear(s.tokens, s.heads * s.head_dim, s.hidden, s.w, s.a)


def gate_proj(s: Step) -> tuple[Num, Num]:
    """``h → I``."""
    return _linear(s.tokens, s.hidden, s.intermediate, s.w, s.a)


up_proj = gate_proj


def down_proj(s: Step) -> tuple[Num, Num]:
    """``I → h``."""
    return _linear(s.tokens, s.intermediate, s.hidden, s.w, s.a)


def qk(s: Step) -> tuple[Num, Num]:
    """Scores ``QKᵀ``: ``2·B·H·P·d``; reads Q and the K cache once per KV head, writes scores."""
    return (
        2 * s.batch * s.heads * s.pairs * s.head_dim,
        _acts(s.a, s.batch * s.new, s.heads * s.head_dim)
        + _kv_vectors(s, s.batch * s.attended, s.kv_heads)
        + _scores(s),
    )


def softmax(s: Step) -> tuple[Num, Num]:
    """Row softmax of the scores: 5 FLOPs a score (max, subtract, exp, sum, divide); read and write.

    With attention sinks (gpt-oss) each head's learned sink logit joins every row's max, exp and
    sum as one more score, 4 FLOPs a row (its probability is dropped, not divided nor written),
    and the ``H`` sink logits are read once, ``w·H`` bytes.
    """
    scores = s.batch * s.heads * s.pairs
    if s.attention_sinks:
        return 5 * scores + 4 * s.batch * s.heads * s.new, 2 * _scores(s) + tensor_bytes(s.w, 1, s.heads)
    return 5 * scores, 2 * _scores(s)


def pv(s: Step) -> tuple[Num, Num]:
    """Probabilities times V: ``2·B·H·P·d``; reads probabilities and the V cache, writes O."""
    return (
        2 * s.batch * s.heads * s.pairs * s.head_dim,
        _scores(s)
        + _kv_vectors(s, s.batch * s.attended, s.kv_heads)
        + _acts(s.a, s.batch * s.new, s.heads * s.head_dim),
    )


def attention(s: Step) -> tuple[Num, Num]:
    """Fused attention (qk, softmax, pv in one kernel): reads Q, K, V once and writes O once."""
    (f_qk, _), (f_sm, _), (f_pv, _) = qk(s), softmax(s), pv(s)
    q_and_o = 2 * _acts(s.a, s.batch * s.new, s.heads * s.head_dim)
    kv = 2 * _kv_vectors(s, s.batch * s.attended, s.kv_heads)
    if s.attention_sinks:  # the sink logits, read once (softmax)
        return f_qk + f_sm + f_pv, q_and_o + kv + tensor_bytes(s.w, 1, s.heads)
    return f_qk + f_sm + f_pv, q_and_o + kv


def _rms(tokens: Num, width: Num, io: Num, a: Num) -> tuple[Num, Num]:
    """RMSNorm of ``tokens`` rows of ``width``: 4 FLOPs an element (square, sum, scale, weight); each
    row read and written in the format ``io``, the weight read in ``a``."""
    elements = tokens * width
    return 4 * elements, 2 * tensor_bytes(io, 1, width, tokens) + tensor_bytes(a, 1, width)


def rms_norm(s: Step) -> tuple[Num, Num]:
    """RMSNorm over ``h``: 4 FLOPs an element (square, sum, scale, weight); read, write, weight."""
    return _rms(s.tokens, s.hidden, s.a, s.a)


def residual(s: Step) -> tuple[Num, Num]:
    """Residual add: one FLOP an element; two reads and a write."""
    elements = s.tokens * s.hidden
    return elements, 3 * _acts(s.a, s.tokens, s.hidden)


def silu_mul(s: Step) -> tuple[Num, Num]:
    """``silu(gate)·up``: 5 FLOPs an element (sigmoid as exp, add, divide; two multiplies)."""
    elements = s.tokens * s.intermediate
    return 5 * elements, _acts(s.a, 3 * s.tokens, s.intermediate)  # gate and up read, the product written


def silu(s: Step) -> tuple[Num, Num]:
    """``silu(up)`` of a non-gated MLP: 4 FLOPs an element; read and write."""
    elements = s.tokens * s.intermediate
    return 4 * elements, 2 * _acts(s.a, s.tokens, s.intermediate)


def _rope(s: Step, queries: Num, keys: Num, d: Num) -> Num:
    """Bytes of a rotary embedding: each token's ``queries`` rotary elements (a row over the heads) and the new
    cached keys (``keys`` bytes) read and written, the ``Q × d`` cos/sin read."""
    return 2 * _acts(s.a, s.tokens, queries) + 2 * keys + _acts(s.a, s.new, d)


def rotary(s: Step) -> tuple[Num, Num]:
    """Rotary embedding of Q and K: 3 FLOPs an element; Q and K read and written, cos/sin read."""
    m, d = s.tokens, s.head_dim
    return 3 * m * (s.heads + s.kv_heads) * d, _rope(s, s.heads * d, _kv_vectors(s, m, s.kv_heads), d)


def q_down(s: Step) -> tuple[Num, Num]:
    """Latent attention's query down-projection ``h → r_q``."""
    return _linear(s.tokens, s.hidden, s.q_lora_rank, s.w, s.a)


def q_norm(s: Step) -> tuple[Num, Num]:
    """RMSNorm of the query latent, ``r_q`` wide."""
    return _rms(s.tokens, s.q_lora_rank, s.a, s.a)


def q_up(s: Step) -> tuple[Num, Num]:
    """Query up-projection ``r_q → H(d_n + d_r)``."""
    return _linear(s.tokens, s.q_lora_rank, s.heads * (s.qk_nope_head_dim + s.qk_rope_head_dim), s.w, s.a)


def kv_down(s: Step) -> tuple[Num, Num]:
    """KV down-projection ``h → r_kv + d_r``: the latent and the rotary key, written to the cache at ``k`` bytes."""
    m, out = s.tokens, s.kv_lora_rank + s.qk_rope_head_dim
    return 2 * m * s.hidden * out, tensor_bytes(s.w, out, s.hidden) + _acts(s.a, m, s.hidden) + _latent(s, m)


def kv_norm(s: Step) -> tuple[Num, Num]:
    """RMSNorm of the new tokens' latent, ``r_kv`` wide, in the cache."""
    return _rms(s.tokens, s.kv_lora_rank, s.k, s.a)


def mla_rotary(s: Step) -> tuple[Num, Num]:
    """Rotary embedding of the queries' ``d_r`` part and of the one rotary key every head shares."""
    m, d_r = s.tokens, s.qk_rope_head_dim
    return 3 * m * (s.heads + 1) * d_r, _rope(s, s.heads * d_r, _cached(s, m, d_r), d_r)


def kv_up(s: Step) -> tuple[Num, Num]:
    """Naive: the ``B·T`` cached latents up-projected to keys and values, ``r_kv → H(d_n + d_v)``."""
    rows, out = s.batch * s.attended, s.heads * (s.qk_nope_head_dim + s.v_head_dim)
    weights = _w_uk(s) + _w_uv(s)
    return 2 * rows * s.kv_lora_rank * out, weights + _cached(s, rows, s.kv_lora_rank) + _acts(s.a, rows, out)


def _w_uk(s: Step) -> Num:
    """``W_UK``, the key half of the KV up-projection: ``H·d_n × r_kv``, stored as its own matrix."""
    return tensor_bytes(s.w, s.heads * s.qk_nope_head_dim, s.kv_lora_rank)


def _w_uv(s: Step) -> Num:
    """``W_UV``, its value half: ``H·d_v × r_kv``."""
    return tensor_bytes(s.w, s.heads * s.v_head_dim, s.kv_lora_rank)


def _latent_attention(s: Step) -> tuple[Num, Num, Num]:
    """``(query-key width, value width, key bytes read)`` of latent attention: naive or absorbed (docstring)."""
    bt, d_r = s.batch * s.attended, s.qk_rope_head_dim
    if s.absorbed:
        return s.kv_lora_rank + d_r, s.kv_lora_rank, _latent(s, bt)
    return s.qk_nope_head_dim + d_r, s.v_head_dim, _acts(s.a, bt, s.heads * s.qk_nope_head_dim) + _cached(s, bt, d_r)


def _latent_values(s: Step) -> Num:
    """Value bytes latent attention reads: the cached latent (absorbed) or the up-projected values (naive)."""
    bt = s.batch * s.attended
    return _cached(s, bt, s.kv_lora_rank) if s.absorbed else _acts(s.a, bt, s.heads * s.v_head_dim)


def mla_qk(s: Step) -> tuple[Num, Num]:
    """Latent attention's scores: ``2·B·H·P`` times the query-key width; reads Q and the keys, writes scores."""
    qk_dim, _, keys = _latent_attention(s)
    scores = s.batch * s.heads * s.pairs
    return 2 * scores * qk_dim, _acts(s.a, s.batch * s.new, s.heads * qk_dim) + keys + _scores(s)


def mla_pv(s: Step) -> tuple[Num, Num]:
    """Latent attention's probabilities times values: ``2·B·H·P`` times the value width."""
    _, v_dim, _ = _latent_attention(s)
    scores = s.batch * s.heads * s.pairs
    return 2 * scores * v_dim, _scores(s) + _latent_values(s) + _acts(s.a, s.batch * s.new, s.heads * v_dim)


def mla_attention(s: Step) -> tuple[Num, Num]:
    """Fused latent attention: Q read and O written once; keys and values read once (absorbed, as FlashMLA
    does: the latent once, serving as both)."""
    (f_qk, _), (f_sm, _), (f_pv, _) = mla_qk(s), softmax(s), mla_pv(s)
    qk_dim, v_dim, keys = _latent_attention(s)
    values = 0 if s.absorbed else _latent_values(s)
    q_and_o = _acts(s.a, s.batch * s.new, s.heads * qk_dim) + _acts(s.a, s.batch * s.new, s.heads * v_dim)
    return f_qk + f_sm + f_pv, q_and_o + keys + values


def q_absorb(s: Step) -> tuple[Num, Num]:
    """Absorbed: each head's ``d_n`` query part times its ``W_UK`` block, ``d_n → r_kv``."""
    m, hd, hr = s.tokens, s.heads * s.qk_nope_head_dim, s.heads * s.kv_lora_rank
    return 2 * m * hd * s.kv_lora_rank, _w_uk(s) + _acts(s.a, m, hd) + _acts(s.a, m, hr)


def o_absorb(s: Step) -> tuple[Num, Num]:
    """Absorbed: each head's attended latent times its ``W_UV`` block, ``r_kv → d_v``."""
    m, hr, hv = s.tokens, s.heads * s.kv_lora_rank, s.heads * s.v_head_dim
    return 2 * m * hr * s.v_head_dim, _w_uv(s) + _acts(s.a, m, hr) + _acts(s.a, m, hv)


def mla_o_proj(s: Step) -> tuple[Num, Num]:
    """``H·d_v → h``."""
    return _linear(s.tokens, s.heads * s.v_head_dim, s.hidden, s.w, s.a)


def lm_head(s: Step) -> tuple[Num, Num]:
    """Once per model: ``h → V`` on the last token of each sequence (``B·K`` in verify)."""
    return _linear(s.logits_tokens, s.hidden, s.vocab, s.w, s.a)


def layer_weight_bytes(s: Step) -> Num:
    """Bytes of the weights one device holds for one layer of ``s``'s kind, each tensor in the weight format
    (:func:`~rooflax.config.dtypes.tensor_bytes`) as the ops read it: every expert held, the whole router,
    the norms (and sink logits, latent norms) as vectors of their width. Biases are not counted."""
    w, h = s.w, s.hidden
    if s.mla:
        q_rows = s.heads * (s.qk_nope_head_dim + s.qk_rope_head_dim)
        attention = (
            tensor_bytes(w, s.q_lora_rank, h)
            + tensor_bytes(w, 1, s.q_lora_rank)
            + tensor_bytes(w, q_rows, s.q_lora_rank)
            + tensor_bytes(w, s.kv_lora_rank + s.qk_rope_head_dim, h)
            + tensor_bytes(w, 1, s.kv_lora_rank)
            + _w_uk(s)
            + _w_uv(s)
            + tensor_bytes(w, h, s.heads * s.v_head_dim)
        )
    else:
        attention = tensor_bytes(w, (s.heads + 2 * s.kv_heads) * s.head_dim, h) + tensor_bytes(
            w, h, s.heads * s.head_dim
        )
    if s.attention_sinks:
        attention = attention + tensor_bytes(w, 1, s.heads)
    matrices = 2 if s.gated_mlp else 1  # the products h → width (gate, up); one down
    mlp = matrices * tensor_bytes(w, s.intermediate, h) + tensor_bytes(w, h, s.intermediate)
    if s.moe:
        per_expert = matrices * tensor_bytes(w, s.expert_width, h) + tensor_bytes(w, h, s.expert_width)
        mlp = mlp + s.experts * per_expert + tensor_bytes(w, s.router_experts, h)
    return attention + mlp + 2 * tensor_bytes(w, 1, h)


def cache_bytes(s: Step, tokens: Num) -> Num:
    """Bytes one layer of ``s``'s kind caches for ``tokens`` tokens on a device: ``2G`` vectors of ``d`` each,
    or with latent attention the latent and the rotary key (whole on every device: every head reads them)."""
    return _latent(s, tokens) if s.mla else _kv_vectors(s, tokens, 2 * s.kv_heads)


def _scores_gemm(s: Step) -> tuple[Gemm, ...]:
    """``QKᵀ`` per sequence and KV head, the ``H/G`` query heads of a group stacked into M."""
    return _gemm(s.batch * s.kv_heads, floor_div(s.heads, s.kv_heads) * s.new, s.attended, s.head_dim)


def _values_gemm(s: Step) -> tuple[Gemm, ...]:
    """``PV`` per sequence and KV head: ``[(H/G)·Q, T] × [T, d]``."""
    return _gemm(s.batch * s.kv_heads, floor_div(s.heads, s.kv_heads) * s.new, s.head_dim, s.attended)


def _qkv_gemm(s: Step) -> tuple[Gemm, ...]:
    return _gemm(1, s.tokens, (s.heads + 2 * s.kv_heads) * s.head_dim, s.hidden)


def _o_gemm(s: Step) -> tuple[Gemm, ...]:
    return _gemm(1, s.tokens, s.hidden, s.heads * s.head_dim)


def _up_gemm(s: Step) -> tuple[Gemm, ...]:
    return _gemm(1, s.tokens, s.intermediate, s.hidden)


def _down_gemm(s: Step) -> tuple[Gemm, ...]:
    return _gemm(1, s.tokens, s.hidden, s.intermediate)


def _kept(s: Step, gemms: tuple[Gemm, ...]) -> tuple[Gemm, ...]:
    """A fused kernel's products over the share ``P/(Q·T)`` of the score tiles a mask keeps
    (FlashAttention skips the tiles a causal mask hides; 1 with no mask)."""
    kept = s.pairs / (s.new * s.attended)
    return tuple(g._replace(count=g.count * kept) for g in gemms)


def _attention_gemms(s: Step) -> tuple[Gemm, ...]:
    """The fused kernel's two products."""
    return _kept(s, _scores_gemm(s) + _values_gemm(s))


def _q_down_gemm(s: Step) -> tuple[Gemm, ...]:
    return _gemm(1, s.tokens, s.q_lora_rank, s.hidden)


def _q_up_gemm(s: Step) -> tuple[Gemm, ...]:
    return _gemm(1, s.tokens, s.heads * (s.qk_nope_head_dim + s.qk_rope_head_dim), s.q_lora_rank)


def _kv_down_gemm(s: Step) -> tuple[Gemm, ...]:
    return _gemm(1, s.tokens, s.kv_lora_rank + s.qk_rope_head_dim, s.hidden)


def _kv_up_gemm(s: Step) -> tuple[Gemm, ...]:
    return _gemm(1, s.batch * s.attended, s.heads * (s.qk_nope_head_dim + s.v_head_dim), s.kv_lora_rank)


def _q_absorb_gemm(s: Step) -> tuple[Gemm, ...]:
    """One product per head: ``[M, d_n] × [d_n, r_kv]``."""
    return _gemm(s.heads, s.tokens, s.kv_lora_rank, s.qk_nope_head_dim)


def _o_absorb_gemm(s: Step) -> tuple[Gemm, ...]:
    """One product per head: ``[M, r_kv] × [r_kv, d_v]``."""
    return _gemm(s.heads, s.tokens, s.v_head_dim, s.kv_lora_rank)


def _mla_scores_gemm(s: Step) -> tuple[Gemm, ...]:
    """Naive: per sequence and head ``[Q, d_n + d_r] × [d_n + d_r, T]``; absorbed: one shared key, so per
    sequence the ``H`` heads stacked into M, ``[H·Q, r_kv + d_r] × [r_kv + d_r, T]``."""
    qk_dim, _, _ = _latent_attention(s)
    if s.absorbed:
        return _gemm(s.batch, s.heads * s.new, s.attended, qk_dim)
    return _gemm(s.batch * s.heads, s.new, s.attended, qk_dim)


def _mla_values_gemm(s: Step) -> tuple[Gemm, ...]:
    """``PV`` likewise: ``[Q, T] × [T, d_v]`` per head, or ``[H·Q, T] × [T, r_kv]`` per sequence absorbed."""
    _, v_dim, _ = _latent_attention(s)
    if s.absorbed:
        return _gemm(s.batch, s.heads * s.new, v_dim, s.attended)
    return _gemm(s.batch * s.heads, s.new, v_dim, s.attended)


def _mla_attention_gemms(s: Step) -> tuple[Gemm, ...]:
    return _kept(s, _mla_scores_gemm(s) + _mla_values_gemm(s))


def _mla_o_gemm(s: Step) -> tuple[Gemm, ...]:
    return _gemm(1, s.tokens, s.hidden, s.heads * s.v_head_dim)


def _lm_head_gemm(s: Step) -> tuple[Gemm, ...]:
    return _gemm(1, s.logits_tokens, s.vocab, s.hidden)


def _router_gemm(s: Step) -> tuple[Gemm, ...]:
    return _gemm(1, s.tokens, s.router_experts, s.hidden)


def _expert_up_gemm(s: Step) -> tuple[Gemm, ...]:
    """One product per touched expert, over its share of the routed tokens."""
    return _gemm(s.touched, s.routed / s.touched, s.expert_width, s.hidden)


def _expert_down_gemm(s: Step) -> tuple[Gemm, ...]:
    return _gemm(s.touched, s.routed / s.touched, s.hidden, s.expert_width)


def router(s: Step) -> tuple[Num, Num]:
    """``h → E`` on the device's tokens: the expert scores (top-k and softmax on them are negligible)."""
    return _linear(s.tokens, s.hidden, s.router_experts, s.w, s.a)


def _expert_linear(s: Step, k_in: Num, n_out: Num) -> tuple[Num, Num]:
    """A routed expert product over the device's ``R`` token-expert pairs; weights of the touched experts."""
    weights = tensor_bytes(s.w, n_out, k_in, s.touched)
    return 2 * s.routed * k_in * n_out, weights + _acts(s.a, s.routed, k_in) + _acts(s.a, s.routed, n_out)


def expert_gate(s: Step) -> tuple[Num, Num]:
    """``h → moe_intermediate/tp`` for every routed token, per expert ``B·Q·k/E`` tokens."""
    return _expert_linear(s, s.hidden, s.expert_width)


expert_up = expert_gate


def expert_down(s: Step) -> tuple[Num, Num]:
    """``moe_intermediate/tp → h`` for every routed token."""
    return _expert_linear(s, s.expert_width, s.hidden)


def expert_silu_mul(s: Step) -> tuple[Num, Num]:
    """``silu(gate)·up`` of the routed experts: 5 FLOPs an element."""
    elements = s.routed * s.expert_width
    return 5 * elements, 3 * _acts(s.a, s.routed, s.expert_width)


def all_reduce(s: Step) -> tuple[Num, Num]:
    """Ring all-reduce over ``tp`` devices of the ``M × h`` partial output: ``2(tp−1)/tp`` of it crosses the link."""
    return 0, 2 * (s.tp - 1) * _acts(s.a, s.tokens, s.hidden) / s.tp


def _ring_hops(s: Step) -> Num:
    return 2 * (s.tp - 1)


def all_to_all(s: Step) -> tuple[Num, Num]:
    """All-to-all over ``ep`` devices of each token's hidden state to (or from) its ``k`` experts: ``(ep−1)/ep``."""
    return 0, (s.ep - 1) * _acts(s.a, s.tokens * s.experts_per_token, s.hidden) / s.ep


def _all_to_all_hops(s: Step) -> Num:
    return s.ep - 1


def pp_send(s: Step) -> tuple[Num, Num]:
    """The ``M × h`` hidden state handed to the next pipeline stage, once per stage boundary."""
    return 0, _acts(s.a, s.tokens, s.hidden)


def _send_hops(s: Step) -> Num:
    return 1


def _no_gemms(s: object) -> tuple[Gemm, ...]:
    return ()


#: The symbols an op's functions take: a layer's :class:`Step`, or a Medusa forward's
#: :class:`rooflax.cost.drafters.HeadStep`.
StepT = TypeVar("StepT")


@dataclass(frozen=True, slots=True, kw_only=True)
class OpDef(Generic[StepT]):
    """One operation: its frame name, chart group, cost function, and when it exists.

    Generic in the symbols its functions take: a layer's ops are ``OpDef[Step]``, the Medusa
    heads' ``OpDef[HeadStep]`` (:mod:`rooflax.cost.drafters`).
    """

    name: str
    group: str
    cost: Callable[[StepT], tuple[Num, Num]]
    gemms: Callable[[StepT], tuple[Gemm, ...]] = _no_gemms  # matrix products run, for tile/wave quantization
    fused: bool | None = None  # True: only with fused attention; False: only without
    gated: bool | None = None  # likewise for the gated MLP
    only: str | None = None  # only when this holds: "moe", "dense_mlp", or a degree above 1 ("tp", "pp", "ep")
    mla: bool | None = None  # True: only with latent attention; False: only with standard attention
    absorbed: bool | None = None  # True: only absorbed latent attention; False: only naive
    hops: Callable[[StepT], Num] | None = None  # a collective: link latencies it waits; bytes cross the interconnect
    terms: str | None = None  # the achieved terms' group (rooflax.names.TERM_GROUPS) when not ``group``

    def __post_init__(self) -> None:
        if (self.group == "comm") != self.collective:
            raise ValueError(
                f"op {self.name!r}: a collective (one with hops) is exactly an op of the 'comm' group, "
                f"got group {self.group!r} with hops {self.hops!r}"
            )

    @property
    def terms_group(self) -> str:
        """The group whose achieved terms price the op: ``terms``, else its chart ``group``."""
        return self.terms or self.group

    @property
    def collective(self) -> bool:
        """Whether the op is a collective: its bytes cross the interconnect, under the network roof."""
        return self.hops is not None


#: A layer's ops in frame order; an op name may appear twice, once for standard and once for latent attention.
_LAYER_OPS: tuple[OpDef[Step], ...] = (
    OpDef(name="attn_norm", group="elementwise", cost=rms_norm),
    OpDef(name="qkv_proj", group="qkv mlp", cost=qkv_proj, gemms=_qkv_gemm, mla=False),
    OpDef(name="q_down", group="qkv mlp", cost=q_down, gemms=_q_down_gemm, mla=True),
    OpDef(name="q_norm", group="elementwise", cost=q_norm, mla=True),
    OpDef(name="q_up", group="qkv mlp", cost=q_up, gemms=_q_up_gemm, mla=True),
    OpDef(name="kv_down", group="qkv mlp", cost=kv_down, gemms=_kv_down_gemm, mla=True),
    OpDef(name="kv_norm", group="elementwise", cost=kv_norm, mla=True),
    OpDef(name="rotary", group="elementwise", cost=rotary, mla=False),
    OpDef(name="rotary", group="elementwise", cost=mla_rotary, mla=True),
    OpDef(name="kv_up", group="qkv mlp", cost=kv_up, gemms=_kv_up_gemm, mla=True, absorbed=False),
    OpDef(name="q_absorb", group="qkv mlp", cost=q_absorb, gemms=_q_absorb_gemm, mla=True, absorbed=True),
    OpDef(name="qk", group="qk/pv", cost=qk, gemms=_scores_gemm, fused=False, mla=False),
    OpDef(name="qk", group="qk/pv", cost=mla_qk, gemms=_mla_scores_gemm, fused=False, mla=True),
    OpDef(name="softmax", group="elementwise", cost=softmax, fused=False),
    OpDef(name="pv", group="qk/pv", cost=pv, gemms=_values_gemm, fused=False, mla=False),
    OpDef(name="pv", group="qk/pv", cost=mla_pv, gemms=_mla_values_gemm, fused=False, mla=True),
    OpDef(name="attention", group="qk/pv", cost=attention, gemms=_attention_gemms, fused=True, mla=False),
    OpDef(name="attention", group="qk/pv", cost=mla_attention, gemms=_mla_attention_gemms, fused=True, mla=True),
    OpDef(name="o_absorb", group="qkv mlp", cost=o_absorb, gemms=_o_absorb_gemm, mla=True, absorbed=True),
    OpDef(name="o_proj", group="qkv mlp", cost=o_proj, gemms=_o_gemm, mla=False),
    OpDef(name="o_proj", group="qkv mlp", cost=mla_o_proj, gemms=_mla_o_gemm, mla=True),
    OpDef(name="attn_allreduce", group="comm", cost=all_reduce, only="tp", hops=_ring_hops),
    OpDef(name="attn_residual", group="elementwise", cost=residual),
    OpDef(name="mlp_norm", group="elementwise", cost=rms_norm),
    OpDef(name="gate_proj", group="up/gate/down", cost=gate_proj, gemms=_up_gemm, gated=True, only="dense_mlp"),
    OpDef(name="up_proj", group="up/gate/down", cost=up_proj, gemms=_up_gemm, only="dense_mlp"),
    OpDef(name="silu_mul", group="elementwise", cost=silu_mul, gated=True, only="dense_mlp"),
    OpDef(name="silu", group="elementwise", cost=silu, gated=False, only="dense_mlp"),
    OpDef(name="down_proj", group="up/gate/down", cost=down_proj, gemms=_down_gemm, only="dense_mlp"),
    OpDef(name="router", group="up/gate/down", cost=router, gemms=_router_gemm, only="moe"),
    OpDef(name="moe_dispatch", group="comm", cost=all_to_all, only="ep", hops=_all_to_all_hops),
    OpDef(name="expert_gate", group="up/gate/down", cost=expert_gate, gemms=_expert_up_gemm, only="moe", terms="moe"),
    OpDef(name="expert_up", group="up/gate/down", cost=expert_up, gemms=_expert_up_gemm, only="moe", terms="moe"),
    OpDef(name="expert_silu_mul", group="elementwise", cost=expert_silu_mul, only="moe", terms="moe"),
    OpDef(name="expert_down", group="up/gate/down", cost=expert_down, gemms=_expert_down_gemm, only="moe", terms="moe"),
    OpDef(name="moe_combine", group="comm", cost=all_to_all, only="ep", hops=_all_to_all_hops),
    OpDef(name="mlp_allreduce", group="comm", cost=all_reduce, only="tp", hops=_ring_hops),
    OpDef(name="mlp_residual", group="elementwise", cost=residual),
)
LM_HEAD: OpDef[Step] = OpDef(name="lm_head", group="lm_head", cost=lm_head, gemms=_lm_head_gemm)
#: Once per stage boundary, after the layers and the LM head.
PP_SEND: OpDef[Step] = OpDef(name="pp_send", group="comm", cost=pp_send, only="pp", hops=_send_hops)

#: Every op name, in frame order (the ``op`` enum).
OP_NAMES = (*dict.fromkeys(op.name for op in _LAYER_OPS), LM_HEAD.name, PP_SEND.name)
#: Each op name's achieved-terms group (:attr:`OpDef.terms_group`; an op named twice has one).
TERMS_GROUP = {op.name: op.terms_group for op in (*_LAYER_OPS, LM_HEAD, PP_SEND)}


def layer_ops(
    *,
    gated_mlp: bool = True,
    fused_attention: bool = False,
    moe: bool = False,
    dense_mlp: bool = True,
    mla: bool = False,
    absorbed: bool = False,
    comm: tuple[str, ...] = (),
) -> tuple[OpDef[Step], ...]:
    """The ops of one layer, the once-per-model ``lm_head``, and ``pp_send`` with ``"pp"`` in ``comm``.

    Args:
        gated_mlp, fused_attention: the structural choices of the ops table.
        moe: the layer has routed experts (``router``, ``expert_*``).
        dense_mlp: the layer has a dense MLP (always, unless a mixture of experts has no shared experts).
        mla: the attention is multi-head latent attention (``q_down`` ... ``o_proj``, module docstring).
        absorbed: latent attention runs weight-absorbed (``q_absorb``, ``o_absorb``) instead of up-projecting
            the cache (``kv_up``).
        comm: the parallel degrees above 1 (``"tp"``, ``"pp"``, ``"ep"``): their collectives.
    """
    # experts' all-to-alls only in a layer with experts (a model's dense layers run on each ep replica's batch)
    flags = {"moe": moe, "dense_mlp": dense_mlp, **{name: name in comm and (name != "ep" or moe) for name in LAYOUT}}
    return tuple(
        op
        for op in (*_LAYER_OPS, LM_HEAD, PP_SEND)
        if op.fused in (None, fused_attention)
        and op.gated in (None, gated_mlp)
        and op.mla in (None, mla)
        and op.absorbed in (None, absorbed)
        and (op.only is None or flags[op.only])
    )


def step_ops(step: Step) -> tuple[OpDef[Step], ...]:
    """The ops of one layer kind's step (:func:`layer_ops` of its flags), ``lm_head`` and ``pp_send`` included."""
    return layer_ops(
        gated_mlp=step.gated_mlp,
        fused_attention=step.fused_attention,
        moe=step.moe,
        dense_mlp=step.dense_mlp,
        mla=step.mla,
        absorbed=step.absorbed,
        comm=step.comm,
    )


def op_costs(step: Step) -> tuple[tuple[OpDef[Step], Num, Num], ...]:
    """``(op, flops, bytes)`` for every op of one layer kind's step (:func:`step_ops`), in frame order:
    the layer's ops, ``lm_head``, and ``pp_send`` with pipeline stages."""
    return tuple((op, *op.cost(step)) for op in step_ops(step))


#: The ops that run once per model (or per stage boundary), not in every layer.
ONCE: tuple[OpDef[Step], ...] = (LM_HEAD, PP_SEND)


def model_ops(
    *,
    kinds: tuple[LayerKind, ...],
    shared_mlp: bool,
    gated_mlp: bool = True,
    fused_attention: bool = False,
    mla: bool = False,
    absorbed: bool = False,
    comm: tuple[str, ...] = (),
) -> tuple[tuple[LayerKind | None, OpDef[Step]], ...]:
    """``(kind, op)`` for every row of a model's step, in frame order: each layer kind's ops in turn,
    then ``lm_head`` and ``pp_send`` (kind None: once per model). The keywords are :data:`OP_FLAGS`
    (:func:`rooflax.cost.shape.op_flags`).
    """
    rows: list[tuple[LayerKind | None, OpDef[Step]]] = []
    for kind in kinds:
        moe = kind.mlp == "moe"
        ops = layer_ops(
            gated_mlp=gated_mlp,
            fused_attention=fused_attention,
            moe=moe,
            dense_mlp=not moe or shared_mlp,
            mla=mla,
            absorbed=absorbed,
            comm=comm,
        )
        rows.extend((kind, op) for op in ops if op not in ONCE)
    once = layer_ops(gated_mlp=gated_mlp, fused_attention=fused_attention, comm=comm)
    return (*rows, *((None, op) for op in once if op in ONCE))


def model_costs(steps: tuple[Step, ...]) -> tuple[tuple[Step, OpDef[Step], Num, Num], ...]:
    """``(step, op, flops, bytes)`` for every row of a model's step (:func:`make_steps`), in
    :func:`model_ops` order: each kind's layer ops with its own step, then the once-per-model ops
    (priced with the first kind's step: they depend on no layer)."""
    rows = [(step, op, f, b) for step in steps for op, f, b in op_costs(step) if op not in ONCE]
    return (*rows, *((steps[0], op, f, b) for op, f, b in op_costs(steps[0]) if op in ONCE))
