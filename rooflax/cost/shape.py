"""The shape of one configuration, as one pytree: what every cost in rooflax depends on.

A :class:`Shape` is one grid point of one model in one phase, with the byte sizes of its
dtype. Its numbers are pytree leaves; its structural choices (gated MLP, tied
embeddings, fused attention, causal counting) are static fields, so they pick the
compiled function instead of being traced. The same shape serves every caller:

- the engine builds one per hidden size on the host (:meth:`Shape.of`), stacks them into
  tables, gathers one per grid point on the device and hands them to ``jax.vmap``;
- :func:`rooflax.evaluate` fills one with exact Python integers;
- the benchmarks fill one with numpy arrays.

Each then calls the one function :func:`rooflax.cost.ops.make_step`, which turns a shape
into the symbols of the counting contract (``Q``, ``T``, ``P``, ``M``, ...).

To add a field (``experts``, ``tp``, ...):

1. declare it below: a number is a plain field (a leaf), a structural choice is
   ``field(metadata={"static": True})``;
2. say where its value comes from: a field of :class:`rooflax.Model` of the same name is
   copied by :meth:`Shape.of` without further code; anything else is a keyword of
   :meth:`Shape.of` (and, for a new sweep axis, the engine decodes it from the flat index
   next to ``batch`` and ``seq_len``);
3. use it in :func:`rooflax.cost.ops.make_step` or a cost function.

Nothing else copies fields by hand.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

import jax

from rooflax.config.models import LayerKind, Model
from rooflax.names import LAYOUT, PHASES

if TYPE_CHECKING:
    from rooflax.config.dtypes import DtypePolicy

__all__ = ["OP_FLAGS", "Shape", "absorbs", "op_flags"]

Num = Any  # a Python number, a numpy array or a jnp array (traced or not)

#: The static fields that choose which ops a layer has (the keywords of :func:`rooflax.cost.ops.layer_ops`),
#: derived from a model and a layout only by :func:`op_flags`.
OP_FLAGS = ("gated_mlp", "fused_attention", "kinds", "shared_mlp", "mla", "absorbed", "comm")


def absorbs(phase: str, mla_decode: str) -> bool:
    """Whether latent attention runs weight-absorbed in ``phase``: in decode and verify when
    ``mla_decode`` is ``"absorbed"``; prefill always up-projects (:mod:`rooflax.cost.ops`)."""
    return phase != "prefill" and mla_decode == "absorbed"


def op_flags(
    model: Model,
    *,
    fused_attention: bool,
    absorbed: bool = False,
    tp: int = 1,
    pp: int = 1,
    ep: int = 1,
) -> dict[str, Any]:
    """The op-set flags of ``model`` under the layout ``(tp, pp, ep)``, keyed by :data:`OP_FLAGS`.

    ``kinds``: the model's layer kinds (:attr:`rooflax.Model.layer_kinds`), each a layer's op
    set; ``shared_mlp``: a dense MLP (the shared experts) beside the routed experts of a MoE
    layer; ``mla``: multi-head latent attention; ``absorbed``: latent attention with its
    up-projections absorbed (``absorbed`` given and the model's attention latent:
    :func:`absorbs`); ``comm``: the degrees above 1, whose collectives exist.

    >>> from rooflax import get_model
    >>> flags = op_flags(get_model("mixtral-8x7b"), fused_attention=False, tp=2)
    >>> flags["kinds"], flags["shared_mlp"], flags["comm"]
    ((LayerKind(attention='full', mlp='moe'),), False, ('tp',))
    """
    return {
        "gated_mlp": model.gated_mlp,
        "fused_attention": fused_attention,
        "kinds": tuple(kind for kind, _ in model.layer_kinds),
        "shared_mlp": model.shared_intermediate > 0,
        "mla": model.mla,
        "absorbed": model.mla and absorbed,
        "comm": tuple(name for name, degree in zip(LAYOUT, (tp, pp, ep), strict=True) if degree > 1),
    }


def _static(default: bool) -> Any:
    return field(default=default, metadata={"static": True})


@jax.tree_util.register_dataclass
@dataclass(frozen=True, slots=True, kw_only=True)
class Shape:
    """One configuration: grid coordinates, model shape and dtype byte sizes.

    Numeric fields are leaves (Python numbers, or arrays of the same length under
    ``vmap``); the boolean fields are static. Build one with :meth:`Shape.of`.
    """

    batch: Num  # B
    seq_len: Num  # S, after the step
    phase: Num  # index into rooflax.names.PHASES
    spec_k: Num  # K in verify, 0 otherwise
    hidden: Num  # h
    heads: Num  # H
    kv_heads: Num  # G
    head_dim: Num  # d
    intermediate: Num  # I
    vocab: Num  # V
    layers: Num  # L
    w: Num  # the weights' format: bytes per element, or a block-scaled Storage (rooflax.config.dtypes.tensor_bytes)
    a: Num  # the activations'
    k: Num  # the KV cache's
    experts: Num = 0  # E, routed experts per layer (0: dense)
    experts_per_token: Num = 0  # experts each token is routed to
    shared_experts: Num = 0
    moe_intermediate: Num = 0  # each expert's width
    routing_experts: Num = 0  # E_eff, the equally likely experts the router spreads tokens over (experts: uniform)
    tp: Num = 1  # tensor-parallel degree
    pp: Num = 1  # pipeline stages
    ep: Num = 1  # expert-parallel degree
    tree_pairs: Num = 0  # verify with a tree mask: scores kept among the candidates (rooflax.trees); 0: none
    shared_intermediate: Num = 0  # the shared experts' width in all (a MoE layer's dense MLP)
    window: Num = 0  # W, the tokens a sliding layer attends (0: no sliding layers)
    kind_layers: tuple[Num, ...] = ()  # layers of each of ``kinds`` (empty: all ``layers`` of the one kind)
    stages: tuple[tuple[Num, ...], ...] = ()  # layers of each kind per pipeline stage, the last first (Model.stages)
    q_lora_rank: Num = 0  # r_q, multi-head latent attention's query latent (rooflax.cost.ops)
    kv_lora_rank: Num = 0  # r_kv, its cached latent
    qk_nope_head_dim: Num = 0  # d_n
    qk_rope_head_dim: Num = 0  # d_r
    v_head_dim: Num = 0  # d_v
    gated_mlp: bool = _static(True)
    tied_embeddings: bool = _static(False)
    fused_attention: bool = _static(False)
    causal: bool = _static(False)
    attention_sinks: bool = _static(False)  # a learned sink logit per query head in every softmax
    kinds: tuple[LayerKind, ...] = field(default=(LayerKind(),), metadata={"static": True})  # the layer kinds
    shared_mlp: bool = _static(False)  # a dense MLP (the shared experts) beside a MoE layer's routed experts
    mla: bool = _static(False)  # multi-head latent attention
    absorbed: bool = _static(False)  # latent attention with its up-projections absorbed (decode, verify)
    comm: tuple[str, ...] = field(default=(), metadata={"static": True})  # degrees above 1: "tp", "pp", "ep"

    @classmethod
    def of(
        cls,
        model: Model,
        dtype: DtypePolicy,
        *,
        phase: str,
        batch: Num,
        seq_len: Num,
        spec_k: Num | None = None,
        fused_attention: bool = False,
        causal: bool = False,
        tp: int = 1,
        pp: int = 1,
        ep: int = 1,
        tree_pairs: Num = 0,
        mla_decode: str = "absorbed",
    ) -> Shape:
        """The shape of ``model`` at one point in ``phase``; every model field the shape declares is copied.

        ``tp``, ``pp`` and ``ep`` are Python integers (the parallel layout of a sweep step):
        they are leaves, and which of them exceed 1 is the static ``comm`` (:func:`op_flags`).
        ``mla_decode`` (:data:`rooflax.names.MLA_DECODE`) is how latent attention runs decode
        and verify (:func:`absorbs`).

        >>> from rooflax import get_dtype, get_model
        >>> s = Shape.of(get_model("llama-13b"), get_dtype("fp16"), phase="decode", batch=1, seq_len=2048)
        >>> s.heads, s.phase, s.spec_k, s.gated_mlp
        (40, 1, 0, True)
        """
        from_model = {name: getattr(model, name) for name in _FROM_MODEL}
        return cls(
            **from_model,
            batch=batch,
            seq_len=seq_len,
            phase=PHASES.index(phase),
            spec_k=0 if spec_k is None else spec_k,
            w=dtype.weight.storage,
            a=dtype.act.storage,
            k=dtype.kv.storage,
            tree_pairs=tree_pairs,
            causal=causal,
            tp=tp,
            pp=pp,
            ep=ep,
            window=model.sliding_window or 0,
            kind_layers=tuple(count for _, count in model.layer_kinds),
            stages=model.stages(pp),
            **op_flags(
                model, fused_attention=fused_attention, absorbed=absorbs(phase, mla_decode), tp=tp, pp=pp, ep=ep
            ),
        )


#: The shape's fields that the model supplies: every one with a :class:`Model` field of the same name
#: (the op-set flags come from :func:`op_flags`).
_FROM_MODEL = tuple(f.name for f in fields(Shape) if f.name in {g.name for g in fields(Model)} - set(OP_FLAGS))
