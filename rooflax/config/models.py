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
    q_lora_rank = 1536       # optional, multi-head latent attention (all five or none; rooflax.cost.ops):
    kv_lora_rank = 512       #   the query latent, the cached latent,
    qk_nope_head_dim = 128   #   the query-key width without rotary embedding,
    qk_rope_head_dim = 64    #   with it (head_dim defaults to their sum; kv_heads must equal heads),
    v_head_dim = 128         #   and the value width

A Hugging Face ``config.json`` is read offline with the same meaning
(``hidden_size``, ``num_hidden_layers``, ``num_attention_heads``,
``num_key_value_heads``, ``head_dim``, ``intermediate_size``, ``vocab_size``,
``tie_word_embeddings``; for mixtures of experts ``num_local_experts`` or
``num_experts`` or ``n_routed_experts``, ``num_experts_per_tok``,
``moe_intermediate_size``, and ``n_shared_experts`` or
``shared_expert_intermediate_size`` (as a multiple of ``moe_intermediate_size``)), and
for multi-head latent attention (DeepSeek-V2/V3, Kimi K2) ``q_lora_rank``,
``kv_lora_rank``, ``qk_nope_head_dim``, ``qk_rope_head_dim`` and ``v_head_dim`` (a config
with ``kv_lora_rank`` needs all five; its ``head_dim`` is ignored).

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

__all__ = [
    "MLA_FIELDS",
    "MODELS",
    "MOE_FIELDS",
    "Model",
    "get_model",
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
    q_lora_rank: Any = 0,
    kv_lora_rank: Any = 0,
    qk_nope_head_dim: Any = 0,
    qk_rope_head_dim: Any = 0,
    v_head_dim: Any = 0,
    mla: bool | None = None,
) -> Any:
    """Parameters of a Llama-style decoder (embeddings, layers, final norm, LM head).

    Works on Python ints and jnp arrays; gated_mlp and tied_embeddings are Python bools.
    With ``experts`` > 0 the MLP is ``experts`` routed experts plus ``shared_experts``
    shared ones, each of width ``moe_intermediate``, and a router ``h → experts``.

    Args:
        router_experts: the router's outputs when they differ from ``experts`` (a device
            holding some of the experts still holds the whole router).
        embedding_copies: vocabulary matrices held (default 1 tied, 2 untied; the worst
            device of a pipeline holds one).
        moe: whether the MLP is made of experts (default: ``experts > 0``; give it when
            ``experts`` is a traced array).
        q_lora_rank, kv_lora_rank, qk_nope_head_dim, qk_rope_head_dim, v_head_dim: multi-head
            latent attention's widths (``kv_lora_rank > 0``; :mod:`rooflax.cost.mla`): its
            attention holds ``h·r_q`` (query down-projection), ``r_q`` (its norm),
            ``r_q·H·(d_n + d_r)`` (query up-projection), ``h·(r_kv + d_r)`` (KV
            down-projection, rotary key included), ``r_kv`` (the latent's norm),
            ``r_kv·H·(d_n + d_v)`` (KV up-projection) and ``H·d_v·h`` (output); ``heads``,
            ``kv_heads`` and ``head_dim`` are then not used.
        mla: whether the attention is latent (default: ``kv_lora_rank > 0``; give it when the
            ranks are traced arrays).

    >>> parameter_count(hidden=4096, layers=32, heads=32, kv_heads=8, head_dim=128, intermediate=14336,
    ...                 vocab=32000, experts=8, moe_intermediate=14336)  # Mixtral-8x7B
    46702792704
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
    matrices = 3 if gated_mlp else 2
    if bool(experts) if moe is None else moe:
        router = hidden * (experts if router_experts is None else router_experts)
        mlp = matrices * hidden * moe_intermediate * (experts + shared_experts) + router
    else:
        mlp = matrices * hidden * intermediate
    per_layer = attention + mlp + 2 * hidden
    copies = (1 if tied_embeddings else 2) if embedding_copies is None else embedding_copies
    embeddings = vocab * hidden * copies
    return layers * per_layer + embeddings + hidden


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
    q_lora_rank: int = 0  # multi-head latent attention (all five 0: standard attention)
    kv_lora_rank: int = 0
    qk_nope_head_dim: int = 0
    qk_rope_head_dim: int = 0
    v_head_dim: int = 0
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
        for key in ("gated_mlp", "tied_embeddings"):
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
            given = [key for key in (*MOE_FIELDS[1:], "routing_experts") if getattr(self, key)]
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

    @property
    def mla(self) -> bool:
        """Whether the attention is multi-head latent attention (:mod:`rooflax.cost.mla`)."""
        return self.kv_lora_rank > 0

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

    def tp_fits(self, tp: int) -> bool:
        """Whether ``tp`` splits the heads, the KV heads (or replicates them) and the MLP widths evenly."""
        width = self.moe_intermediate if self.experts else self.intermediate
        return self.heads % tp == 0 and (self.kv_heads % tp == 0 or tp % self.kv_heads == 0) and width % tp == 0

    def check_layout(self, *, tp: int = 1, pp: int = 1, ep: int = 1) -> None:
        """Raise a one-line SpecError unless the parallel degrees divide this model (:mod:`rooflax.ops`)."""
        if not self.tp_fits(tp):
            allowed = [d for d in range(1, self.heads + 1) if self.tp_fits(d)]
            width = f"{self.moe_intermediate} expert width" if self.experts else f"{self.intermediate} intermediate"
            raise SpecError(
                f"tp: {tp} does not split {self.name}'s {self.heads} heads, {self.kv_heads} KV heads "
                f"and {width} evenly; allowed: {', '.join(map(str, allowed))}"
            )
        if self.layers % pp:
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
        """Parameter count."""
        return parameter_count(**self.shape_kwargs())

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
                *(MLA_FIELDS if self.mla else ()),
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
        return {"name": self.name, "label": self.label, **self.shape_kwargs(), **moe, "source": self.source}


#: The mixture-of-experts fields of :class:`Model` (all 0 for a dense model).
MOE_FIELDS = ("experts", "experts_per_token", "shared_experts", "moe_intermediate")
#: The multi-head latent attention fields of :class:`Model` (all 0 for standard attention), named as in
#: a DeepSeek ``config.json``.
MLA_FIELDS = ("q_lora_rank", "kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim")


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

#: Presets by name, read-only: a model of your own is a TOML file or a Hugging Face
#: ``config.json`` (:func:`load_model`) or a :class:`Model`, given where a preset name is.
MODELS: Mapping[str, Model] = MappingProxyType({m.name: m for m in _PRESETS})

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
    *MLA_FIELDS,
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


def _hf_latent(config: dict) -> dict:
    """The multi-head latent attention fields of a ``config.json`` (none without ``kv_lora_rank``); a rank
    missing or null stays None, for :class:`Model` to name."""
    if config.get("kv_lora_rank") is None:
        return {}
    return {key: config.get(key) for key in MLA_FIELDS}


def _hf_experts(config: dict) -> dict:
    """The mixture-of-experts fields of a ``config.json`` (none for a dense model)."""
    experts_key = next((key for key in _HF_EXPERTS if config.get(key)), None)
    if experts_key is None:
        return {}
    table = {
        "experts": positive_int(experts_key, config[experts_key]),
        "experts_per_token": positive_int("num_experts_per_tok", config.get("num_experts_per_tok")),
    }
    if config.get("moe_intermediate_size") is not None:
        table["moe_intermediate"] = positive_int("moe_intermediate_size", config["moe_intermediate_size"])
    if config.get("n_shared_experts"):
        table["shared_experts"] = positive_int("n_shared_experts", config["n_shared_experts"])
    elif config.get("shared_expert_intermediate_size"):
        width = positive_int("shared_expert_intermediate_size", config["shared_expert_intermediate_size"])
        each = table.get("moe_intermediate", positive_int("intermediate_size", config["intermediate_size"]))
        if width % each:
            raise SpecError(
                f"shared_expert_intermediate_size: {width} is not a multiple of the expert width "
                f"{each}; allowed: a multiple of moe_intermediate_size"
            )
        table["shared_experts"] = width // each
    return table


def load_model(path: str | Path) -> Model:
    """Read a model from a TOML file or a Hugging Face ``config.json`` (no network).

    Args:
        path: a model TOML file, or a ``.json`` file of a Hugging Face model's config.
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
        missing = [k for k in _HF_KEYS if k not in config]
        if missing:
            raise SpecError(f"{where}: missing required key {missing[0]!r} (required: {', '.join(_HF_KEYS)})")
        try:
            table: dict[str, object] = {field_: positive_int(key, config[key]) for key, field_ in _HF_KEYS.items()}
            latent = _hf_latent(config)
            for key, field_ in (("num_key_value_heads", "kv_heads"), ("head_dim", "head_dim")):
                if config.get(key) is not None and not (latent and field_ == "head_dim"):
                    table[field_] = positive_int(key, config[key])
            table.update(latent)
            tied = config.get("tie_word_embeddings")
            table["tied_embeddings"] = False if tied is None else boolean("tie_word_embeddings", tied)
            table.update(_hf_experts(config))
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
