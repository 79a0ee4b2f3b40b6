"""What each operation of a decoder layer costs: the counting contract of DESIGN.md.

A configuration is a :class:`rooflax.shape.Shape`; :func:`make_step` (the one place
this happens) turns it into a :class:`Step`, the symbols below, and :func:`op_costs`
prices every op of the step's layer. Every function here is plain arithmetic, so it
runs unchanged on Python numbers (exact integers), numpy arrays and traced jnp scalars
under ``jax.vmap``/``jax.jit``; there is no Python ``if`` on a traced value. Structural
choices (gated MLP, fused attention) are static and pick *which* ops exist.

Symbols: ``B`` batch, ``S`` seq_len (after the step), ``Q`` new tokens per sequence,
``T`` tokens attended, ``P`` scored query-key pairs per sequence and head (``Q·T``
dense; ``Q·(T-Q) + Q(Q+1)/2`` causal), ``M = B·Q``, ``h`` hidden, ``H`` query heads,
``G`` KV heads, ``d`` head dim, ``I`` intermediate, ``V`` vocab, and ``w``, ``a``, ``k``
the bytes per weight, activation and KV-cache element.

To add an operation, write its cost function (and, for a matrix product, the function
giving its products' shapes) and add one :class:`OpDef` to
:data:`_LAYER_OPS` (or give the model a new structural flag); the engine, frames and
charts pick it up from there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from rooflax.achieved import Gemm
from rooflax.shape import PHASES, Shape

__all__ = [
    "GROUPS", "OP_NAMES", "PHASES", "OpDef", "Step", "layer_ops", "lm_head", "make_step", "new_tokens", "op_costs",
    "scored_pairs",
]
#: Chart groups, in frame order.
GROUPS = ("qkv mlp", "up/gate/down", "qk/pv", "elementwise", "lm_head")

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

    @property
    def tokens(self) -> Num:
        """``M = B·Q``, the rows of every linear op."""
        return self.batch * self.new


def new_tokens(phase: Num, seq_len: Num, spec_k: Num | None) -> Num:
    """``Q`` for a phase code (index into :data:`PHASES`): ``S``, ``1`` or ``K``.

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
        return new * (attended - new) + new * (new + 1) // 2
    return new * attended


def make_step(shape: Shape) -> Step:
    """The :class:`Step` of a shape: ``Q`` from the phase, ``T = S``, ``P`` from :func:`scored_pairs`
    (or, under a tree mask, ``Q·(T−Q)`` plus the shape's ``tree_pairs``: :mod:`rooflax.trees`),
    and the LM head's tokens (``B``, or ``B·K`` in verify). The engine, :func:`rooflax.evaluate`
    and the benchmarks all build their steps here.
    """
    s = shape
    new = new_tokens(s.phase, s.seq_len, s.spec_k)
    verify = s.phase == 2
    pairs = (scored_pairs(new, s.seq_len, s.causal) * (s.tree_pairs == 0)
             + (new * (s.seq_len - new) + s.tree_pairs) * (s.tree_pairs != 0))
    return Step(batch=s.batch, seq_len=s.seq_len, new=new, attended=s.seq_len,
                pairs=pairs, hidden=s.hidden, heads=s.heads,
                kv_heads=s.kv_heads, head_dim=s.head_dim, intermediate=s.intermediate, vocab=s.vocab,
                logits_tokens=s.batch * (s.spec_k * verify + (s.phase != 2)), layers=s.layers,
                w=s.w, a=s.a, k=s.k, gated_mlp=s.gated_mlp, tied_embeddings=s.tied_embeddings,
                fused_attention=s.fused_attention)


def _linear(tokens: Num, k_in: Num, n_out: Num, w: Num, a: Num) -> tuple[Num, Num]:
    """``[M, K] × [K, N]``: ``2·M·K·N`` FLOPs; weights, input and output bytes."""
    return 2 * tokens * k_in * n_out, w * k_in * n_out + a * tokens * k_in + a * tokens * n_out


def _gemm(count: Num, m: Num, n: Num, k: Num) -> tuple[Gemm, ...]:
    return (Gemm(count, m, n, k),)


def qkv_proj(s: Step):
    """``h → (H+2G)d``; Q is written as an activation, K and V to the cache at ``k`` bytes."""
    m, kv_out = s.tokens, 2 * s.kv_heads * s.head_dim
    out = (s.heads + 2 * s.kv_heads) * s.head_dim
    flops = 2 * m * s.hidden * out
    return flops, s.w * s.hidden * out + s.a * m * s.hidden + s.a * m * s.heads * s.head_dim + s.k * m * kv_out


def o_proj(s: Step):
    """``Hd → h``."""
    return _linear(s.tokens, s.heads * s.head_dim, s.hidden, s.w, s.a)


def gate_proj(s: Step):
    """``h → I``."""
    return _linear(s.tokens, s.hidden, s.intermediate, s.w, s.a)


up_proj = gate_proj


def down_proj(s: Step):
    """``I → h``."""
    return _linear(s.tokens, s.intermediate, s.hidden, s.w, s.a)


def qk(s: Step):
    """Scores ``QKᵀ``: ``2·B·H·P·d``; reads Q and the K cache once per KV head, writes scores."""
    return (2 * s.batch * s.heads * s.pairs * s.head_dim,
            s.a * s.batch * s.heads * s.new * s.head_dim + s.k * s.batch * s.kv_heads * s.attended * s.head_dim
            + s.a * s.batch * s.heads * s.pairs)


def softmax(s: Step):
    """Row softmax of the scores: 5 FLOPs a score (max, subtract, exp, sum, divide); read and write."""
    scores = s.batch * s.heads * s.pairs
    return 5 * scores, 2 * s.a * scores


def pv(s: Step):
    """Probabilities times V: ``2·B·H·P·d``; reads probabilities and the V cache, writes O."""
    return (2 * s.batch * s.heads * s.pairs * s.head_dim,
            s.a * s.batch * s.heads * s.pairs + s.k * s.batch * s.kv_heads * s.attended * s.head_dim
            + s.a * s.batch * s.heads * s.new * s.head_dim)


def attention(s: Step):
    """Fused attention (qk, softmax, pv in one kernel): reads Q, K, V once and writes O once."""
    (f_qk, _), (f_sm, _), (f_pv, _) = qk(s), softmax(s), pv(s)
    q_and_o = 2 * s.a * s.batch * s.heads * s.new * s.head_dim
    return f_qk + f_sm + f_pv, q_and_o + 2 * s.k * s.batch * s.kv_heads * s.attended * s.head_dim


def rms_norm(s: Step):
    """RMSNorm over ``h``: 4 FLOPs an element (square, sum, scale, weight); read, write, weight."""
    elements = s.tokens * s.hidden
    return 4 * elements, 2 * s.a * elements + s.a * s.hidden


def residual(s: Step):
    """Residual add: one FLOP an element; two reads and a write."""
    elements = s.tokens * s.hidden
    return elements, 3 * s.a * elements


def silu_mul(s: Step):
    """``silu(gate)·up``: 5 FLOPs an element (sigmoid as exp, add, divide; two multiplies)."""
    elements = s.tokens * s.intermediate
    return 5 * elements, 3 * s.a * elements


def silu(s: Step):
    """``silu(up)`` of a non-gated MLP: 4 FLOPs an element; read and write."""
    elements = s.tokens * s.intermediate
    return 4 * elements, 2 * s.a * elements


def rotary(s: Step):
    """Rotary embedding of Q and K: 3 FLOPs an element; Q and K read and written, cos/sin read."""
    m, d = s.tokens, s.head_dim
    return (3 * m * (s.heads + s.kv_heads) * d,
            2 * s.a * m * s.heads * d + 2 * s.k * m * s.kv_heads * d + s.a * s.new * d)


def lm_head(s: Step):
    """Once per model: ``h → V`` on the last token of each sequence (``B·K`` in verify)."""
    return _linear(s.logits_tokens, s.hidden, s.vocab, s.w, s.a)


def _scores_gemm(s: Step) -> tuple[Gemm, ...]:
    """``QKᵀ`` per sequence and KV head, the ``H/G`` query heads of a group stacked into M."""
    return _gemm(s.batch * s.kv_heads, s.heads // s.kv_heads * s.new, s.attended, s.head_dim)


def _values_gemm(s: Step) -> tuple[Gemm, ...]:
    """``PV`` per sequence and KV head: ``[(H/G)·Q, T] × [T, d]``."""
    return _gemm(s.batch * s.kv_heads, s.heads // s.kv_heads * s.new, s.head_dim, s.attended)


def _qkv_gemm(s: Step) -> tuple[Gemm, ...]:
    return _gemm(1, s.tokens, (s.heads + 2 * s.kv_heads) * s.head_dim, s.hidden)


def _o_gemm(s: Step) -> tuple[Gemm, ...]:
    return _gemm(1, s.tokens, s.hidden, s.heads * s.head_dim)


def _up_gemm(s: Step) -> tuple[Gemm, ...]:
    return _gemm(1, s.tokens, s.intermediate, s.hidden)


def _down_gemm(s: Step) -> tuple[Gemm, ...]:
    return _gemm(1, s.tokens, s.hidden, s.intermediate)


def _attention_gemms(s: Step) -> tuple[Gemm, ...]:
    return _scores_gemm(s) + _values_gemm(s)


def _lm_head_gemm(s: Step) -> tuple[Gemm, ...]:
    return _gemm(1, s.logits_tokens, s.vocab, s.hidden)


@dataclass(frozen=True, slots=True)
class OpDef:
    """One operation: its frame name, chart group, cost function, and when it exists."""

    name: str
    group: str
    cost: Callable[[Step], tuple[Num, Num]]
    gemms: Callable[[Step], tuple[Gemm, ...]] = lambda s: ()  # matrix products run, for tile/wave quantization
    fused: bool | None = None  # True: only with fused attention; False: only without
    gated: bool | None = None  # likewise for the gated MLP



_LAYER_OPS = (
    OpDef("attn_norm", "elementwise", rms_norm),
    OpDef("qkv_proj", "qkv mlp", qkv_proj, _qkv_gemm),
    OpDef("rotary", "elementwise", rotary),
    OpDef("qk", "qk/pv", qk, _scores_gemm, fused=False),
    OpDef("softmax", "elementwise", softmax, fused=False),
    OpDef("pv", "qk/pv", pv, _values_gemm, fused=False),
    OpDef("attention", "qk/pv", attention, _attention_gemms, fused=True),
    OpDef("o_proj", "qkv mlp", o_proj, _o_gemm),
    OpDef("attn_residual", "elementwise", residual),
    OpDef("mlp_norm", "elementwise", rms_norm),
    OpDef("gate_proj", "up/gate/down", gate_proj, _up_gemm, gated=True),
    OpDef("up_proj", "up/gate/down", up_proj, _up_gemm),
    OpDef("silu_mul", "elementwise", silu_mul, gated=True),
    OpDef("silu", "elementwise", silu, gated=False),
    OpDef("down_proj", "up/gate/down", down_proj, _down_gemm),
    OpDef("mlp_residual", "elementwise", residual),
)
LM_HEAD = OpDef("lm_head", "lm_head", lm_head, _lm_head_gemm)

#: Every op name, in frame order (the ``op`` enum).
OP_NAMES = (*tuple(op.name for op in _LAYER_OPS), LM_HEAD.name)


def layer_ops(*, gated_mlp: bool = True, fused_attention: bool = False) -> tuple[OpDef, ...]:
    """The ops of one layer followed by the once-per-model ``lm_head``, in frame order."""
    chosen = tuple(
        op for op in _LAYER_OPS
        if op.fused in (None, fused_attention) and op.gated in (None, gated_mlp)
    )
    return (*chosen, LM_HEAD)


def op_costs(step: Step) -> tuple[tuple[OpDef, Num, Num], ...]:
    """``(op, flops, bytes)`` for every op of the step's layer, then ``lm_head``, in frame order."""
    return tuple((op, *op.cost(step)) for op in layer_ops(gated_mlp=step.gated_mlp,
                                                          fused_attention=step.fused_attention))
