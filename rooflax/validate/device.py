"""Which device JAX runs on, which preset it is, and how much memory it has."""

from __future__ import annotations

import os
from dataclasses import dataclass

import jax

from rooflax.config.hardware import Hardware, preset_for_kind
from rooflax.errors import DeviceError, boolean

__all__ = ["DeviceInfo", "detect_device", "preset_for_kind"]


@dataclass(frozen=True, slots=True, kw_only=True)
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
        raise DeviceError(
            "device: an accelerator was required (--require-accelerator) but JAX sees only the CPU "
            f"({jax.default_backend()} backend); install JAX with CUDA or ROCm support"
        )
    kind = device.device_kind
    preset = None if device.platform == "cpu" else preset_for_kind(kind)
    return DeviceInfo(
        device=device, platform=device.platform, kind=kind, preset=preset, memory_bytes=_memory(device, preset)
    )
