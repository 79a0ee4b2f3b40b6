"""Decoder-only transformer shapes: the Llama family presets, TOML and config.json files.

``toy-llama`` is synthetic (hidden 256, 4 layers, 4 heads of 64, 2 KV heads, intermediate
768, vocab 1024; 3.67 M parameters): a model to try things with in seconds on a CPU.

A user model in TOML::

    name = "my-llama"
    hidden = 4096
    layers = 32
    heads = 32
    kv_heads = 8         # optional, defaults to heads
    head_dim = 128       # optional, defaults to hidden / heads
    intermediate = 14336
    vocab = 32000
    gated_mlp = true     # optional
    tied_embeddings = false  # optional
    experts = 8          # optional, mixture of experts: routed experts per layer (0: dense)
    experts_per_token = 2    # with experts: experts each token is routed to (k)
    shared_experts = 0   # optional: experts every token passes through
    moe_intermediate = 14336  # optional: each expert's MLP width (default: intermediate)
    routing_experts = 4.2    # optional: a measured router's effective experts (default: experts, uniform)
    shared_intermediate = 5632  # optional: the shared experts' width in all (default shared_experts · moe_intermediate)
    first_dense = 3      # optional: the first layers have the dense MLP (first_k_dense_replace)
    moe_every = 2        # optional: experts in layer i when (i + 1) % moe_every == 0 (interleave_moe_layer_step)
    sliding_window = 4096  # optional: the tokens a sliding layer attends (a positive number; none: full attention)
    layer_types = ["sliding", "full"]  # optional, one per layer (default: all sliding with a window, else full)
    attention_sinks = false  # optional: a learned sink logit per query head (gpt-oss)
    attention_bias = false   # optional: q, k, v, o biases (parameters only)
    mlp_bias = false         # optional: biases on every MLP product, router and experts (parameters only)
    q_lora_rank = 1536       # optional, multi-head latent attention (all five or none; rooflax.cost.ops):
    kv_lora_rank = 512       #   the query latent, the cached latent,
    qk_nope_head_dim = 128   #   the query-key width without rotary embedding,
    qk_rope_head_dim = 64    #   with it (head_dim defaults to their sum; kv_heads must equal heads),
    v_head_dim = 128         #   and the value width
    router_bias = false      # optional: a learned bias per expert in the router (parameters only)
    mtp_layers = 0           # optional: multi-token prediction modules (not in the parameter count)

A Hugging Face ``config.json`` is read offline with the same meaning
(``hidden_size``, ``num_hidden_layers``, ``num_attention_heads``,
``num_key_value_heads``, ``head_dim``, ``intermediate_size``, ``vocab_size``,
``tie_word_embeddings``; for mixtures of experts ``num_local_experts`` or
``num_experts`` or ``n_routed_experts``, ``num_experts_per_tok``,
``moe_intermediate_size``, and ``n_shared_experts`` or
``shared_expert_intermediate_size`` (one shared expert of that width); the layer pattern
from ``layer_types``, ``sliding_window``, ``sliding_window_pattern``,
``first_k_dense_replace``, ``interleave_moe_layer_step``, ...: :func:`hf_table`); for
multi-head latent attention (DeepSeek-V2/V3, Kimi K2) ``q_lora_rank``, ``kv_lora_rank``,
``qk_nope_head_dim``, ``qk_rope_head_dim`` and ``v_head_dim`` (a config with
``kv_lora_rank`` needs all five; its ``head_dim`` is ignored), ``topk_method = "noaux_tc"``
as ``router_bias`` and ``num_nextn_predict_layers`` as ``mtp_layers``.

The layers may differ (:attr:`Model.layer_pattern`): each is a :class:`LayerKind`, its
attention ``full`` or ``sliding`` (the last ``sliding_window`` tokens) and its MLP
``dense`` or ``moe``; the cost model prices each kind once and weighs it by its layers.

Mixture of experts: every layer's MLP is ``experts`` routed experts (each a gated MLP of
width ``moe_intermediate``, ``k = experts_per_token`` of them per token, chosen by a
router ``h → experts``) plus ``shared_experts`` experts that every token passes through,
priced as one dense MLP of width ``shared_experts · moe_intermediate``. ``intermediate``
is then the config's dense width and is not used by the layers.

``routing_experts`` (``E_eff``, TOML only: a ``config.json`` does not carry it) is how
many equally likely experts the router spreads tokens over, ``experts_per_token`` ≤
``E_eff`` ≤ ``experts``; it may be fractional, and defaults to ``experts`` (uniform
routing). It sets only the experts whose weights are read (:mod:`rooflax.ops`); memory
still holds every expert. Measure it from a router histogram: with ``p_i`` the share of
the token-expert assignments that go to expert ``i`` (``Σ p_i = 1``, over a
representative batch; the mean over layers), ``E_eff = 1/Σ p_i²``. That choice makes the
touched count exact for one token and to second order in the token count ``T`` (the
expected number of token pairs that share an expert), which ``exp(H(p))`` does not;
``1/Σ p_i² ≥ k`` always holds because no expert takes more than ``1/k`` of the
assignments. Past that order it under-counts: a rarely chosen expert is touched
eventually, so at large ``T`` the true count tends to every expert with ``p_i > 0``.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from rooflax.config._files import read_text
from rooflax.errors import SpecError, boolean, check_keys, positive_float, positive_int, unknown_name
from rooflax.names import ATTENTION_KINDS, LAYER_KINDS, MLP_KINDS

__all__ = [
    "MLA_FIELDS",
    "MODELS",
    "MOE_FIELDS",
    "LayerKind",
    "Model",
    "embedding_parameters",
    "get_model",
    "hf_table",
    "layer_parameters",
    "llama_intermediate",
    "llama_scaled",
    "load_model",
    "parameter_count",
]


def llama_intermediate(hidden):
    """The Llama MLP width for ``hidden``: ``8h/3`` rounded up to a multiple of 256.

    Works on Python ints and on integer jnp arrays alike.

    >>> [llama_intermediate(h) for h in (4096, 5120, 6656, 8192)]
    [11008, 13824, 17920, 22016]
    """
    return (8 * hidden + 767) // 768 * 256


def llama_scaled(hidden, head_dim, group_size):
    """``(heads, kv_heads, intermediate)`` of a Llama-style model scaled to ``hidden`` (DESIGN.md).

    ``head_dim`` stays, ``heads = hidden / head_dim``, ``kv_heads`` keeps ``group_size``
    query heads per KV head, ``intermediate`` follows :func:`llama_intermediate`. Works on
    Python ints and on jnp arrays alike (:meth:`Model.at_hidden`, :mod:`rooflax.crossover`).

    >>> llama_scaled(4096, 128, 8)
    (32, 4, 11008)
    """
    heads = hidden // head_dim
    return heads, heads // group_size, llama_intermediate(hidden)


def layer_parameters(
    *,
    hidden: Any,
    heads: Any,
    kv_heads: Any,
    head_dim: Any,
    intermediate: Any,
    gated_mlp: bool = True,
    experts: Any = 0,
    shared_experts: Any = 0,
    moe_intermediate: Any = 0,
    shared_intermediate: Any = None,
    router_experts: Any = None,
    moe: bool | None = None,
    attention_sinks: bool = False,
    attention_bias: bool = False,
    mlp_bias: bool = False,
    q_lora_rank: Any = 0,
    kv_lora_rank: Any = 0,
    qk_nope_head_dim: Any = 0,
    qk_rope_head_dim: Any = 0,
    v_head_dim: Any = 0,
    mla: bool | None = None,
    router_bias: bool = False,
) -> Any:
    """Parameters of one decoder layer: attention, MLP (dense, or experts and a router), two norms.

    Works on Python ints and jnp arrays; the booleans are Python bools. With ``moe`` (default:
    ``experts > 0``) the MLP is ``experts`` routed experts of width ``moe_intermediate``, the
    shared experts (``shared_intermediate`` wide in all; default ``shared_experts ·
    moe_intermediate``) and a router ``h → experts``; else a dense MLP of width ``intermediate``.

    Args:
        router_experts: the router's outputs when they differ from ``experts`` (a device
            holding some of the experts still holds the whole router; the active parameters
            of a token count ``k`` experts and the whole router).
        attention_sinks: one learned sink logit per query head (gpt-oss).
        attention_bias: q, k, v and o projections with biases (``(H+2G)d + h``).
        mlp_bias: every MLP product with a bias, the router's and the experts' included
            (``2I + h`` a gated MLP of width ``I``, ``I + h`` an ungated one).
        q_lora_rank, kv_lora_rank, qk_nope_head_dim, qk_rope_head_dim, v_head_dim: multi-head
            latent attention's widths ``r_q``, ``r_kv``, ``d_n``, ``d_r``, ``d_v``
            (:mod:`rooflax.cost.ops`): its attention holds ``h·r_q`` (query down-projection),
            ``r_q`` (its norm), ``r_q·H(d_n + d_r)`` (query up-projection), ``h·(r_kv + d_r)``
            (KV down-projection, the rotary key included), ``r_kv`` (the latent's norm),
            ``r_kv·H(d_n + d_v)`` (KV up-projection) and ``H·d_v·h`` (output); ``kv_heads``
            and ``head_dim`` are then not used.
        mla: whether the attention is latent (default: ``kv_lora_rank > 0``; give it when the
            ranks are traced arrays).
        router_bias: a MoE layer's router has one learned bias per expert (DeepSeek-V3's
            ``e_score_correction_bias``), ``E`` parameters.

    >>> layer_parameters(hidden=4096, heads=32, kv_heads=32, head_dim=128, intermediate=11008)  # Llama 7B
    202383360
    """
    if bool(kv_lora_rank) if mla is None else mla:
        r_q, r_kv, rope = q_lora_rank, kv_lora_rank, qk_rope_head_dim
        attention = (
            hidden * r_q
            + r_q
            + r_q * heads * (qk_nope_head_dim + rope)
            + hidden * (r_kv + rope)
            + r_kv
            + r_kv * heads * (qk_nope_head_dim + v_head_dim)
            + heads * v_head_dim * hidden
        )
    else:
        attention = hidden * (heads + 2 * kv_heads) * head_dim + heads * head_dim * hidden
    if attention_bias:
        attention = attention + (heads + 2 * kv_heads) * head_dim + hidden
    if attention_sinks:
        attention = attention + heads
    matrices = 3 if gated_mlp else 2
    biases = (matrices - 1) if mlp_bias else 0  # bias elements per unit of an MLP's width (and + h per MLP)
    if bool(experts) if moe is None else moe:
        routed = experts if router_experts is None else router_experts
        shared = shared_experts * moe_intermediate if shared_intermediate is None else shared_intermediate
        mlp = matrices * hidden * (moe_intermediate * experts + shared) + hidden * routed
        if router_bias:
            mlp = mlp + routed
        if mlp_bias:
            shared_mlps = shared_experts if shared_intermediate is None else (shared_intermediate != 0)
            mlp = mlp + biases * (moe_intermediate * experts + shared) + hidden * (experts + shared_mlps) + routed
    else:
        mlp = matrices * hidden * intermediate
        if mlp_bias:
            mlp = mlp + biases * intermediate + hidden
    return attention + mlp + 2 * hidden


def parameter_count(
    *,
    hidden: Any,
    layers: Any,
    heads: Any,
    kv_heads: Any,
    head_dim: Any,
    intermediate: Any,
    vocab: Any,
    gated_mlp: bool = True,
    tied_embeddings: bool = False,
    experts: Any = 0,
    shared_experts: Any = 0,
    moe_intermediate: Any = 0,
    router_experts: Any = None,
    embedding_copies: Any = None,
    moe: bool | None = None,
) -> Any:
    """Parameters of a Llama-style decoder of ``layers`` alike layers (embeddings, layers, final norm, LM head).

    Works on Python ints and jnp arrays; gated_mlp and tied_embeddings are Python bools. One
    layer is :func:`layer_parameters` (its ``experts``, ``shared_experts``, ``moe_intermediate``,
    ``router_experts`` and ``moe`` mean the same); a model whose layers differ sums them
    (:attr:`Model.params`).

    Args:
        embedding_copies: vocabulary matrices held (default 1 tied, 2 untied; the worst
            device of a pipeline holds one).

    >>> parameter_count(hidden=4096, layers=32, heads=32, kv_heads=8, head_dim=128, intermediate=14336,
    ...                 vocab=32000, experts=8, moe_intermediate=14336)  # Mixtral-8x7B
    46702792704
    """
    per_layer = layer_parameters(
        hidden=hidden,
        heads=heads,
        kv_heads=kv_heads,
        head_dim=head_dim,
        intermediate=intermediate,
        gated_mlp=gated_mlp,
        experts=experts,
        shared_experts=shared_experts,
        moe_intermediate=moe_intermediate,
        router_experts=router_experts,
        moe=moe,
    )
    return layers * per_layer + embedding_parameters(
        hidden=hidden, vocab=vocab, tied_embeddings=tied_embeddings, embedding_copies=embedding_copies
    )


def embedding_parameters(*, hidden: Any, vocab: Any, tied_embeddings: bool, embedding_copies: Any = None) -> Any:
    """The vocabulary matrices (``embedding_copies``: default 1 tied, 2 untied) and the final norm."""
    copies = (1 if tied_embeddings else 2) if embedding_copies is None else embedding_copies
    return vocab * hidden * copies + hidden


@dataclass(frozen=True, slots=True, kw_only=True)
class LayerKind:
    """What a layer is made of: its attention (:data:`~rooflax.names.ATTENTION_KINDS`) and its MLP
    (:data:`~rooflax.names.MLP_KINDS`). A model is a list of them (:attr:`Model.layer_pattern`).

    >>> LayerKind(attention="sliding", mlp="moe").name
    'sliding/moe'
    """

    attention: str = "full"
    mlp: str = "dense"

    def __post_init__(self) -> None:
        if self.attention not in ATTENTION_KINDS:
            raise unknown_name("layer kind: attention", self.attention, ATTENTION_KINDS)
        if self.mlp not in MLP_KINDS:
            raise unknown_name("layer kind: mlp", self.mlp, MLP_KINDS)

    @property
    def name(self) -> str:
        """``attention/mlp``: the long frame's ``layer`` value."""
        return f"{self.attention}/{self.mlp}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Model:
    """Shape of a decoder-only model. Immutable and hashable; validated on construction."""

    name: str
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int
    gated_mlp: bool = True
    tied_embeddings: bool = False
    experts: int = 0
    experts_per_token: int = 0
    shared_experts: int = 0
    moe_intermediate: int = 0
    routing_experts: float | None = None  # None: experts (uniform routing); 0 for a dense model
    shared_intermediate: int = 0  # the shared experts' width in all (0: shared_experts · moe_intermediate)
    first_dense: int = 0  # the first layers have a dense MLP (first_k_dense_replace)
    moe_every: int = 1  # experts in every n-th layer after those: layer i when (i + 1) % n == 0
    sliding_window: int | None = None  # W: the tokens a sliding layer attends (None: no sliding layers)
    layer_types: tuple[str, ...] | None = None  # per layer "full" or "sliding" (None: all sliding with a window)
    attention_sinks: bool = False  # a learned sink logit per query head in every softmax (gpt-oss)
    attention_bias: bool = False  # q, k, v and o with biases (parameters only)
    mlp_bias: bool = False  # every MLP product (router, experts) with a bias (parameters only)
    q_lora_rank: int = 0  # multi-head latent attention (all five 0: standard attention)
    kv_lora_rank: int = 0
    qk_nope_head_dim: int = 0
    qk_rope_head_dim: int = 0
    v_head_dim: int = 0
    router_bias: bool = False  # one learned bias per expert in the router (parameters only)
    mtp_layers: int = 0  # multi-token prediction modules (num_nextn_predict_layers), not in params
    label: str = ""
    source: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        where = f"model {self.name!r}"
        if not isinstance(self.name, str) or not self.name:
            raise SpecError(f"model.name: expected a non-empty string, got {self.name!r}")
        for key in ("hidden", "layers", "heads", "kv_heads", "head_dim", "intermediate", "vocab"):
            object.__setattr__(self, key, positive_int(f"{where}: {key}", getattr(self, key)))
        self._check_experts(where)
        self._check_mla(where)
        self._check_extras(where)
        self._check_layers(where)
        for key in ("gated_mlp", "tied_embeddings", "attention_sinks", "attention_bias", "mlp_bias", "router_bias"):
            object.__setattr__(self, key, boolean(f"{where}: {key}", getattr(self, key)))
        for key in ("label", "source"):
            if not isinstance(getattr(self, key), str):
                raise SpecError(f"{where}: {key}: expected a string, got {getattr(self, key)!r}")
        if self.heads % self.kv_heads:
            raise SpecError(f"{where}: heads ({self.heads}) must be a multiple of kv_heads ({self.kv_heads})")
        if not self.label:
            object.__setattr__(self, "label", self.name)

    def _check_experts(self, where: str) -> None:
        """The mixture-of-experts fields: all zero (dense), or experts ≥ 1 with 1 ≤ k ≤ experts."""
        for key in MOE_FIELDS:
            value = getattr(self, key)
            if value != 0:
                object.__setattr__(self, key, positive_int(f"{where}: {key}", value))
        if not self.experts:
            given = [key for key in (*MOE_FIELDS[1:], "routing_experts", "shared_intermediate") if getattr(self, key)]
            if given:
                raise SpecError(
                    f"{where}: {given[0]} is {getattr(self, given[0])} but experts is 0; "
                    "give experts (routed experts per layer) or drop it"
                )
            object.__setattr__(self, "routing_experts", 0)
            return
        if not self.gated_mlp:
            raise SpecError(f"{where}: gated_mlp is false; a mixture of experts has gated experts (gated_mlp = true)")
        if not 1 <= self.experts_per_token <= self.experts:
            raise SpecError(
                f"{where}: experts_per_token is {self.experts_per_token}; expected 1 to experts ({self.experts})"
            )
        if not self.moe_intermediate:
            object.__setattr__(self, "moe_intermediate", self.intermediate)
        if self.shared_intermediate:
            object.__setattr__(self, "shared_experts", self.shared_experts or 1)
        else:
            object.__setattr__(self, "shared_intermediate", self.shared_experts * self.moe_intermediate)
        self._check_routing(where)

    def _check_mla(self, where: str) -> None:
        """The latent-attention fields: all zero (standard attention), or every one a positive integer,
        with ``kv_heads = heads`` and ``head_dim = qk_nope_head_dim + qk_rope_head_dim`` (its query-key width)."""
        given = [key for key in MLA_FIELDS if getattr(self, key) not in (0, None)]
        if not given:
            return
        for key in MLA_FIELDS:
            value = getattr(self, key)
            if value is None:
                raise SpecError(f"{where}: {key} is missing; multi-head latent attention needs {', '.join(MLA_FIELDS)}")
            object.__setattr__(self, key, positive_int(f"{where}: {key}", value))
        if self.kv_heads != self.heads:
            raise SpecError(
                f"{where}: kv_heads is {self.kv_heads}; multi-head latent attention up-projects a key and a value "
                f"for every head (kv_heads = heads = {self.heads})"
            )
        if self.head_dim != self.qk_nope_head_dim + self.qk_rope_head_dim:
            raise SpecError(
                f"{where}: head_dim is {self.head_dim}; with multi-head latent attention it is the query-key width "
                f"qk_nope_head_dim + qk_rope_head_dim = {self.qk_nope_head_dim + self.qk_rope_head_dim}"
            )
        if self.sliding_window is not None:
            raise SpecError(f"{where}: sliding_window with multi-head latent attention is not priced; drop one")

    def _check_extras(self, where: str) -> None:
        """``router_bias`` (a mixture of experts only) and ``mtp_layers`` (a whole number, 0 for none)."""
        object.__setattr__(self, "router_bias", boolean(f"{where}: router_bias", self.router_bias))
        if self.router_bias and not self.experts:
            raise SpecError(f"{where}: router_bias is true but experts is 0; a router bias needs experts")
        if self.mtp_layers != 0:
            object.__setattr__(self, "mtp_layers", positive_int(f"{where}: mtp_layers", self.mtp_layers))

    @property
    def mla(self) -> bool:
        """Whether the attention is multi-head latent attention (:mod:`rooflax.cost.ops`)."""
        return self.kv_lora_rank > 0

    def _check_layers(self, where: str) -> None:
        """The layer pattern: a window, the attention of each layer, the dense first and interleaved MoE layers."""
        if self.sliding_window is not None:
            try:
                object.__setattr__(
                    self, "sliding_window", positive_int(f"{where}: sliding_window", self.sliding_window)
                )
            except SpecError:
                raise SpecError(
                    f"{where}: sliding_window: expected a positive number of tokens (a window longer than any "
                    f"seq_len is fine; leave it out for full attention), got {self.sliding_window!r}"
                ) from None
        if self.layer_types is not None:
            types = self.layer_types
            if isinstance(types, str) or not isinstance(types, list | tuple):
                raise SpecError(f"{where}: layer_types: expected a list of layer types, got {types!r}")
            names = tuple(_ATTENTION_NAMES.get(t, t) if isinstance(t, str) else t for t in types)
            for i, name in enumerate(names):
                if name not in ATTENTION_KINDS:
                    raise unknown_name(f"{where}: layer_types[{i}]", types[i], [*ATTENTION_KINDS, *_ATTENTION_NAMES])
            if len(names) != self.layers:
                raise SpecError(
                    f"{where}: layer_types: {len(names)} entries for {self.layers} layers; expected one per layer"
                )
            if "sliding" in names and self.sliding_window is None:
                raise SpecError(f"{where}: layer_types has sliding layers but no sliding_window; give sliding_window")
            object.__setattr__(self, "layer_types", names)
        first = self.first_dense
        if isinstance(first, bool) or not isinstance(first, int) or not 0 <= first <= self.layers:
            raise SpecError(
                f"{where}: first_dense: expected 0 to layers ({self.layers}) dense first layers, got {first!r}"
            )
        object.__setattr__(self, "moe_every", positive_int(f"{where}: moe_every", self.moe_every))
        if not self.experts:
            given = [
                key for key in ("first_dense", "moe_every") if getattr(self, key) != (0 if key == "first_dense" else 1)
            ]
            if given:
                raise SpecError(
                    f"{where}: {given[0]} is {getattr(self, given[0])} but experts is 0; it places MoE layers, "
                    "give experts or drop it"
                )

    def _check_routing(self, where: str) -> None:
        """``routing_experts``: unset means ``experts``; else a number from ``experts_per_token`` to ``experts``."""
        if self.routing_experts is None:
            object.__setattr__(self, "routing_experts", self.experts)
            return
        spread = positive_float(f"{where}: routing_experts", self.routing_experts)
        if not self.experts_per_token <= spread <= self.experts:
            raise SpecError(
                f"{where}: routing_experts is {self.routing_experts}; expected experts_per_token "
                f"({self.experts_per_token}) to experts ({self.experts})"
            )
        object.__setattr__(self, "routing_experts", int(spread) if spread.is_integer() else spread)

    @property
    def layer_pattern(self) -> tuple[LayerKind, ...]:
        """Every layer's kind, in order: its attention from ``layer_types`` (all ``sliding`` when only
        ``sliding_window`` is given, else ``full``), its MLP ``moe`` from layer ``first_dense`` on, every
        ``moe_every``-th layer (layer ``i`` when ``(i + 1) % moe_every == 0``, as Llama 4's
        ``interleave_moe_layer_step`` and Qwen's ``decoder_sparse_step`` place them), else ``dense``.

        >>> [k.name for k in get_model("mixtral-8x7b").layer_pattern[:2]]
        ['full/moe', 'full/moe']
        """
        default = "full" if self.sliding_window is None else "sliding"
        attention = self.layer_types or (default,) * self.layers
        return tuple(
            LayerKind(
                attention=attention[i],
                mlp="moe" if self.experts and i >= self.first_dense and (i + 1) % self.moe_every == 0 else "dense",
            )
            for i in range(self.layers)
        )

    @property
    def layer_kinds(self) -> tuple[tuple[LayerKind, int], ...]:
        """The distinct layer kinds and how many layers each has, in :data:`~rooflax.names.LAYER_KINDS` order.

        >>> [(k.name, n) for k, n in get_model("llama-13b").layer_kinds]
        [('full/dense', 40)]
        """
        pattern = self.layer_pattern
        kinds = sorted(set(pattern), key=lambda kind: LAYER_KINDS.index(kind.name))
        return tuple((kind, pattern.count(kind)) for kind in kinds)

    def stages(self, pp: int) -> tuple[tuple[int, ...], ...]:
        """Layers of each kind (in :attr:`layer_kinds` order) on the pipeline's stages: the last stage
        first (it holds the LM head), then every other distinct stage. The layers are split in order
        into ``pp`` stages of ``layers / pp`` (:meth:`check_layout`).

        >>> get_model("llama-13b").stages(4)
        ((10,),)
        """
        kinds = [kind for kind, _ in self.layer_kinds]
        per_stage = self.layers // pp
        pattern = self.layer_pattern
        stages = [tuple(pattern[j * per_stage : (j + 1) * per_stage].count(kind) for kind in kinds) for j in range(pp)]
        return tuple(dict.fromkeys([stages[-1], *stages[:-1]]))

    def tp_fits(self, tp: int) -> bool:
        """Whether ``tp`` splits the heads, the KV heads (or replicates them) and the MLP widths evenly."""
        widths = [self.moe_intermediate, self.shared_intermediate] if self.experts else []
        if not self.experts or any(kind.mlp == "dense" for kind, _ in self.layer_kinds):
            widths.append(self.intermediate)
        heads = self.heads % tp == 0 and (self.kv_heads % tp == 0 or tp % self.kv_heads == 0)
        return heads and all(width % tp == 0 for width in widths)

    def check_layout(self, *, tp: int = 1, pp: int = 1, ep: int = 1) -> None:
        """Raise a one-line SpecError unless the parallel degrees divide this model (:mod:`rooflax.ops`)."""
        if not self.tp_fits(tp):
            allowed = [d for d in range(1, self.heads + 1) if self.tp_fits(d)]
            width = f"{self.moe_intermediate} expert width" if self.experts else f"{self.intermediate} intermediate"
            raise SpecError(
                f"tp: {tp} does not split {self.name}'s {self.heads} heads, {self.kv_heads} KV heads "
                f"and {width} evenly; allowed: {', '.join(map(str, allowed))}"
            )
        if pp > self.layers or self.layers % pp:
            raise SpecError(
                f"pp: {pp} does not divide {self.name}'s {self.layers} layers into equal stages; "
                f"allowed: divisors of {self.layers}"
            )
        if ep > 1 and not self.experts:
            raise SpecError(f"ep: {ep} needs a mixture of experts, and {self.name} is dense; allowed: 1")
        if self.experts and self.experts % ep:
            raise SpecError(
                f"ep: {ep} does not divide {self.name}'s {self.experts} experts; allowed: divisors of {self.experts}"
            )

    @property
    def group_size(self) -> int:
        """Query heads per KV head (1 for multi-head attention)."""
        return self.heads // self.kv_heads

    @property
    def params(self) -> int:
        """Parameter count: every layer's (:func:`layer_parameters`), the vocabulary matrices and the final norm."""
        return self._parameters(self.experts)

    @property
    def active_params(self) -> int:
        """Parameters a token passes through: as :attr:`params` with ``experts_per_token`` routed experts
        per MoE layer (the whole router and the shared experts), embeddings included (equal to
        :attr:`params` for a dense model)."""
        return self._parameters(self.experts_per_token)

    def _parameters(self, experts: int) -> int:
        """Parameters with ``experts`` routed experts in each MoE layer (the router keeps all of them)."""
        layers = sum(count * self.layer_parameters(kind, experts=experts) for kind, count in self.layer_kinds)
        return layers + embedding_parameters(hidden=self.hidden, vocab=self.vocab, tied_embeddings=self.tied_embeddings)

    @property
    def mtp_params(self) -> int:
        """Parameters of the multi-token prediction modules, not in :attr:`params` (DeepSeek-V3 technical
        report, arXiv 2412.19437, §2.2): each is one layer of the last layer's kind, the projection of the
        concatenated ``[RMSNorm(h); RMSNorm(embedding)]`` back to ``h`` (``2h·h``) and three norms (the
        two, and the shared head's); the embedding and the output head are the model's own.

        >>> get_model("deepseek-v3").mtp_params  # the weights' README: "11.5B unique parameters"
        11610068224
        """
        h = self.hidden
        return self.mtp_layers * (self.layer_parameters(self.layer_pattern[-1]) + 2 * h * h + 3 * h)

    def mtp_model(self) -> Model:
        """One multi-token prediction module as a one-layer model of the last layer's kind, sharing the
        vocabulary (its decode step prices the module's layer and the shared output head;
        :func:`rooflax.speculate` adds the projection and norms, :mod:`rooflax.cost.drafters`)."""
        if not self.mtp_layers:
            raise SpecError(
                f"mtp: {self.name} has no multi-token prediction module (mtp_layers 0); allowed: a "
                "model with mtp_layers (num_nextn_predict_layers), e.g. deepseek-v3"
            )
        last = self.layer_pattern[-1]
        return replace(
            self,
            name=f"{self.name}-mtp",
            label=f"{self.label} MTP module",
            layers=1,
            first_dense=0 if last.mlp == "moe" else int(bool(self.experts)),
            moe_every=1,
            layer_types=None if self.layer_types is None else (last.attention,),
            mtp_layers=0,
        )

    def layer_parameters(self, kind: LayerKind, *, experts: int | None = None) -> int:
        """Parameters of one layer of ``kind`` (:func:`layer_parameters`); ``experts``: routed experts held."""
        moe = kind.mlp == "moe"
        return layer_parameters(
            hidden=self.hidden,
            heads=self.heads,
            kv_heads=self.kv_heads,
            head_dim=self.head_dim,
            intermediate=self.intermediate,
            gated_mlp=self.gated_mlp,
            moe=moe,
            **(
                {
                    "experts": self.experts if experts is None else experts,
                    "router_experts": self.experts,
                    "moe_intermediate": self.moe_intermediate,
                    "shared_experts": self.shared_experts,
                    "shared_intermediate": self.shared_intermediate,
                }
                if moe
                else {}
            ),
            attention_sinks=self.attention_sinks,
            attention_bias=self.attention_bias,
            mlp_bias=self.mlp_bias,
            q_lora_rank=self.q_lora_rank,
            kv_lora_rank=self.kv_lora_rank,
            qk_nope_head_dim=self.qk_nope_head_dim,
            qk_rope_head_dim=self.qk_rope_head_dim,
            v_head_dim=self.v_head_dim,
            mla=self.mla,
            router_bias=self.router_bias,
        )

    def shape_kwargs(self) -> dict:
        """The keyword arguments of :func:`parameter_count` for this model."""
        return {
            k: getattr(self, k)
            for k in (
                "hidden",
                "layers",
                "heads",
                "kv_heads",
                "head_dim",
                "intermediate",
                "vocab",
                "gated_mlp",
                "tied_embeddings",
                *(("experts", "shared_experts", "moe_intermediate") if self.experts else ()),
            )
        }

    def check_hidden(self, hidden: int, where: str = "hidden") -> None:
        """Raise unless the model can be scaled to ``hidden`` (see :meth:`at_hidden`)."""
        hidden = positive_int(where, hidden)
        if hidden == self.hidden:
            return
        if self.experts or self.mla:
            kind = "a mixture of experts" if self.experts else "a model with latent attention"
            raise SpecError(
                f"{where}: {hidden} differs from {self.name}'s {self.hidden}; {kind} is not scaled "
                "(drop the hidden axis)"
            )
        if hidden % self.head_dim:
            raise SpecError(f"{where}: {hidden} is not a multiple of {self.name}'s head_dim {self.head_dim}")
        if (hidden // self.head_dim) % self.group_size:
            raise SpecError(
                f"{where}: {hidden} gives {hidden // self.head_dim} heads, not a multiple of "
                f"{self.name}'s {self.group_size} query heads per KV head"
            )

    def at_hidden(self, hidden: int) -> Model:
        """This model scaled to ``hidden`` as Llama scales (DESIGN.md).

        ``head_dim`` stays, ``heads = hidden / head_dim``, ``kv_heads`` keeps the
        ratio ``heads / kv_heads``, ``intermediate`` follows :func:`llama_intermediate`.
        The model's own hidden size returns the preset unchanged.
        """
        self.check_hidden(hidden)
        if hidden == self.hidden:
            return self
        heads, kv_heads, intermediate = llama_scaled(hidden, self.head_dim, self.group_size)
        return replace(
            self,
            name=f"{self.name}@h{hidden}",
            label=f"{self.label} @ h={hidden}",
            hidden=hidden,
            heads=heads,
            kv_heads=kv_heads,
            intermediate=intermediate,
        )

    def to_dict(self) -> dict:
        """A plain dict (the TOML layout) for metadata; the expert fields only for a mixture of experts,
        ``routing_experts`` only where it is not ``experts`` (so uniform routing keeps its metadata)."""
        moe = {key: getattr(self, key) for key in MOE_FIELDS} if self.experts else {}
        if self.routing_experts != self.experts:
            moe["routing_experts"] = self.routing_experts
        layers = {key: getattr(self, key) for key, default in _LAYER_DEFAULTS.items() if getattr(self, key) != default}
        if self.shared_intermediate != self.shared_experts * self.moe_intermediate:
            layers["shared_intermediate"] = self.shared_intermediate
        if "layer_types" in layers:
            layers["layer_types"] = list(self.layer_types or ())
        latent = {key: getattr(self, key) for key in MLA_FIELDS} if self.mla else {}
        latent.update({key: getattr(self, key) for key in ("router_bias", "mtp_layers") if getattr(self, key)})
        return {
            "name": self.name,
            "label": self.label,
            **self.shape_kwargs(),
            **moe,
            **layers,
            **latent,
            "source": self.source,
        }


#: The mixture-of-experts fields of :class:`Model` (all 0 for a dense model).
MOE_FIELDS = ("experts", "experts_per_token", "shared_experts", "moe_intermediate")
#: The multi-head latent attention fields of :class:`Model` (all 0 for standard attention), named as in
#: a DeepSeek ``config.json``.
MLA_FIELDS = ("q_lora_rank", "kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim")
#: The fields of :class:`Model` that make its layers differ (or add to every layer), with the values of a
#: model of alike Llama layers: a TOML model takes them as keys, metadata holds the ones given.
_LAYER_DEFAULTS = {
    "first_dense": 0,
    "moe_every": 1,
    "sliding_window": None,
    "layer_types": None,
    "attention_sinks": False,
    "attention_bias": False,
    "mlp_bias": False,
}
#: The Hugging Face names of the attention kinds (``layer_types`` of a config.json), accepted for the short ones.
_ATTENTION_NAMES = {"full_attention": "full", "sliding_attention": "sliding"}


def _preset(name, label, hidden, layers, heads, kv_heads, intermediate, vocab, source, **moe) -> Model:
    return Model(
        name=name,
        label=label,
        hidden=hidden,
        layers=layers,
        heads=heads,
        kv_heads=kv_heads,
        head_dim=hidden // heads,
        intermediate=intermediate,
        vocab=vocab,
        source=source,
        **moe,
    )


_HF = "config.json of {} on the Hugging Face hub"
_PRESETS = (
    _preset("llama-7b", "Llama 7B", 4096, 32, 32, 32, 11008, 32000, "LLaMA paper (Touvron et al. 2023), Table 2"),
    _preset("llama-13b", "Llama 13B", 5120, 40, 40, 40, 13824, 32000, "LLaMA paper (Touvron et al. 2023), Table 2"),
    _preset("llama-33b", "Llama 33B", 6656, 60, 52, 52, 17920, 32000, "LLaMA paper (Touvron et al. 2023), Table 2"),
    _preset("llama-65b", "Llama 65B", 8192, 80, 64, 64, 22016, 32000, "LLaMA paper (Touvron et al. 2023), Table 2"),
    _preset("llama-2-7b", "Llama 2 7B", 4096, 32, 32, 32, 11008, 32000, _HF.format("meta-llama/Llama-2-7b-hf")),
    _preset("llama-2-13b", "Llama 2 13B", 5120, 40, 40, 40, 13824, 32000, _HF.format("meta-llama/Llama-2-13b-hf")),
    _preset("llama-2-70b", "Llama 2 70B", 8192, 80, 64, 8, 28672, 32000, _HF.format("meta-llama/Llama-2-70b-hf")),
    _preset("llama-3-8b", "Llama 3 8B", 4096, 32, 32, 8, 14336, 128256, _HF.format("meta-llama/Meta-Llama-3-8B")),
    _preset("llama-3-70b", "Llama 3 70B", 8192, 80, 64, 8, 28672, 128256, _HF.format("meta-llama/Meta-Llama-3-70B")),
    _preset("mistral-7b", "Mistral 7B", 4096, 32, 32, 8, 14336, 32000, _HF.format("mistralai/Mistral-7B-v0.1")),
    _preset(
        "toy-llama",
        "Toy Llama",
        256,
        4,
        4,
        2,
        768,
        1024,
        "synthetic, not a released model: a narrow Llama shape (head_dim 64, GQA 2:1, intermediate by the "
        "Llama rule) so that validate and examples finish in seconds on a laptop CPU",
    ),
    _preset(
        "mixtral-8x7b",
        "Mixtral 8x7B",
        4096,
        32,
        32,
        8,
        14336,
        32000,
        _HF.format("mistralai/Mixtral-8x7B-v0.1") + ": hidden_size 4096, num_hidden_layers 32, "
        "num_attention_heads 32, num_key_value_heads 8, intermediate_size 14336, vocab_size 32000, "
        "num_local_experts 8, num_experts_per_tok 2",
        experts=8,
        experts_per_token=2,
    ),
    _preset(
        "mixtral-8x22b",
        "Mixtral 8x22B",
        6144,
        56,
        48,
        8,
        16384,
        32768,
        _HF.format("mistralai/Mixtral-8x22B-v0.1") + ": hidden_size 6144, num_hidden_layers 56, "
        "num_attention_heads 48, num_key_value_heads 8, intermediate_size 16384, vocab_size 32768, "
        "num_local_experts 8, num_experts_per_tok 2",
        experts=8,
        experts_per_token=2,
    ),
    _preset(
        "qwen1.5-moe-a2.7b",
        "Qwen1.5-MoE-A2.7B",
        2048,
        24,
        16,
        16,
        5632,
        151936,
        _HF.format("Qwen/Qwen1.5-MoE-A2.7B") + ": hidden_size 2048, num_hidden_layers 24, "
        "num_attention_heads 16, num_key_value_heads 16, intermediate_size 5632, vocab_size 151936, "
        "num_experts 60, num_experts_per_tok 4, moe_intermediate_size 1408, "
        "shared_expert_intermediate_size 5632 (4 shared experts of 1408); its q/k/v biases and the "
        "shared expert's gate (2048 + 1 weights a layer) are not counted",
        experts=60,
        experts_per_token=4,
        shared_experts=4,
        moe_intermediate=1408,
    ),
)


def _hf(name: str, repo: str, label: str, published: str, **fields: Any) -> Model:
    """A preset read from ``repo``'s config.json (``fields``: the :class:`Model` fields it gives)."""
    return Model(
        name=name,
        label=label,
        source=f"{_HF.format(repo)} (https://huggingface.co/{repo}); published size: {published}",
        **fields,
    )


_LLAMA_31 = {"kv_heads": 8, "head_dim": 128, "vocab": 128256}
_QWEN3 = {"head_dim": 128, "vocab": 151936}
_LLAMA_4 = {
    "hidden": 5120,
    "layers": 48,
    "heads": 40,
    "kv_heads": 8,
    "head_dim": 128,
    "intermediate": 16384,  # intermediate_size_mlp: the dense layers' width
    "moe_intermediate": 8192,  # intermediate_size: each expert's, and the shared expert's
    "vocab": 202048,
    "experts_per_token": 1,
    "shared_experts": 1,
}
_GPT_OSS = {
    "hidden": 2880,
    "heads": 64,
    "kv_heads": 8,
    "head_dim": 64,
    "intermediate": 2880,
    "vocab": 201088,
    "experts_per_token": 4,
    "sliding_window": 128,
    "attention_sinks": True,
    "attention_bias": True,
    "mlp_bias": True,
}


def _alternating(layers: int) -> tuple[str, ...]:
    """gpt-oss's ``layer_types``: sliding, full, sliding, full, ... (its config.json)."""
    return tuple("full" if i % 2 else "sliding" for i in range(layers))


_CHUNKED = (
    "; its chunked attention (attention_chunk_size 8192 on the RoPE layers, 3 of 4) is priced as full attention, "
    "an over-count past 8192 tokens"
)
_LAYER_PRESETS = (
    _hf(
        "llama-3.1-8b",
        "meta-llama/Llama-3.1-8B",
        "Llama 3.1 8B",
        "8.03 B",
        hidden=4096,
        layers=32,
        heads=32,
        intermediate=14336,
        **_LLAMA_31,
    ),
    _hf(
        "llama-3.1-70b",
        "meta-llama/Llama-3.1-70B",
        "Llama 3.1 70B",
        "70.6 B",
        hidden=8192,
        layers=80,
        heads=64,
        intermediate=28672,
        **_LLAMA_31,
    ),
    _hf(
        "llama-3.1-405b",
        "meta-llama/Llama-3.1-405B",
        "Llama 3.1 405B",
        "405 B (model card), 405.85 B counted",
        hidden=16384,
        layers=126,
        heads=128,
        intermediate=53248,
        **_LLAMA_31,
    ),
    _hf(
        "llama-4-scout",
        "meta-llama/Llama-4-Scout-17B-16E",
        "Llama 4 Scout",
        "109 B total with the vision encoder, 17 B active" + _CHUNKED,
        experts=16,
        **_LLAMA_4,
    ),
    _hf(
        "llama-4-maverick",
        "meta-llama/Llama-4-Maverick-17B-128E",
        "Llama 4 Maverick",
        "400 B total, 17 B active; MoE in every other layer (interleave_moe_layer_step 2)" + _CHUNKED,
        experts=128,
        moe_every=2,
        **_LLAMA_4,
    ),
    _hf(
        "qwen3-8b",
        "Qwen/Qwen3-8B",
        "Qwen3 8B",
        "8.2 B (6.95 B non-embedding)",
        hidden=4096,
        layers=36,
        heads=32,
        kv_heads=8,
        intermediate=12288,
        **_QWEN3,
    ),
    _hf(
        "qwen3-32b",
        "Qwen/Qwen3-32B",
        "Qwen3 32B",
        "32.8 B (31.2 B non-embedding)",
        hidden=5120,
        layers=64,
        heads=64,
        kv_heads=8,
        intermediate=25600,
        **_QWEN3,
    ),
    _hf(
        "qwen3-30b-a3b",
        "Qwen/Qwen3-30B-A3B",
        "Qwen3 30B-A3B",
        "30.5 B total, 3.3 B active (29.9 B non-embedding)",
        hidden=2048,
        layers=48,
        heads=32,
        kv_heads=4,
        intermediate=6144,
        experts=128,
        experts_per_token=8,
        moe_intermediate=768,
        **_QWEN3,
    ),
    _hf(
        "qwen3-235b-a22b",
        "Qwen/Qwen3-235B-A22B",
        "Qwen3 235B-A22B",
        "235 B total, 22 B active (234 B non-embedding)",
        hidden=4096,
        layers=94,
        heads=64,
        kv_heads=4,
        intermediate=12288,
        experts=128,
        experts_per_token=8,
        moe_intermediate=1536,
        **_QWEN3,
    ),
    _hf(
        "gemma-3-27b",
        "google/gemma-3-27b-it",
        "Gemma 3 27B",
        "27 B (technical report, Table 1: 25,600 M non-embedding, "
        "1,416 M embedding, 417 M vision encoder); text model only, 5 sliding (window 1024) : 1 global layers "
        "(sliding_window_pattern 6), GeGLU priced as the gated MLP; its q/k norms and the two extra norms per "
        "layer are not counted",
        hidden=5376,
        layers=62,
        heads=32,
        kv_heads=16,
        head_dim=128,
        intermediate=21504,
        vocab=262208,
        tied_embeddings=True,
        sliding_window=1024,
        layer_types=tuple("sliding" if (i + 1) % 6 else "full" for i in range(62)),
    ),
    _hf(
        "gpt-oss-20b",
        "openai/gpt-oss-20b",
        "gpt-oss-20b",
        "20.91 B total, 3.61 B active (model card; its active count has the unembedding, not the embedding)",
        layers=24,
        experts=32,
        layer_types=_alternating(24),
        **_GPT_OSS,
    ),
    _hf(
        "gpt-oss-120b",
        "openai/gpt-oss-120b",
        "gpt-oss-120b",
        "116.83 B total, 5.13 B active (model card; its active count has the unembedding, not the embedding)",
        layers=36,
        experts=128,
        layer_types=_alternating(36),
        **_GPT_OSS,
    ),
)

#: DeepSeek-V3's shape, which Kimi K2 keeps: multi-head latent attention (128 heads, r_q 1536, r_kv 512,
#: d_n 128, d_r 64, d_v 128), 7168 wide, 61 layers, dense first layers of 18432, then experts of 2048 with
#: one shared expert and a router bias (topk_method "noaux_tc").
_DEEPSEEK = {
    "hidden": 7168,
    "layers": 61,
    "heads": 128,
    "kv_heads": 128,
    "head_dim": 192,
    "intermediate": 18432,
    "vocab": 129280,
    "experts": 256,
    "experts_per_token": 8,
    "shared_experts": 1,
    "moe_intermediate": 2048,
    "first_dense": 3,
    "router_bias": True,
    "q_lora_rank": 1536,
    "kv_lora_rank": 512,
    "qk_nope_head_dim": 128,
    "qk_rope_head_dim": 64,
    "v_head_dim": 128,
}
_MLA_PRESETS = (
    _hf(
        "deepseek-v3",
        "deepseek-ai/DeepSeek-V3",
        "DeepSeek-V3",
        "671 B total, 37 B active (DeepSeek-V3 technical report, arXiv 2412.19437, abstract and §4.2), "
        "embeddings and LM head counted, the multi-token prediction module (num_nextn_predict_layers 1, "
        "in the checkpoint's 685 B) not; counted 671.03 B and 37.55 B",
        mtp_layers=1,
        **_DEEPSEEK,
    ),
    _hf(
        "kimi-k2",
        "moonshotai/Kimi-K2-Instruct",
        "Kimi K2",
        "1 T total, 32 B activated (model card); counted 1.026 T and 32.86 B, embeddings and LM head included; "
        "DeepSeek-V3's shape with 64 heads, 384 experts, one dense first layer, a 163840 vocabulary and no "
        "multi-token prediction module",
        **{**_DEEPSEEK, "heads": 64, "kv_heads": 64, "vocab": 163840, "experts": 384, "first_dense": 1},
    ),
)

#: Presets by name, read-only: a model of your own is a TOML file or a Hugging Face
#: ``config.json`` (:func:`load_model`) or a :class:`Model`, given where a preset name is.
MODELS: Mapping[str, Model] = MappingProxyType({m.name: m for m in (*_PRESETS, *_LAYER_PRESETS, *_MLA_PRESETS)})

_TOML_REQUIRED = ("name", "hidden", "layers", "heads", "intermediate", "vocab")
_TOML_OPTIONAL = (
    "kv_heads",
    "head_dim",
    "gated_mlp",
    "tied_embeddings",
    "label",
    "source",
    *MOE_FIELDS,
    "routing_experts",
    "shared_intermediate",
    *_LAYER_DEFAULTS,
    *MLA_FIELDS,
    "router_bias",
    "mtp_layers",
)
_HF_EXPERTS = ("num_local_experts", "num_experts", "n_routed_experts")  # config.json keys of the expert count
_HF_KEYS = {  # config.json key -> Model field
    "hidden_size": "hidden",
    "num_hidden_layers": "layers",
    "num_attention_heads": "heads",
    "intermediate_size": "intermediate",
    "vocab_size": "vocab",
}


def _from_table(table: dict, where: str) -> Model:
    fields = dict(table)
    if any(key in fields for key in MLA_FIELDS):  # latent attention needs all five: a missing one is named
        fields = {**dict.fromkeys(MLA_FIELDS), **fields}
    if "head_dim" not in fields and isinstance(fields.get("qk_nope_head_dim"), int) and fields.get("qk_rope_head_dim"):
        fields["head_dim"] = fields["qk_nope_head_dim"] + fields["qk_rope_head_dim"]  # latent attention's q·k width
    if "head_dim" not in fields:
        hidden = positive_int(f"{where}: hidden", fields.get("hidden"))
        heads = positive_int(f"{where}: heads", fields.get("heads"))
        if hidden % heads:
            raise SpecError(f"{where}: hidden ({hidden}) is not divisible by heads ({heads}); give head_dim")
        fields["head_dim"] = hidden // heads
    fields.setdefault("kv_heads", fields.get("heads"))
    try:
        return Model(**fields)
    except SpecError as exc:
        raise SpecError(f"{where}: {exc}") from None


#: Defaults of transformers' config classes that a hub ``config.json`` leaves out, by ``model_type``
#: (Gemma3TextConfig: ``vocab_size=262_208``, ``sliding_window_pattern=6``, ``tie_word_embeddings=True``;
#: Gemma2Config: every other layer sliding, the first one included).
_HF_DEFAULTS: dict[str, dict[str, object]] = {
    "gemma2": {"sliding_window_pattern": 2, "tie_word_embeddings": True},
    "gemma3_text": {"vocab_size": 262208, "sliding_window_pattern": 6, "tie_word_embeddings": True},
}
#: What an architecture has that its config.json does not say, by ``model_type`` (transformers' modeling
#: code): gpt-oss's learned sinks and biased router and experts (GptOssAttention.sinks, GptOssExperts'
#: gate_up_proj_bias/down_proj_bias, GptOssTopKRouter.bias); Llama 4's one shared expert of the routed
#: width in every MoE layer (Llama4TextMoe.shared_expert).
_HF_ARCHITECTURE: dict[str, dict[str, object]] = {
    "gpt_oss": {"attention_sinks": True, "mlp_bias": True},
    "llama4_text": {"shared_experts": 1},
}


def _hf_latent(config: dict) -> dict:
    """The multi-head latent attention fields of a ``config.json`` (none without ``kv_lora_rank``); a rank
    missing or null stays None, for :class:`Model` to name."""
    if config.get("kv_lora_rank") is None:
        return {}
    return {key: config.get(key) for key in MLA_FIELDS}


def _hf_deepseek(config: dict) -> dict:
    """DeepSeek-V3's router bias (``topk_method = "noaux_tc"``: its ``e_score_correction_bias``) and
    multi-token prediction modules (``num_nextn_predict_layers``)."""
    table: dict[str, object] = {}
    if config.get("topk_method") == "noaux_tc":
        table["router_bias"] = True
    if config.get("num_nextn_predict_layers"):
        table["mtp_layers"] = positive_int("num_nextn_predict_layers", config["num_nextn_predict_layers"])
    return table


def _hf_experts(config: dict) -> dict:
    """The mixture-of-experts fields of a ``config.json`` (none for a dense model).

    Experts: ``num_local_experts``, ``num_experts`` or ``n_routed_experts``; ``num_experts_per_tok``
    or ``experts_per_token``; each expert's width ``moe_intermediate_size`` (else
    ``intermediate_size``, whose place ``intermediate_size_mlp`` then takes for the dense layers, as
    in Llama 4); shared experts ``n_shared_experts`` (of the expert width) or one of
    ``shared_expert_intermediate_size``; dense first layers ``first_k_dense_replace``; experts every
    ``interleave_moe_layer_step`` or ``decoder_sparse_step``-th layer (``moe_layer_freq`` 1 only, and
    no ``mlp_only_layers``: other placements are not read).
    """
    experts_key = next((key for key in _HF_EXPERTS if config.get(key)), None)
    if experts_key is None:
        return {}
    per_token = next(
        (key for key in ("num_experts_per_tok", "experts_per_token") if key in config), "num_experts_per_tok"
    )
    table: dict[str, object] = {
        "experts": positive_int(experts_key, config[experts_key]),
        "experts_per_token": positive_int(per_token, config.get(per_token)),
    }
    if config.get("moe_intermediate_size") is not None:
        table["moe_intermediate"] = positive_int("moe_intermediate_size", config["moe_intermediate_size"])
    elif config.get("intermediate_size_mlp") is not None:
        table["moe_intermediate"] = positive_int("intermediate_size", config["intermediate_size"])
        table["intermediate"] = positive_int("intermediate_size_mlp", config["intermediate_size_mlp"])
    if config.get("n_shared_experts"):
        table["shared_experts"] = positive_int("n_shared_experts", config["n_shared_experts"])
    elif config.get("shared_expert_intermediate_size"):
        table["shared_experts"] = 1
        table["shared_intermediate"] = positive_int(
            "shared_expert_intermediate_size", config["shared_expert_intermediate_size"]
        )
    if config.get("first_k_dense_replace") is not None:
        first = config["first_k_dense_replace"]
        table["first_dense"] = 0 if first == 0 else positive_int("first_k_dense_replace", first)
    for key in ("interleave_moe_layer_step", "decoder_sparse_step"):
        if config.get(key) is not None:
            table["moe_every"] = positive_int(key, config[key])
    if config.get("moe_layer_freq", 1) != 1:
        raise SpecError(
            f"moe_layer_freq: {config['moe_layer_freq']!r} is not read (it counts from layer 0, "
            "interleave_moe_layer_step from layer n-1); allowed: 1, or write the model as TOML with moe_every"
        )
    if config.get("mlp_only_layers"):
        raise SpecError(
            f"mlp_only_layers: {config['mlp_only_layers']!r} places dense layers anywhere, which a model does "
            "not hold; allowed: []"
        )
    return table


def _hf_layers(config: dict, layers: int) -> dict:
    """The attention pattern of a ``config.json``: ``sliding_window`` (unless ``use_sliding_window`` is
    false, as in Qwen's), each layer's type from ``layer_types`` (``full_attention``,
    ``sliding_attention``), else every ``sliding_window_pattern``-th layer full and the others sliding
    (Gemma 3), else Qwen's layers from ``max_window_layers`` on sliding, else every layer sliding;
    and ``attention_bias``, ``mlp_bias``."""
    table: dict[str, object] = {}
    for key in ("attention_bias", "mlp_bias"):
        if config.get(key) is not None:
            table[key] = boolean(key, config[key])
    window = config.get("sliding_window")
    if window is None or config.get("use_sliding_window") is False:
        return table
    table["sliding_window"] = window  # checked (a zero window is refused) by Model
    if config.get("layer_types") is not None:
        table["layer_types"] = config["layer_types"]
    elif config.get("sliding_window_pattern") is not None:
        every = positive_int("sliding_window_pattern", config["sliding_window_pattern"])
        table["layer_types"] = ["sliding" if (i + 1) % every else "full" for i in range(layers)]
    elif config.get("use_sliding_window") and config.get("max_window_layers") is not None:
        first = config["max_window_layers"]
        table["layer_types"] = ["sliding" if i >= first else "full" for i in range(layers)]
    return table


def hf_table(config: dict) -> dict:
    """The :class:`Model` fields of a Hugging Face ``config.json`` (a dict; raises a one-line SpecError).

    A multimodal config's ``text_config`` is its text model (Gemma 3, Llama 4); keys that a hub
    config leaves to transformers' defaults and layers the architecture implies are filled in by
    ``model_type`` (:data:`_HF_DEFAULTS`, :data:`_HF_ARCHITECTURE`).
    """
    if isinstance(config.get("text_config"), dict):
        config = {**{k: v for k, v in config.items() if k != "text_config"}, **config["text_config"]}
    model_type = config.get("model_type")
    config = {**_HF_DEFAULTS.get(str(model_type), {}), **config}
    missing = [k for k in _HF_KEYS if k not in config]
    if missing:
        raise SpecError(f"missing required key {missing[0]!r} (required: {', '.join(_HF_KEYS)})")
    table: dict[str, object] = {field_: positive_int(key, config[key]) for key, field_ in _HF_KEYS.items()}
    latent = _hf_latent(config)
    for key, field_ in (("num_key_value_heads", "kv_heads"), ("head_dim", "head_dim")):
        if config.get(key) is not None and not (latent and field_ == "head_dim"):
            table[field_] = positive_int(key, config[key])
    table.update(latent)
    table.update(_hf_deepseek(config))
    tied = config.get("tie_word_embeddings")
    table["tied_embeddings"] = False if tied is None else boolean("tie_word_embeddings", tied)
    table.update(_hf_experts(config))
    table.update(_hf_layers(config, positive_int("num_hidden_layers", config["num_hidden_layers"])))
    architecture = _HF_ARCHITECTURE.get(str(model_type), {})
    return {**table, **{k: v for k, v in architecture.items() if k != "shared_experts" or "experts" in table}}


def load_model(path: str | Path) -> Model:
    """Read a model from a TOML file or a Hugging Face ``config.json`` (no network).

    Args:
        path: a model TOML file, or a ``.json`` file of a Hugging Face model's config (:func:`hf_table`).
    """
    path = Path(path)
    where = f"model file {str(path)!r}"
    text = read_text(path, "model file", "a model TOML file or a Hugging Face config.json")
    if path.suffix == ".json":
        try:
            config = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SpecError(f"{where}: not valid JSON ({exc})") from None
        if not isinstance(config, dict):
            raise SpecError(f"{where}: expected a JSON object")
        try:
            table = hf_table(config)
        except SpecError as exc:
            raise SpecError(f"{where}: {exc}") from None
        table["name"] = path.parent.name or path.stem
        table["source"] = str(path)
        return _from_table(table, where)
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{where}: not valid TOML ({exc})") from None
    check_keys(where, table, _TOML_REQUIRED, _TOML_OPTIONAL)
    table.setdefault("source", str(path))
    return _from_table(table, where)


def get_model(name: str | Model, *, base: Path | None = None) -> Model:
    """A preset by name, or a file when ``name`` ends in ``.toml`` or ``.json``.

    Args:
        name: preset name, path to a model TOML or ``config.json``, or a Model.
        base: directory that relative paths are read from (a spec file's folder).
    """
    if isinstance(name, Model):
        return name
    if not isinstance(name, str):
        raise SpecError(f"model: expected a preset name or a .toml/.json path, got {name!r}")
    if name.endswith((".toml", ".json")):
        path = Path(name)
        return load_model(path if path.is_absolute() or base is None else base / path)
    if name not in MODELS:
        raise unknown_name("model", name, MODELS)
    return MODELS[name]
