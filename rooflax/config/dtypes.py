"""Dtype policies: how weights, activations and the KV cache are stored, and which peak applies.

Every tensor's bytes come from one function, :func:`tensor_bytes`. A block-scaled format
stores its elements with one scale per block of them; a tensor of ``r × c`` elements (``c``
along the blocked dimension) in a format of ``e`` bytes per element with one ``s``-byte scale
per ``br × bc`` block takes, exactly::

    r·c·e + ⌈r/br⌉·⌈c/bc⌉·s

a partial edge block holding a whole scale. A plain format (fp16, int8, a per-tensor fp8) is
``r·c·e``. Which dimension is blocked, tensor by tensor (:mod:`rooflax.cost.ops`): a weight
``n × k`` along its reduction ``k`` (the input width), its rows ``n`` the outputs; an
activation ``tokens × width`` along its feature width, as the product that writes it lays it
out, one row a token (the fused ``qkv_proj`` weight one matrix, latent attention's ``W_UK`` and
``W_UV`` two); attention scores and probabilities, each sequence-head's ``P`` as one packed row
(in decode, a query's row of keys); a KV-cache vector along the head dim (with latent
attention, the latent and the rotary key each along its own width); norm weights and sink
logits as vectors of their width. Under tensor parallelism each device quantizes its own shard,
so a shard of a sharded width has its own partial blocks. The formats:

``fp8``
    e4m3 with one fp32 scale per tensor: 1 byte an element. Per-tensor scales (4 bytes a
    tensor) are not counted, here and in ``nvfp4``: under 1e-6 of any matrix of 4·10^6
    elements or more.
``fp8_block_weight``, ``fp8_block_act``
    e4m3 with fp32 scales per 128 × 128 weight block and per 1 × 128 activation block, as
    DeepSeek-V3 trains and serves (its report, §3.3.2).
``nvfp4``
    e2m1 with one e4m3 scale per 16 elements and one fp32 scale per tensor (NVIDIA's NVFP4,
    *Introducing NVFP4*, 2025).
``mxfp4``
    e2m1 with one e8m0 scale per 32 elements (OCP Microscaling Formats v1.0, 2023).

A Llama-3-8B ``gate_proj`` (4096 → 14336) in NVFP4: ``14336·4096/2`` element bytes and one
byte for each of ``14336·4096/16`` scales; gpt-oss's 2880-wide hidden state is 90 blocks of 32
but 22.5 of 128, so an fp8 block-scaled activation row of it holds 23 scales:

>>> FORMATS["nvfp4"].tensor_bytes(14336, 4096), FORMATS["fp8_block_act"].tensor_bytes(1, 2880)
(33030144.0, 2972)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any, NamedTuple

from rooflax.errors import SpecError, positive_float, positive_int, unknown_name
from rooflax.names import PEAK_DTYPES

__all__ = ["DTYPES", "FORMATS", "KV_DTYPES", "DtypePolicy", "Format", "Storage", "get_dtype", "tensor_bytes"]

Num = Any  # a Python number, a numpy array or a jnp array (traced or not)


class Storage(NamedTuple):
    """A block-scaled format as the cost model computes with it: numbers only (leaves under ``jax.vmap``);
    a format without block scales is its element bytes alone (:attr:`Format.storage`).

    Attributes:
        element: bytes per stored element.
        scale: bytes per block scale.
        rows, cols: the block's shape.
    """

    element: Num
    scale: Num
    rows: Num
    cols: Num


def tensor_bytes(fmt: Storage | Num, rows: Num, cols: Num, count: Num = 1) -> Num:
    """Bytes of ``count`` tensors of ``rows × cols`` elements (``cols`` blocked) in ``fmt``, scales and
    partial blocks included: ``count·(r·c·e + ⌈r/br⌉·⌈c/bc⌉·s)``. The one place a tensor's bytes are decided.

    Plain arithmetic on Python numbers, numpy or (traced) JAX arrays; the element bytes are
    multiplied in as ``e·count·c·r`` (a literal 1 left out).

    Args:
        fmt: a :class:`Storage`, or a number: bytes per element of a format without block scales.
        rows: elements down (a weight's outputs, tokens of an activation, cached vectors).
        cols: elements along the blocked dimension.
        count: how many such tensors (may be an expected, fractional count).

    >>> tensor_bytes(Storage(element=0.5, scale=1, rows=1, cols=16), 1, 17), tensor_bytes(2, 3, 5)
    (10.5, 30)
    """
    elements = _product(fmt.element if isinstance(fmt, Storage) else fmt, count, cols, rows)
    if not isinstance(fmt, Storage):
        return elements
    from rooflax.cost.achieved import ceil_div  # here: the presets import without JAX

    return elements + count * (ceil_div(rows, fmt.rows) * ceil_div(cols, fmt.cols)) * fmt.scale


def _product(x: Num, *factors: Num) -> Num:
    """``x`` times the factors in order, a literal ``1`` left out (so a plain format's bytes are the very
    expression the factors make, on every backend)."""
    for factor in factors:
        if not (isinstance(factor, int) and factor == 1):
            x = x * factor
    return x


@dataclass(frozen=True, slots=True, kw_only=True)
class Format:
    """A storage format: bytes per element and one scale per block of elements.

    Attributes:
        name: format name.
        element_bytes: bytes per stored element (0.5 for 4-bit elements).
        block: ``(rows, cols)`` of elements sharing one scale; ``(0, 0)``: no block scales.
        scale_bytes: bytes per scale (0 without block scales).
    """

    name: str
    element_bytes: float
    block: tuple[int, int] = (0, 0)
    scale_bytes: float = 0

    def __post_init__(self) -> None:
        positive_float(f"format {self.name!r}: element_bytes", self.element_bytes)
        object.__setattr__(self, "block", tuple(self.block))
        if self.block != (0, 0):
            for size in self.block:
                positive_int(f"format {self.name!r}: block", size)
            positive_float(f"format {self.name!r}: scale_bytes", self.scale_bytes)

    @property
    def storage(self) -> Storage | Num:
        """What :func:`tensor_bytes` takes: a :class:`Storage`, or the element bytes of a format without scales."""
        if not self.block[0]:
            return self.element_bytes
        return Storage(element=self.element_bytes, scale=self.scale_bytes, rows=self.block[0], cols=self.block[1])

    def tensor_bytes(self, rows: int, cols: int) -> Num:
        """Bytes of a ``rows × cols`` tensor (``cols`` along the blocked dimension), scales and partial blocks included.

        Args:
            rows: elements down (a weight's output width, or tokens for activations).
            cols: elements along the blocked, reduction dimension.
        """
        return tensor_bytes(self.storage, positive_int("rows", rows), positive_int("cols", cols))

    def to_dict(self) -> dict:
        """A plain dict (:class:`Format` of it is this format)."""
        return {
            "name": self.name,
            "element_bytes": self.element_bytes,
            "block": list(self.block),
            "scale_bytes": self.scale_bytes,
        }


def _plain(element_bytes: float, name: str) -> Format:
    return Format(name=name, element_bytes=element_bytes)


#: Storage formats by name, read-only: the block-scaled ones and per-tensor fp8.
FORMATS: Mapping[str, Format] = MappingProxyType(
    {
        f.name: f
        for f in (
            Format(name="fp8", element_bytes=1),
            Format(name="fp8_block_weight", element_bytes=1, block=(128, 128), scale_bytes=4),
            Format(name="fp8_block_act", element_bytes=1, block=(1, 128), scale_bytes=4),
            Format(name="nvfp4", element_bytes=0.5, block=(1, 16), scale_bytes=1),
            Format(name="mxfp4", element_bytes=0.5, block=(1, 32), scale_bytes=1),
        )
    }
)

#: Formats of the KV cache for the ``kv_dtype`` option (``nvfp4``: blocks of 16 along the head
#: dimension, as TensorRT-LLM stores an NVFP4 cache; read back into the attention's compute dtype,
#: so a KV dtype needs no tensor cores of its own).
KV_DTYPES: Mapping[str, Format] = MappingProxyType(
    {
        **{
            name: _plain(size, name)
            for name, size in (("fp32", 4), ("fp16", 2), ("bf16", 2), ("int8", 1), ("int4", 0.5))
        },
        "fp8": FORMATS["fp8"],
        "nvfp4": FORMATS["nvfp4"],
    }
)


@dataclass(frozen=True, slots=True, kw_only=True)
class DtypePolicy:
    """How each kind of tensor is stored and which hardware peak the matmuls run at.

    Attributes:
        name: policy name (``fp16``, ``w4a16``, ...), with ``/kv=...`` when the KV dtype
            was overridden.
        weight_bytes: the weights' format: bytes per element (``w`` in the counting contract),
            or a block-scaled :class:`Format` (a dict of one is read as it).
        act_bytes: the activations' (``a``).
        kv_bytes: the KV cache's (``k``).
        compute: key into :attr:`rooflax.Hardware.peak_flops`.
    """

    name: str
    weight_bytes: float | Format
    act_bytes: float | Format
    kv_bytes: float | Format
    compute: str

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise SpecError(f"dtype.name: expected a non-empty string, got {self.name!r}")
        for key in ("weight_bytes", "act_bytes", "kv_bytes"):
            value = getattr(self, key)
            if isinstance(value, dict):
                object.__setattr__(self, key, Format(**value))
            elif not isinstance(value, Format):
                positive_float(f"dtype {self.name!r}: {key}", value)
        if self.compute not in PEAK_DTYPES:
            raise unknown_name(f"dtype {self.name!r}: compute", self.compute, PEAK_DTYPES)

    @property
    def weight(self) -> Format:
        """The weights' :class:`Format`."""
        return _format(self.weight_bytes, "weight")

    @property
    def act(self) -> Format:
        """The activations' :class:`Format`."""
        return _format(self.act_bytes, "act")

    @property
    def kv(self) -> Format:
        """The KV cache's :class:`Format`."""
        return _format(self.kv_bytes, "kv")

    def with_kv(self, kv_dtype: str | None) -> DtypePolicy:
        """This policy with its KV cache stored as ``kv_dtype`` (None keeps it; a previous override is replaced)."""
        if kv_dtype is None:
            return self
        if not isinstance(kv_dtype, str) or kv_dtype not in KV_DTYPES:
            raise unknown_name("kv_dtype", kv_dtype, KV_DTYPES)
        base = self.name.partition("/kv=")[0]
        kv = KV_DTYPES[kv_dtype]
        return replace(self, name=f"{base}/kv={kv_dtype}", kv_bytes=kv if kv.block[0] else kv.element_bytes)

    def to_dict(self) -> dict:
        """A plain dict for metadata (a block-scaled format as its own dict)."""
        return {
            "name": self.name,
            **{
                key: value.to_dict() if isinstance(value, Format) else value
                for key in ("weight_bytes", "act_bytes", "kv_bytes")
                for value in (getattr(self, key),)
            },
            "compute": self.compute,
        }


def _format(value: float | Format, name: str) -> Format:
    return value if isinstance(value, Format) else Format(name=f"{name}:{value:g}", element_bytes=value)


#: Policies by name, read-only (a policy of your own is a :class:`DtypePolicy`, given where a name
#: is). The KV cache follows the activations unless ``kv_dtype`` says otherwise, except in the
#: block-scaled policies, whose cache is fp8 (per-tensor scale) as NVIDIA's NVFP4 checkpoints
#: (``kv_cache_quant_algo = FP8``) and DeepSeek-style FP8 serving keep it; ``kv_dtype = "nvfp4"``
#: stores it in 4 bits. ``w4a16`` counts no scales (as before the block formats). ``w4a8`` is
#: MXFP4 weights with per-tensor FP8 activations (TensorRT-LLM's ``W4A8_MXFP4_FP8``), run at the
#: FP8 peak (the weights are widened to FP8 in the kernel).
DTYPES: Mapping[str, DtypePolicy] = MappingProxyType(
    {
        p.name: p
        for p in (
            DtypePolicy(name="fp32", weight_bytes=4, act_bytes=4, kv_bytes=4, compute="fp32"),
            DtypePolicy(name="tf32", weight_bytes=4, act_bytes=4, kv_bytes=4, compute="tf32"),
            DtypePolicy(name="fp16", weight_bytes=2, act_bytes=2, kv_bytes=2, compute="fp16"),
            DtypePolicy(name="bf16", weight_bytes=2, act_bytes=2, kv_bytes=2, compute="bf16"),
            DtypePolicy(name="fp8", weight_bytes=1, act_bytes=1, kv_bytes=1, compute="fp8"),
            DtypePolicy(name="int8", weight_bytes=1, act_bytes=1, kv_bytes=1, compute="int8"),
            DtypePolicy(name="w4a16", weight_bytes=0.5, act_bytes=2, kv_bytes=2, compute="fp16"),
            DtypePolicy(
                name="fp8_block",
                weight_bytes=FORMATS["fp8_block_weight"],
                act_bytes=FORMATS["fp8_block_act"],
                kv_bytes=1,
                compute="fp8",
            ),
            DtypePolicy(
                name="nvfp4",
                weight_bytes=FORMATS["nvfp4"],
                act_bytes=FORMATS["nvfp4"],
                kv_bytes=1,
                compute="nvfp4",
            ),
            DtypePolicy(
                name="mxfp4",
                weight_bytes=FORMATS["mxfp4"],
                act_bytes=FORMATS["mxfp4"],
                kv_bytes=1,
                compute="mxfp4",
            ),
            DtypePolicy(name="w4a8", weight_bytes=FORMATS["mxfp4"], act_bytes=1, kv_bytes=1, compute="fp8"),
        )
    }
)


def get_dtype(name: str | DtypePolicy, kv_dtype: str | None = None) -> DtypePolicy:
    """The named policy, with the KV-cache dtype overridden when ``kv_dtype`` is given.

    Args:
        name: a policy name (:data:`DTYPES`) or a :class:`DtypePolicy`.
        kv_dtype: the KV cache's dtype (:data:`KV_DTYPES`), or None to keep the policy's.
    """
    if isinstance(name, DtypePolicy):
        return name.with_kv(kv_dtype)
    if not isinstance(name, str):
        raise SpecError(f"dtype: expected a policy name, got {name!r}")
    if name not in DTYPES:
        raise unknown_name("dtype", name, DTYPES)
    return DTYPES[name].with_kv(kv_dtype)
