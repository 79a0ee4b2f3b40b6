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

A Hugging Face ``config.json`` is read offline with the same meaning
(``hidden_size``, ``num_hidden_layers``, ``num_attention_heads``,
``num_key_value_heads``, ``head_dim``, ``intermediate_size``, ``vocab_size``,
``tie_word_embeddings``).
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

from rooflax._files import read_text
from rooflax.errors import SpecError, boolean, check_keys, positive_int, unknown_name

__all__ = ["MODELS", "Model", "get_model", "llama_intermediate", "llama_scaled", "load_model", "parameter_count"]


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


def parameter_count(*, hidden, layers, heads, kv_heads, head_dim, intermediate, vocab,
                    gated_mlp=True, tied_embeddings=False):
    """Parameters of a Llama-style decoder (embeddings, layers, final norm, LM head).

    Works on Python ints and jnp arrays; gated_mlp and tied_embeddings are Python bools.
    """
    attention = hidden * (heads + 2 * kv_heads) * head_dim + heads * head_dim * hidden
    mlp = (3 if gated_mlp else 2) * hidden * intermediate
    per_layer = attention + mlp + 2 * hidden
    embeddings = vocab * hidden * (1 if tied_embeddings else 2)
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
    label: str = ""
    source: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        where = f"model {self.name!r}"
        if not isinstance(self.name, str) or not self.name:
            raise SpecError(f"model.name: expected a non-empty string, got {self.name!r}")
        for key in ("hidden", "layers", "heads", "kv_heads", "head_dim", "intermediate", "vocab"):
            object.__setattr__(self, key, positive_int(f"{where}: {key}", getattr(self, key)))
        for key in ("gated_mlp", "tied_embeddings"):
            object.__setattr__(self, key, boolean(f"{where}: {key}", getattr(self, key)))
        for key in ("label", "source"):
            if not isinstance(getattr(self, key), str):
                raise SpecError(f"{where}: {key}: expected a string, got {getattr(self, key)!r}")
        if self.heads % self.kv_heads:
            raise SpecError(
                f"{where}: heads ({self.heads}) must be a multiple of kv_heads ({self.kv_heads})"
            )
        if not self.label:
            object.__setattr__(self, "label", self.name)

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
        return {k: getattr(self, k) for k in (
            "hidden", "layers", "heads", "kv_heads", "head_dim", "intermediate", "vocab",
            "gated_mlp", "tied_embeddings")}

    def check_hidden(self, hidden: int, where: str = "hidden") -> None:
        """Raise unless the model can be scaled to ``hidden`` (see :meth:`at_hidden`)."""
        hidden = positive_int(where, hidden)
        if hidden == self.hidden:
            return
        if hidden % self.head_dim:
            raise SpecError(
                f"{where}: {hidden} is not a multiple of {self.name}'s head_dim {self.head_dim}"
            )
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
        return replace(self, name=f"{self.name}@h{hidden}", label=f"{self.label} @ h={hidden}",
                       hidden=hidden, heads=heads, kv_heads=kv_heads, intermediate=intermediate)

    def to_dict(self) -> dict:
        """A plain dict (the TOML layout) for metadata."""
        return {"name": self.name, "label": self.label, **self.shape_kwargs(), "source": self.source}


def _preset(name, label, hidden, layers, heads, kv_heads, intermediate, vocab, source) -> Model:
    return Model(name=name, label=label, hidden=hidden, layers=layers, heads=heads, kv_heads=kv_heads,
                 head_dim=hidden // heads, intermediate=intermediate, vocab=vocab, source=source)


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
    _preset("toy-llama", "Toy Llama", 256, 4, 4, 2, 768, 1024,
            "synthetic, not a released model: a narrow Llama shape (head_dim 64, GQA 2:1, intermediate by the "
            "Llama rule) so that validate and examples finish in seconds on a laptop CPU"),
)

#: Presets by name.
MODELS: dict[str, Model] = {m.name: m for m in _PRESETS}

_TOML_REQUIRED = ("name", "hidden", "layers", "heads", "intermediate", "vocab")
_TOML_OPTIONAL = ("kv_heads", "head_dim", "gated_mlp", "tied_embeddings", "label", "source")
_HF_KEYS = {  # config.json key -> Model field
    "hidden_size": "hidden", "num_hidden_layers": "layers", "num_attention_heads": "heads",
    "intermediate_size": "intermediate", "vocab_size": "vocab",
}


def _from_table(table: dict, where: str) -> Model:
    fields = dict(table)
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


def load_model(path: str | Path) -> Model:
    """Read a model from a TOML file or a Hugging Face ``config.json`` (no network)."""
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
            table = {field_: positive_int(key, config[key]) for key, field_ in _HF_KEYS.items()}
            for key, field_ in (("num_key_value_heads", "kv_heads"), ("head_dim", "head_dim")):
                if config.get(key) is not None:
                    table[field_] = positive_int(key, config[key])
            tied = config.get("tie_word_embeddings")
            table["tied_embeddings"] = False if tied is None else boolean("tie_word_embeddings", tied)
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
