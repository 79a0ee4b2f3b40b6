"""Which device JAX runs on, which preset it is, and how much memory it has."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import jax

from rooflax.errors import DeviceError, boolean
from rooflax.hardware import HARDWARE, Hardware

__all__ = ["DeviceInfo", "detect_device", "preset_for_kind"]

# device_kind patterns (as the CUDA/ROCm drivers name the parts) -> preset, most specific first.
_KINDS = (
    (r"H200", "h200"),
    (r"H100.*PCIe", "h100-pcie"),
    (r"H100", "h100-sxm"),
    (r"A100.*80GB.*PCIe|A100-PCIE-80GB", "a100-80gb-pcie"),
    (r"A100.*PCIe|A100-PCIE", "a100-40gb-pcie"),
    (r"A100.*80GB", "a100-80gb-sxm"),
    (r"A100", "a100-40gb-sxm"),
    (r"L40S", "l40s"),
    (r"\bA40\b", "a40"),
    (r"RTX A6000", "a6000"),
    (r"RTX 4090", "rtx4090"),
    (r"\bL4\b", "l4"),
    (r"MI300X", "mi300x"),
)


def preset_for_kind(kind: str) -> Hardware | None:
    """The hardware preset for a JAX ``device_kind`` string, or None.

    >>> preset_for_kind("NVIDIA H100 80GB HBM3").name
    'h100-sxm'
    >>> preset_for_kind("NVIDIA A100-SXM4-80GB").name
    'a100-80gb-sxm'
    >>> preset_for_kind("cpu") is None
    True
    """
    for pattern, name in _KINDS:
        if re.search(pattern, kind, flags=re.IGNORECASE):
            return HARDWARE[name]
    return None


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """The default JAX device: platform, kind, matching preset, usable memory in bytes."""

    device: jax.Device
    platform: str
    kind: str
    preset: Hardware | None
    memory_bytes: float

    @property
    def is_accelerator(self) -> bool:
        return self.platform != "cpu"


def _memory(device: jax.Device, preset: Hardware | None) -> float:
    stats = device.memory_stats() if hasattr(device, "memory_stats") else None
    if stats and stats.get("bytes_limit"):
        return float(stats["bytes_limit"])
    if preset is not None:
        return preset.memory_bytes
    return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def detect_device(*, require_accelerator: bool = False) -> DeviceInfo:
    """Describe the default JAX device; DeviceError if an accelerator is required and absent."""
    require_accelerator = boolean("require_accelerator", require_accelerator)
    device = jax.devices()[0]
    if require_accelerator and device.platform == "cpu":
        raise DeviceError("device: an accelerator was required (--require-accelerator) but JAX sees only the CPU "
                          f"({jax.default_backend()} backend); install JAX with CUDA or ROCm support")
    kind = device.device_kind
    preset = None if device.platform == "cpu" else preset_for_kind(kind)
    return DeviceInfo(device, device.platform, kind, preset, _memory(device, preset))
