"""Dtype policies: bytes per weight, activation and KV-cache element, and which peak applies."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType

from rooflax.errors import SpecError, positive_float, unknown_name
from rooflax.names import PEAK_DTYPES

__all__ = ["DTYPES", "KV_DTYPES", "DtypePolicy", "get_dtype"]

#: Bytes per KV-cache element for the ``kv_dtype`` option.
KV_DTYPES: dict[str, float] = {"fp32": 4, "fp16": 2, "bf16": 2, "fp8": 1, "int8": 1, "int4": 0.5}


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
#: is). The KV cache follows the activations unless ``kv_dtype`` says otherwise.
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
