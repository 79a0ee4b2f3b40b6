"""Dtype policies: bytes per weight, activation and KV-cache element, and which peak applies.

Block-scaled formats store their elements with one scale per block of them; the scales are
counted in the bytes. A tensor of ``r × c`` elements (``c`` along the blocked, reduction
dimension) in a format of ``e`` bytes per element with one ``s``-byte scale per ``br × bc``
block takes, exactly (:meth:`Format.tensor_bytes`)::

    r·c·e + ⌈r/br⌉·⌈c/bc⌉·s

which is ``r·c·(e + s/(br·bc))`` (:attr:`Format.bytes_per_element`) whenever ``br`` divides
``r`` and ``bc`` divides ``c``. The cost model counts bytes per element, so its counts are
exact under that rule. Every dimension the preset models block (hidden, the q/k/v and MLP
widths, the vocabulary, and the head dim of the KV cache) is a multiple of the blocks below;
only a mixture's router is not (its 8 or 60 experts: the rows of its weight under 128 × 128
blocks, the width of its logits), and ``tests/test_formats.py`` checks each preset against the
exact formula. A tensor whose dimensions are not multiples is undercounted by the scales its
partial edge blocks hold beyond their share, fewer than ``r/br + c/bc + 1`` scales (a router
of 8 experts on a 4096 hidden under 128 × 128 blocks: 120 bytes of 32896). The formats
(``bytes_per_element``):

``fp8``
    e4m3 with one fp32 scale per tensor: 1. Per-tensor scales (4 bytes a tensor) are not
    counted, here and in ``nvfp4``: under 1e-6 of any matrix of 4·10^6 elements or more.
``fp8_block_weight``, ``fp8_block_act``
    e4m3 with fp32 scales per 128 × 128 weight block and per 1 × 128 activation block, as
    DeepSeek-V3 trains and serves (its report, §3.3.2): ``1 + 4/16384`` and ``1 + 4/128``.
``nvfp4``
    e2m1 with one e4m3 scale per 16 elements and one fp32 scale per tensor (NVIDIA's NVFP4,
    *Introducing NVFP4*, 2025): ``0.5 + 1/16 = 0.5625``.
``mxfp4``
    e2m1 with one e8m0 scale per 32 elements (OCP Microscaling Formats v1.0, 2023):
    ``0.5 + 1/32 = 0.53125``.

A Llama-3-8B ``gate_proj`` (4096 → 14336) in NVFP4: ``14336·4096/2`` element bytes and one
byte for each of ``14336·4096/16`` scales:

>>> FORMATS["nvfp4"].bytes_per_element, FORMATS["nvfp4"].tensor_bytes(14336, 4096)
(0.5625, 33030144.0)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType

from rooflax.errors import SpecError, positive_float, positive_int, unknown_name
from rooflax.names import PEAK_DTYPES

__all__ = ["DTYPES", "FORMATS", "KV_DTYPES", "DtypePolicy", "Format", "get_dtype"]


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
        if self.block != (0, 0):
            for size in self.block:
                positive_int(f"format {self.name!r}: block", size)
            positive_float(f"format {self.name!r}: scale_bytes", self.scale_bytes)

    @property
    def bytes_per_element(self) -> float:
        """``e + s/(br·bc)``: the bytes of an element with its share of a scale."""
        rows, cols = self.block
        return self.element_bytes + (self.scale_bytes / (rows * cols) if rows else 0)

    def tensor_bytes(self, rows: int, cols: int) -> float:
        """Bytes of a ``rows × cols`` tensor (``cols`` along the blocked dimension), scales and partial blocks included.

        Args:
            rows: elements down (a weight's output width, or tokens for activations).
            cols: elements along the blocked, reduction dimension.
        """
        rows, cols = positive_int("rows", rows), positive_int("cols", cols)
        elements = rows * cols * self.element_bytes
        if not self.block[0]:
            return elements
        scales = math.ceil(rows / self.block[0]) * math.ceil(cols / self.block[1])
        return elements + scales * self.scale_bytes


#: Storage formats by name, read-only (module docstring: the rule that makes them exact per element).
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

#: Bytes per KV-cache element for the ``kv_dtype`` option (``nvfp4``: blocks of 16 along the head
#: dimension, as TensorRT-LLM stores an NVFP4 cache; read back into the attention's compute dtype,
#: so a KV dtype needs no tensor cores of its own).
KV_DTYPES: dict[str, float] = {
    "fp32": 4,
    "fp16": 2,
    "bf16": 2,
    "fp8": 1,
    "int8": 1,
    "int4": 0.5,
    "nvfp4": FORMATS["nvfp4"].bytes_per_element,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class DtypePolicy:
    """How many bytes each kind of tensor takes and which hardware peak the matmuls run at.

    Attributes:
        name: policy name (``fp16``, ``w4a16``, ...), with ``/kv=...`` when the KV dtype
            was overridden.
        weight_bytes: ``w`` in the counting contract.
        act_bytes: ``a``.
        kv_bytes: ``k``.
        compute: key into :attr:`rooflax.Hardware.peak_flops`.
    """

    name: str
    weight_bytes: float
    act_bytes: float
    kv_bytes: float
    compute: str

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise SpecError(f"dtype.name: expected a non-empty string, got {self.name!r}")
        for key in ("weight_bytes", "act_bytes", "kv_bytes"):
            positive_float(f"dtype {self.name!r}: {key}", getattr(self, key))
        if self.compute not in PEAK_DTYPES:
            raise unknown_name(f"dtype {self.name!r}: compute", self.compute, PEAK_DTYPES)

    def with_kv(self, kv_dtype: str | None) -> DtypePolicy:
        """This policy with its KV cache stored as ``kv_dtype`` (None keeps it; a previous override is replaced)."""
        if kv_dtype is None:
            return self
        if not isinstance(kv_dtype, str) or kv_dtype not in KV_DTYPES:
            raise unknown_name("kv_dtype", kv_dtype, KV_DTYPES)
        base = self.name.partition("/kv=")[0]
        return replace(self, name=f"{base}/kv={kv_dtype}", kv_bytes=KV_DTYPES[kv_dtype])

    def to_dict(self) -> dict:
        """A plain dict for metadata."""
        return {
            "name": self.name,
            "weight_bytes": self.weight_bytes,
            "act_bytes": self.act_bytes,
            "kv_bytes": self.kv_bytes,
            "compute": self.compute,
        }


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
                weight_bytes=FORMATS["fp8_block_weight"].bytes_per_element,
                act_bytes=FORMATS["fp8_block_act"].bytes_per_element,
                kv_bytes=1,
                compute="fp8",
            ),
            DtypePolicy(
                name="nvfp4",
                weight_bytes=FORMATS["nvfp4"].bytes_per_element,
                act_bytes=FORMATS["nvfp4"].bytes_per_element,
                kv_bytes=1,
                compute="nvfp4",
            ),
            DtypePolicy(
                name="mxfp4",
                weight_bytes=FORMATS["mxfp4"].bytes_per_element,
                act_bytes=FORMATS["mxfp4"].bytes_per_element,
                kv_bytes=1,
                compute="mxfp4",
            ),
            DtypePolicy(
                name="w4a8", weight_bytes=FORMATS["mxfp4"].bytes_per_element, act_bytes=1, kv_bytes=1, compute="fp8"
            ),
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
