"""Accelerators: dense peak FLOP/s per dtype, memory bandwidth and capacity.

Every figure is dense (no structured sparsity) and comes from the vendor's datasheet
or whitepaper named in ``source``.

The interconnect (the third roof, for collectives) is the card's GPU-to-GPU link in one
direction: half the datasheet's bidirectional NVLink (or Infinity Fabric) figure, or PCIe
x16 where the card has no such link. Its latency is one hop of a collective: NCCL's ring
LL128 hardware latency for NVLink, 1.9 µs (``hwLat`` in NCCL's ``src/graph/tuning.cc``),
used for every preset. Users add their own accelerators as TOML files::

    name = "my-gpu"
    label = "My GPU"                      # optional, used in chart titles
    bandwidth_bytes_per_s = 1.0e12
    memory_bytes = 24e9
    interconnect_bytes_per_s = 32e9       # optional: GPU-to-GPU link, one direction
    interconnect_latency_s = 1.9e-6       # optional: one hop of a collective
    interconnect_gpus = 8                 # optional: most devices the link joins (default: no limit)
    board_power_w = 350.0                 # optional: TDP / maximum board power, watts
    source = "where the figures come from"  # optional

    [peak_flops]                          # FLOP/s (or OP/s for int8) per dtype
    fp16 = 1.0e14
    bf16 = 1.0e14
"""

from __future__ import annotations

import math
import numbers
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from rooflax.config._files import read_text
from rooflax.errors import SpecError, check_keys, positive_int, unknown_name
from rooflax.names import PEAK_DTYPES, PEAK_NEEDS, PHASES, TERM_GROUPS

__all__ = ["HARDWARE", "Hardware", "get_hardware", "hardware_to_toml", "load_hardware", "preset_for_kind"]

#: Achieved-performance fields (:mod:`rooflax.achieved`) of presets and files that do not give them.
#: The tile is the 128×128 output tile with a K step of 32 that NVIDIA's *Matrix Multiplication
#: Background User's Guide* (DU-09799-001, §2.3) lists among cuBLAS's typical tiles. The overhead
#: and the efficiencies are typical values, not measurements of any one part: CUDA kernels take a
#: few microseconds to launch and drain, and tuned GEMM and copy kernels sustain roughly 80% of
#: the datasheet peak and 85% of the datasheet bandwidth. ``rooflax validate --profile`` measures
#: a device and writes fitted values in their place.
DEFAULT_ACHIEVED: dict[str, Any] = {
    "sm_count": 80,
    "kernel_overhead_s": 5e-6,
    "tile_m": 128,
    "tile_n": 128,
    "tile_k": 32,
    "compute_efficiency": 0.8,
    "bandwidth_efficiency": 0.85,
}

#: The achieved-performance fields a hardware file may also set per op group (``group_terms``).
GROUP_TERMS = ("kernel_overhead_s", "compute_efficiency", "bandwidth_efficiency")
#: Terms a group may also have that only predictions of *replayed* kernels use (a benchmark
#: timing one kernel on the same operands back to back, :mod:`rooflax.calibration.predict`):
#: how many times faster than device memory their operands are read when they stay in the L2
#: cache between replays (operands of at most ``l2_resident_bytes``). Sweeps price a forward
#: pass, which reads every layer's weights from device memory, and never use them.
REPLAY_TERMS = ("l2_speedup",)
#: Terms of the model's shape, 0 unless fitted: a group's ``corner`` (at most 1), the share of the
#: lesser of its compute and memory times a kernel adds to the greater (:mod:`rooflax.cost.achieved`),
#: 0 for perfect overlap; and the ``comm`` group's ``link_scaling`` ``γ``, a collective over ``p``
#: devices moving its bytes ``(p/2)^γ`` times slower than over 2 (a shared PCIe fabric, where
#: every added GPU shares the host's links: :func:`rooflax.cost.roofline.op_achieved_time`).
SHAPE_TERMS = ("corner", "link_scaling")
#: A group's error band, fitted with its terms: the p10 and p90 of measured / predicted time over
#: the measured kernels (an achieved time ``t`` is expected within ``[t·band_low, t·band_high]``
#: four times in five); without measurements there is no band (NaN).
BAND_TERMS = ("band_low", "band_high")
#: What a group's fitted terms were fitted on: the smallest and largest FLOPs and bytes of one
#: measured op (a kernel) of its family. A swept op far outside them is extrapolated
#: (:mod:`rooflax.answers.extrapolation`); without measurements there is no range (NaN).
RANGE_TERMS = ("fitted_flops_min", "fitted_flops_max", "fitted_bytes_min", "fitted_bytes_max")

#: The range each figure of an accelerator must lie in, with its unit: wide around every real part
#: (a microcontroller, or a small slice of a CPU as ``validate`` measures it, to a rack-scale system),
#: so that a typo (1e300, 1e-300) is refused rather than priced, and every product and quotient of
#: the roofline stays finite in float64.
RANGES: dict[str, tuple[float, float, str]] = {
    "peak_flops": (1e6, 1e19, "FLOP/s"),
    "bandwidth_bytes_per_s": (1e6, 1e16, "B/s"),
    "memory_bytes": (1e3, 1e16, "B"),
    "interconnect_bytes_per_s": (1e6, 1e16, "B/s"),
    "interconnect_latency_s": (1e-10, 1.0, "s"),
    "board_power_w": (1e-3, 1e5, "W"),
    "kernel_overhead_s": (1e-12, 1.0, "s"),
    "compute_efficiency": (1e-4, 1.0, ""),
    "bandwidth_efficiency": (1e-4, 1.0, ""),
    "l2_speedup": (1.0, 100.0, ""),
    "corner": (0.0, 1.0, ""),
    "link_scaling": (0.0, 4.0, ""),
    "l2_resident_bytes": (0.0, 1e12, "B"),
    "band_low": (1e-3, 1e3, ""),
    "band_high": (1e-3, 1e3, ""),
    "fitted_flops_min": (0.0, 1e30, "FLOP"),
    "fitted_flops_max": (0.0, 1e30, "FLOP"),
    "fitted_bytes_min": (0.0, 1e30, "B"),
    "fitted_bytes_max": (0.0, 1e30, "B"),
}


def _figure(where: str, key: str, value: object, kind: str | None = None) -> float:
    """``value`` as a float within :data:`RANGES` of ``kind`` (default ``key``), else a one-line SpecError."""
    low, high, unit = RANGES[kind or key]
    allowed = f"{low:g} to {high:g}" + (f" {unit}" if unit else "")
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise SpecError(f"{where}: {key}: expected a number from {allowed}, got {value!r}")
    if not low <= float(value) <= high:
        raise SpecError(f"{where}: {key}: {float(value):g} is outside the range a real part has, {allowed}")
    return float(value)


def _checked_terms(where: str, terms: dict) -> dict[str, float]:
    """Per-kernel overhead and efficiencies within :data:`RANGES`, as floats; unknown keys refused."""
    check_keys(where, terms, (), (*GROUP_TERMS, *REPLAY_TERMS, *SHAPE_TERMS, *BAND_TERMS, *RANGE_TERMS))
    return {key: _figure(where, key, value) for key, value in terms.items()}


def _group_table(where: str, table: object) -> tuple:
    """A ``group_terms``-like table (group → terms) checked and in :data:`TERM_GROUPS` order, as pairs."""
    if not isinstance(table, Mapping | tuple):
        raise SpecError(f"{where}: expected a table of op group = {{{', '.join(GROUP_TERMS)}}}, got {table!r}")
    groups = dict(table.items() if isinstance(table, Mapping) else table)
    unknown = [group for group in groups if group not in TERM_GROUPS]
    if unknown:
        raise unknown_name(where, unknown[0], TERM_GROUPS, what="op group")
    checked = []
    for group in (g for g in TERM_GROUPS if g in groups):
        terms = groups[group]
        if not isinstance(terms, Mapping | tuple):
            raise SpecError(f"{where}.{group} must be a table of {', '.join(GROUP_TERMS)}, got {terms!r}")
        terms = dict(terms.items() if isinstance(terms, Mapping) else terms)
        checked.append((group, tuple(_checked_terms(f"{where}.{group}", terms).items())))
    return tuple(checked)


T = 1e12  # TFLOP/s → FLOP/s
GB = 1e9  # GB → bytes

#: Interconnect of a user file that gives none: PCIe 4.0 x16, 64 GB/s both ways (32 GB/s one way),
#: and one collective hop of 1.9 µs (NCCL's ring LL128 hardware latency, ``src/graph/tuning.cc``).
DEFAULT_INTERCONNECT_BYTES_PER_S = 32 * GB
DEFAULT_INTERCONNECT_LATENCY_S = 1.9e-6


@dataclass(frozen=True, slots=True, kw_only=True)
class Hardware:
    """One accelerator. Immutable and hashable; units are SI (FLOP/s, bytes/s, bytes).

    Args:
        name: preset or user name (lower case, used on the command line).
        peak_flops: dense peak per dtype, a mapping or ``(dtype, FLOP/s)`` pairs.
        bandwidth_bytes_per_s: peak memory bandwidth.
        memory_bytes: device memory capacity.
        sm_count: multiprocessors (NVIDIA SMs, AMD CUs): one matmul tile runs on each at a time.
        kernel_overhead_s: fixed time per kernel (launch, prologue, tail), seconds, > 0.
        tile_m, tile_n, tile_k: matmul kernel tile (M × N outputs, K step).
        compute_efficiency: fraction of ``peak_flops`` a tuned kernel sustains, in (0, 1].
        bandwidth_efficiency: fraction of ``bandwidth_bytes_per_s`` sustained, in (0, 1].
        group_terms: per op group (``qk/pv``, ...), values of ``kernel_overhead_s``,
            ``compute_efficiency`` and ``bandwidth_efficiency`` that replace the ones above
            for that group's ops; a mapping of mappings, as a calibrated profile writes.
        phase_terms: per phase (``prefill``, ``decode``, ``verify``), group terms that replace
            ``group_terms`` in that phase (fused attention runs other kernels in prefill and
            decode); a mapping of phase → group → terms.
        interconnect_bytes_per_s: GPU-to-GPU bandwidth in one direction (collectives).
        interconnect_latency_s: latency of one hop of a collective.
        board_power_w: TDP or maximum board power in watts (None: not published).
        l2_resident_bytes: the largest operand set that stays in the L2 cache when one kernel
            is replayed on the same operands (fitted to kernel benchmarks; 0: none). Only
            predictions of replayed kernels use it, with the groups' ``l2_speedup``.
        interconnect_gpus: the most devices the interconnect joins (an NVLink or ICI domain);
            a layout of more (``tp·pp·ep``) is refused, since every collective is priced on
            this one link. None: no limit (a file that does not say; the presets of 8-GPU
            boards leave it to the user to stay within 8).
        label: display name for charts; defaults to ``name``.
        source: where the figures come from.
    """

    name: str
    peak_flops: tuple[tuple[str, float], ...]
    bandwidth_bytes_per_s: float
    memory_bytes: float
    sm_count: int = DEFAULT_ACHIEVED["sm_count"]
    kernel_overhead_s: float = DEFAULT_ACHIEVED["kernel_overhead_s"]
    tile_m: int = DEFAULT_ACHIEVED["tile_m"]
    tile_n: int = DEFAULT_ACHIEVED["tile_n"]
    tile_k: int = DEFAULT_ACHIEVED["tile_k"]
    compute_efficiency: float = DEFAULT_ACHIEVED["compute_efficiency"]
    bandwidth_efficiency: float = DEFAULT_ACHIEVED["bandwidth_efficiency"]
    group_terms: tuple[tuple[str, tuple[tuple[str, float], ...]], ...] = ()
    phase_terms: tuple[tuple[str, tuple[tuple[str, tuple[tuple[str, float], ...]], ...]], ...] = ()
    interconnect_bytes_per_s: float = DEFAULT_INTERCONNECT_BYTES_PER_S
    interconnect_latency_s: float = DEFAULT_INTERCONNECT_LATENCY_S
    board_power_w: float | None = None
    l2_resident_bytes: float = 0.0
    interconnect_gpus: int | None = None
    label: str = ""
    source: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        where = f"hardware {self.name!r}"
        if not isinstance(self.name, str) or not self.name:
            raise SpecError(f"hardware.name: expected a non-empty string, got {self.name!r}")
        for key in ("label", "source"):
            if not isinstance(getattr(self, key), str):
                raise SpecError(f"{where}: {key}: expected a string, got {getattr(self, key)!r}")
        try:
            peaks = dict(self.peak_flops.items() if isinstance(self.peak_flops, Mapping) else self.peak_flops)
        except (TypeError, ValueError):
            raise SpecError(
                f"{where}: peak_flops: expected a table of dtype = FLOP/s, got {self.peak_flops!r}"
            ) from None
        if not peaks:
            raise SpecError(f"{where}: peak_flops is empty (give at least one of {', '.join(PEAK_DTYPES)})")
        for dtype, value in peaks.items():
            if dtype not in PEAK_DTYPES:
                raise unknown_name(f"{where}: peak_flops dtype", dtype, PEAK_DTYPES)
            _figure(where, f"peak_flops.{dtype}", value, "peak_flops")
        ordered = tuple((d, float(peaks[d])) for d in PEAK_DTYPES if d in peaks)
        object.__setattr__(self, "peak_flops", ordered)
        for key in ("bandwidth_bytes_per_s", "memory_bytes"):
            object.__setattr__(self, key, _figure(where, key, getattr(self, key)))
        for key in ("sm_count", "tile_m", "tile_n", "tile_k"):
            object.__setattr__(self, key, positive_int(f"{where}: {key}", getattr(self, key)))
        for key, value in _checked_terms(where, {key: getattr(self, key) for key in GROUP_TERMS}).items():
            object.__setattr__(self, key, value)
        object.__setattr__(self, "group_terms", _group_table(f"{where}: group_terms", self.group_terms))
        phases = dict(self.phase_terms.items() if isinstance(self.phase_terms, Mapping) else self.phase_terms)
        unknown = [phase for phase in phases if phase not in PHASES]
        if unknown:
            raise unknown_name(f"{where}: phase_terms", unknown[0], PHASES, what="phase")
        object.__setattr__(
            self,
            "phase_terms",
            tuple(
                (phase, _group_table(f"{where}: phase_terms.{phase}", phases[phase]))
                for phase in PHASES
                if phase in phases
            ),
        )
        for key in ("interconnect_bytes_per_s", "interconnect_latency_s", "l2_resident_bytes"):
            object.__setattr__(self, key, _figure(where, key, getattr(self, key)))
        if self.board_power_w is not None:
            object.__setattr__(self, "board_power_w", _figure(where, "board_power_w", self.board_power_w))
        if self.interconnect_gpus is not None:
            object.__setattr__(
                self, "interconnect_gpus", positive_int(f"{where}: interconnect_gpus", self.interconnect_gpus)
            )
        if not self.label:
            object.__setattr__(self, "label", self.name)

    @property
    def dtypes(self) -> tuple[str, ...]:
        """The dtypes this accelerator has a peak for."""
        return tuple(d for d, _ in self.peak_flops)

    def peak(self, dtype: str, *, policy: str | None = None) -> float:
        """Dense peak FLOP/s for ``dtype``; a one-line error naming what it needs if the part has none.

        Args:
            dtype: a peak dtype (a policy's ``compute``).
            policy: the dtype policy asking, named in the error (default: ``dtype``).
        """
        for name, value in self.peak_flops:
            if name == dtype:
                return value
        needs = PEAK_NEEDS.get(dtype, f"a {dtype} peak")
        raise SpecError(f"dtype: {policy or dtype} needs {needs}; {self.name} has {', '.join(self.dtypes)}")

    def check_layout(self, *, tp: int = 1, pp: int = 1, ep: int = 1) -> None:
        """Raise a one-line SpecError when the layout's ``tp·pp·ep`` devices exceed :attr:`interconnect_gpus`."""
        devices = tp * pp * ep
        if self.interconnect_gpus is not None and devices > self.interconnect_gpus:
            raise SpecError(
                f"tp×pp×ep: {tp}×{pp}×{ep} = {devices} devices exceed {self.name}'s interconnect domain of "
                f"{self.interconnect_gpus} (interconnect_gpus), the most its link joins; allowed: layouts of "
                f"at most {self.interconnect_gpus} devices"
            )

    def terms(self, group: str, phase: str | None = None) -> dict[str, float]:
        """``kernel_overhead_s``, ``compute_efficiency``, ``bandwidth_efficiency``, ``l2_speedup``,
        ``corner``, ``link_scaling``, the error band ``band_low``, ``band_high`` and the fitted range
        (:data:`RANGE_TERMS`) for a group of :data:`~rooflax.names.TERM_GROUPS` (in ``phase``: its
        ``phase_terms`` replace the group's, which replace the profile's own; ``l2_speedup`` is 1,
        ``corner`` and ``link_scaling`` 0, the band and the range NaN unless fitted; ``moe``, the
        routed experts' kernel, takes ``up/gate/down``'s terms where the profile has none of its own)."""
        own = {
            **{key: getattr(self, key) for key in GROUP_TERMS},
            "l2_speedup": 1.0,
            "corner": 0.0,
            "link_scaling": 0.0,
            "band_low": math.nan,
            "band_high": math.nan,
            **dict.fromkeys(RANGE_TERMS, math.nan),
        }
        groups = dict(dict(self.phase_terms).get(phase, ()) if phase is not None else ())
        table = dict(self.group_terms)
        if group == "moe" and group not in table and group not in groups:  # the experts' kernel, unfitted
            group = "up/gate/down"
        return {**own, **dict(table.get(group, ())), **dict(groups.get(group, ()))}

    def without_band(self) -> Hardware:
        """The same hardware and terms with no error band (every :data:`BAND_TERMS` entry dropped, as on a
        profile no measurement covers: null band columns), named ``<name>-noband``."""

        def strip(table: tuple) -> tuple:
            return tuple((group, tuple((k, v) for k, v in terms if k not in BAND_TERMS)) for group, terms in table)

        return replace(
            self,
            name=f"{self.name}-noband",
            group_terms=strip(self.group_terms),
            phase_terms=tuple((phase, strip(groups)) for phase, groups in self.phase_terms),
        )

    def ridge(self, dtype: str) -> float:
        """Ridge point in FLOP/byte: the intensity where an op turns compute-bound."""
        return self.peak(dtype) / self.bandwidth_bytes_per_s

    def to_dict(self) -> dict:
        """A plain dict (the TOML layout), for metadata and profiles."""
        return {
            "name": self.name,
            "label": self.label,
            "bandwidth_bytes_per_s": self.bandwidth_bytes_per_s,
            "memory_bytes": self.memory_bytes,
            **{key: getattr(self, key) for key in DEFAULT_ACHIEVED},
            "interconnect_bytes_per_s": self.interconnect_bytes_per_s,
            "interconnect_latency_s": self.interconnect_latency_s,
            **({"board_power_w": self.board_power_w} if self.board_power_w is not None else {}),
            **({"l2_resident_bytes": self.l2_resident_bytes} if self.l2_resident_bytes else {}),
            **({"interconnect_gpus": self.interconnect_gpus} if self.interconnect_gpus is not None else {}),
            "source": self.source,
            "peak_flops": dict(self.peak_flops),
            "group_terms": {group: dict(terms) for group, terms in self.group_terms},
            **(
                {
                    "phase_terms": {
                        phase: {group: dict(terms) for group, terms in groups} for phase, groups in self.phase_terms
                    }
                }
                if self.phase_terms
                else {}
            ),
        }


def _preset(
    name, label, bandwidth_gb_s, memory_gb, source, *, tile=None, interconnect_gpus=None, **peaks_tflops
) -> Hardware:
    sm_count, sm_source = _SM_COUNTS[name]
    link_gb_s, link_source = _LINKS[name]
    watts, power_source = _POWER[name]
    domain = "" if interconnect_gpus is None else f" among up to {interconnect_gpus} devices"
    return Hardware(
        name=name,
        label=label,
        peak_flops=tuple((d, v * T) for d, v in peaks_tflops.items()),
        bandwidth_bytes_per_s=bandwidth_gb_s * GB,
        memory_bytes=memory_gb * GB,
        sm_count=sm_count,
        **({} if tile is None else {"tile_m": tile, "tile_n": tile}),
        interconnect_bytes_per_s=link_gb_s * GB,
        board_power_w=watts,
        interconnect_gpus=interconnect_gpus,
        source=f"{source}; {sm_source}; interconnect {link_gb_s:g} GB/s one way{domain}: {link_source}; "
        f"board power {f'{watts:g} W' if watts else 'not published'}: {power_source}",
    )


#: Multiprocessors per preset, and where the count comes from (CUDA cores / 128 per SM on
#: Ampere GA10x and Ada, 64 per SM on A100 and H100; compute units on AMD). A TPU's TensorCores
#: stand in for SMs (each runs one matmul tile at a time on its MXUs) and its MXU for the tile
#: (``tile_m = tile_n``: 128 before v6e, 256 from v6e on); Gaudi 3's matrix engines (MMEs) stand in
#: for SMs, with the default tile.
_TPU_TILE = "tile = MXU columns (JAX jax/_src/tpu_info.py: mxu_column_size 128 before v6, 256 from v6)"
_SM_COUNTS = {
    "a40": (84, "84 SMs (A40 datasheet: 10,752 CUDA cores)"),
    "a6000": (84, "84 SMs (RTX A6000 datasheet: 10,752 CUDA cores)"),
    "a100-40gb-pcie": (108, "108 SMs (NVIDIA A100 Tensor Core GPU Architecture whitepaper, 2020)"),
    "a100-40gb-sxm": (108, "108 SMs (NVIDIA A100 Tensor Core GPU Architecture whitepaper, 2020)"),
    "a100-80gb-pcie": (108, "108 SMs (NVIDIA A100 Tensor Core GPU Architecture whitepaper, 2020)"),
    "a100-80gb-sxm": (108, "108 SMs (NVIDIA A100 Tensor Core GPU Architecture whitepaper, 2020)"),
    "h100-pcie": (114, "114 SMs (NVIDIA H100 Tensor Core GPU Architecture whitepaper, 2022)"),
    "h100-sxm": (132, "132 SMs (NVIDIA H100 Tensor Core GPU Architecture whitepaper, 2022)"),
    "h200": (132, "132 SMs (H200 is the H100 SXM die with HBM3e)"),
    "l40s": (142, "142 SMs (L40S datasheet: 18,176 CUDA cores)"),
    "l4": (58, "58 SMs (L4 datasheet: 7,424 CUDA cores)"),
    "rtx4090": (128, "128 SMs (Ada Lovelace architecture whitepaper: 16,384 CUDA cores)"),
    "b200": (148, "148 SMs (NVIDIA Blackwell architecture technical brief, 2024: two dies of 74 SMs)"),
    "mi300x": (304, "304 compute units (AMD CDNA 3 architecture whitepaper, 2023)"),
    "b300": (160, "160 SMs (NVIDIA technical blog, Inside NVIDIA Blackwell Ultra, 2025: the full GPU)"),
    "gb200": (148, "148 SMs (NVIDIA Blackwell architecture technical brief, 2024: two dies of 74 SMs)"),
    "h20": (78, "78 SMs (the CUDA device query of an H20 as Geekbench 6 lists it; NVIDIA publishes none)"),
    "h800": (132, "132 SMs (the H100 SXM die: NVIDIA H100 Tensor Core GPU Architecture whitepaper, 2022)"),
    "mi325x": (304, "304 compute units (AMD Instinct MI325X datasheet, 2024)"),
    "mi355x": (256, "256 compute units (AMD CDNA 4 architecture whitepaper, 2025: 8 XCDs of 32 CUs)"),
    "tpu-v5e": (1, f"1 TensorCore as SMs, of 4 MXUs (Cloud TPU v5e documentation); {_TPU_TILE}"),
    "tpu-v5p": (2, f"2 TensorCores as SMs, of 4 MXUs each (Cloud TPU v5p documentation); {_TPU_TILE}"),
    "tpu-v6e": (1, f"1 TensorCore as SMs, of two 256x256 MXUs (Cloud TPU v6e documentation); {_TPU_TILE}"),
    "tpu7x": (2, f"2 TensorCores as SMs (Cloud TPU7x documentation; JAX shows each as a device); {_TPU_TILE}"),
    "gaudi3": (8, "8 matrix engines (MMEs) as SMs (Intel Gaudi 3, Hot Chips 2024); tile: default"),
}


_PCIE4 = "no NVLink; PCIe Gen4 x16, 64 GB/s bidirectional (datasheet)"
#: GPU-to-GPU bandwidth one way (GB/s) per preset, and where it comes from (half the bidirectional figure).
_LINKS = {
    "a40": (56.25, "NVLink bridge 112.5 GB/s bidirectional (A40 datasheet)"),
    "a6000": (56.25, "NVLink bridge 112.5 GB/s bidirectional (RTX A6000 datasheet)"),
    "a100-40gb-pcie": (300, "NVLink bridge for 2 GPUs, 600 GB/s (A100 datasheet)"),
    "a100-40gb-sxm": (300, "NVLink 600 GB/s (A100 datasheet)"),
    "a100-80gb-pcie": (300, "NVLink bridge for 2 GPUs, 600 GB/s (A100 datasheet)"),
    "a100-80gb-sxm": (300, "NVLink 600 GB/s (A100 datasheet)"),
    "h100-pcie": (300, "NVLink bridge 600 GB/s (H100 datasheet, PCIe)"),
    "h100-sxm": (450, "NVLink 900 GB/s (H100 datasheet, SXM)"),
    "h200": (450, "NVLink 900 GB/s (H200 datasheet, SXM)"),
    "l40s": (32, _PCIE4),
    "l4": (32, _PCIE4),
    "rtx4090": (32, _PCIE4),
    "b200": (900, "NVLink 5, 1.8 TB/s bidirectional per GPU (HGX B200 datasheet)"),
    "mi300x": (448, "7 Infinity Fabric links of 128 GB/s bidirectional, 896 GB/s (MI300X datasheet)"),
    "b300": (900, "NVLink 5, 1.8 TB/s bidirectional per GPU (HGX B300 datasheet)"),
    "gb200": (
        900,
        "NVLink 5 switch system of the NVL72 rack, 130 TB/s for 72 GPUs, 1.8 TB/s each (GB200 NVL72 datasheet)",
    ),
    "h20": (450, "NVLink 900 GB/s (NVIDIA H20 specifications)"),
    "h800": (200, "NVLink 400 GB/s bidirectional (NVIDIA H800 specifications: the H100 SXM's link cut to 400 GB/s)"),
    "mi325x": (448, "7 Infinity Fabric links of 128 GB/s bidirectional, 896 GB/s (MI325X datasheet)"),
    "mi355x": (537.6, "7 Infinity Fabric links of 153.6 GB/s bidirectional, 1075.2 GB/s (MI355X datasheet)"),
    "tpu-v5e": (200, "ICI 400 GB/s bidirectional per chip, 4 ports, 2D torus (Cloud TPU v5e documentation)"),
    "tpu-v5p": (600, "ICI 1200 GB/s bidirectional per chip, 3D torus (Cloud TPU v5p documentation)"),
    "tpu-v6e": (400, "ICI 800 GB/s bidirectional per chip, 4 ports, 2D torus (Cloud TPU v6e documentation)"),
    "tpu7x": (600, "ICI 1.2 TB/s bidirectional per chip (Google, Ironwood announcement, 2025)"),
    "gaudi3": (600, "24 × 200 GbE RoCE ports, 1200 GB/s bidirectional (Intel Gaudi 3, Hot Chips 2024)"),
}

#: TDP or maximum board power per preset in watts (None: not published), and where it comes from.
_POWER = {
    "a40": (300, "max power consumption 300 W (A40 datasheet)"),
    "a6000": (300, "max power consumption 300 W (RTX A6000 datasheet)"),
    "a100-40gb-pcie": (250, "max TDP 250 W (A100 datasheet, PCIe 40GB)"),
    "a100-40gb-sxm": (400, "max TDP 400 W (A100 datasheet, SXM)"),
    "a100-80gb-pcie": (300, "max TDP 300 W (A100 datasheet, PCIe 80GB)"),
    "a100-80gb-sxm": (400, "max TDP 400 W (A100 datasheet, SXM)"),
    "h100-pcie": (350, "max TDP 300-350 W configurable (H100 datasheet, PCIe)"),
    "h100-sxm": (700, "max TDP up to 700 W configurable (H100 datasheet, SXM)"),
    "h200": (700, "max TDP up to 700 W configurable (H200 datasheet, SXM)"),
    "l40s": (350, "max power consumption 350 W (L40S datasheet)"),
    "l4": (72, "max power consumption 72 W (L4 datasheet)"),
    "rtx4090": (450, "total graphics power 450 W (GeForce RTX 4090 specifications)"),
    "b200": (1000, "max TDP 1000 W (NVIDIA Blackwell datasheets, HGX B200)"),
    "mi300x": (750, "total board power 750 W peak (MI300X datasheet)"),
    "b300": (1100, "max TDP 1100 W (NVIDIA Blackwell Ultra datasheets, HGX B300)"),
    "gb200": (1200, "max TDP 1200 W per GPU (NVIDIA Blackwell datasheets, GB200)"),
    "h20": (400, "max TDP 400 W (NVIDIA H20 specifications)"),
    "h800": (700, "max TDP up to 700 W (as H100 SXM: NVIDIA H800 specifications)"),
    "mi325x": (1000, "total board power 1000 W peak (MI325X datasheet)"),
    "mi355x": (1400, "total board power 1400 W peak (MI355X datasheet, liquid cooled)"),
    "tpu-v5e": (None, "Google publishes no per-chip power for TPU v5e"),
    "tpu-v5p": (None, "Google publishes no per-chip power for TPU v5p"),
    "tpu-v6e": (None, "Google publishes no per-chip power for TPU v6e"),
    "tpu7x": (None, "Google publishes no per-chip power for TPU7x"),
    "gaudi3": (900, "TDP 900 W air cooled OAM, 1200 W liquid (Intel Gaudi 3, Hot Chips 2024)"),
}


#: The dense peaks of every A100 (40 or 80 GB, PCIe or SXM: the same GA100 compute), TFLOP/s.
_A100_TFLOPS = {"fp32": 19.5, "tf32": 156, "fp16": 312, "bf16": 312, "int8": 624}
#: The dense peaks of the Hopper SXM die (H100 SXM, H200, H800: the same compute), TFLOP/s.
_HOPPER_SXM_TFLOPS = {"fp32": 67, "tf32": 494.7, "fp16": 989.4, "bf16": 989.4, "fp8": 1978.9, "int8": 1978.9}
_A100 = "NVIDIA A100 datasheet (2021): dense FP32 19.5, TF32 156, FP16/BF16 312 TFLOPS, INT8 624 TOPS"
_H100 = "NVIDIA H100 datasheet (2023), dense (half the sparsity figures)"
_PRESETS = (
    _preset(
        "a40",
        "A40",
        696,
        48,
        "NVIDIA A40 datasheet (2021): dense tensor TF32 74.8, FP16/BF16 149.7 TFLOPS, "
        "INT8 299.3 TOPS; FP32 37.4 TFLOPS; 696 GB/s GDDR6",
        fp32=37.4,
        tf32=74.8,
        fp16=149.7,
        bf16=149.7,
        int8=299.3,
    ),
    _preset(
        "a6000",
        "RTX A6000",
        768,
        48,
        "NVIDIA RTX A6000 datasheet (2021): FP32 38.7, dense tensor TF32 77.4, "
        "FP16/BF16 154.8 TFLOPS, INT8 309.7 TOPS; 768 GB/s",
        fp32=38.7,
        tf32=77.4,
        fp16=154.8,
        bf16=154.8,
        int8=309.7,
    ),
    _preset(
        "a100-40gb-pcie",
        "A100 40GB PCIe",
        1555,
        40,
        _A100 + "; 1555 GB/s HBM2",
        **_A100_TFLOPS,
    ),
    _preset(
        "a100-40gb-sxm",
        "A100 40GB SXM",
        1555,
        40,
        _A100 + "; 1555 GB/s HBM2",
        **_A100_TFLOPS,
    ),
    _preset(
        "a100-80gb-pcie",
        "A100 80GB PCIe",
        1935,
        80,
        _A100 + "; 1935 GB/s HBM2e",
        **_A100_TFLOPS,
    ),
    _preset(
        "a100-80gb-sxm",
        "A100 80GB SXM",
        2039,
        80,
        _A100 + "; 2039 GB/s HBM2e",
        **_A100_TFLOPS,
    ),
    _preset(
        "h100-pcie",
        "H100 PCIe",
        2000,
        80,
        _H100 + ": FP32 51, TF32 378, FP16/BF16 756.5, FP8 1513 TFLOPS, INT8 1513 TOPS; 2.0 TB/s HBM2e",
        fp32=51,
        tf32=378,
        fp16=756.5,
        bf16=756.5,
        fp8=1513,
        int8=1513,
    ),
    _preset(
        "h100-sxm",
        "H100 SXM",
        3350,
        80,
        _H100 + ": FP32 67, TF32 494.7, FP16/BF16 989.4, FP8 1978.9 TFLOPS, INT8 1978.9 TOPS; 3.35 TB/s HBM3",
        **_HOPPER_SXM_TFLOPS,
    ),
    _preset(
        "h200",
        "H200",
        4800,
        141,
        "NVIDIA H200 datasheet (2024), SXM, dense: FP32 67, TF32 494.7, FP16/BF16 "
        "989.4, FP8 1978.9 TFLOPS, INT8 1978.9 TOPS; 4.8 TB/s HBM3e, 141 GB",
        **_HOPPER_SXM_TFLOPS,
    ),
    _preset(
        "l40s",
        "L40S",
        864,
        48,
        "NVIDIA L40S datasheet (2023), dense: FP32 91.6, TF32 183, FP16/BF16 362.05, "
        "FP8 733 TFLOPS, INT8 733 TOPS; 864 GB/s",
        fp32=91.6,
        tf32=183,
        fp16=362.05,
        bf16=362.05,
        fp8=733,
        int8=733,
    ),
    _preset(
        "l4",
        "L4",
        300,
        24,
        "NVIDIA L4 datasheet (2023), dense: FP32 30.3, TF32 60, FP16/BF16 121, FP8 242.5 "
        "TFLOPS, INT8 242.5 TOPS; 300 GB/s",
        fp32=30.3,
        tf32=60,
        fp16=121,
        bf16=121,
        fp8=242.5,
        int8=242.5,
    ),
    _preset(
        "rtx4090",
        "RTX 4090",
        1008,
        24,
        "NVIDIA Ada Lovelace architecture whitepaper (2022), RTX 4090, dense "
        "with FP32 accumulate: FP32 82.6, TF32 82.6, FP16/BF16 165.2, FP8 330.3 TFLOPS, INT8 660.6 TOPS; 1008 GB/s",
        fp32=82.6,
        tf32=82.6,
        fp16=165.2,
        bf16=165.2,
        fp8=330.3,
        int8=660.6,
    ),
    _preset(
        "b200",
        "B200",
        8000,
        180,
        "NVIDIA HGX B200 datasheet (2024), per GPU of 8, dense (half the sparsity "
        "figures): FP32 75, TF32 1125, FP16/BF16 2250, FP8 4500, NVFP4/MXFP4 9000 TFLOPS, INT8 4500 TOPS; "
        "8 TB/s HBM3e, 180 GB",
        fp32=75,
        tf32=1125,
        fp16=2250,
        bf16=2250,
        fp8=4500,
        int8=4500,
        nvfp4=9000,
        mxfp4=9000,
    ),
    _preset(
        "mi300x",
        "MI300X",
        5300,
        192,
        "AMD Instinct MI300X datasheet (2023), dense matrix: FP32 163.4, "
        "TF32 653.7, FP16/BF16 1307.4, FP8 2614.9 TFLOPS, INT8 2614.9 TOPS; 5.3 TB/s HBM3, 192 GB",
        fp32=163.4,
        tf32=653.7,
        fp16=1307.4,
        bf16=1307.4,
        fp8=2614.9,
        int8=2614.9,
    ),
    _preset(
        "b300",
        "B300",
        8000,
        288,
        "NVIDIA HGX B300 datasheet (2025), per GPU of 8, dense (half the sparsity figures): FP32 75, "
        "TF32 1125, FP16/BF16 2250, FP8 4500, NVFP4/MXFP4 13500 TFLOPS (108 PFLOPS dense for 8); "
        "8 TB/s HBM3e, 288 GB (NVIDIA technical blog, Inside NVIDIA Blackwell Ultra, 2025); "
        "INT8 left out (cut to a fraction on Blackwell Ultra, no dense figure published)",
        fp32=75,
        tf32=1125,
        fp16=2250,
        bf16=2250,
        fp8=4500,
        nvfp4=13500,
        mxfp4=13500,
    ),
    _preset(
        "gb200",
        "GB200",
        8000,
        186,
        "NVIDIA GB200 NVL72 datasheet (2024), per GPU of 72, dense (half the sparsity figures): FP32 80, "
        "TF32 1250, FP16/BF16 2500, FP8 5000, NVFP4/MXFP4 10000 TFLOPS, INT8 5000 TOPS; "
        "576 TB/s and 13.4 TB HBM3e for 72 GPUs: 8 TB/s, 186 GB each",
        interconnect_gpus=72,
        fp32=80,
        tf32=1250,
        fp16=2500,
        bf16=2500,
        fp8=5000,
        int8=5000,
        nvfp4=10000,
        mxfp4=10000,
    ),
    _preset(
        "h20",
        "H20",
        4000,
        96,
        "NVIDIA H20 specifications (2024, for China; no datasheet on nvidia.com), dense: FP32 44, TF32 74, "
        "FP16/BF16 148, FP8 296 TFLOPS, INT8 296 TOPS; 4.0 TB/s HBM3, 96 GB",
        fp32=44,
        tf32=74,
        fp16=148,
        bf16=148,
        fp8=296,
        int8=296,
    ),
    _preset(
        "h800",
        "H800",
        3350,
        80,
        "NVIDIA H800 specifications (2023): the H100 SXM's compute and memory, " + _H100 + ": FP32 67, TF32 "
        "494.7, FP16/BF16 989.4, FP8 1978.9 TFLOPS, INT8 1978.9 TOPS; 3.35 TB/s HBM3",
        **_HOPPER_SXM_TFLOPS,
    ),
    _preset(
        "mi325x",
        "MI325X",
        6000,
        256,
        "AMD Instinct MI325X datasheet (2024), dense matrix: FP32 163.4, TF32 653.7, FP16/BF16 1307.4, "
        "FP8 2614.9 TFLOPS, INT8 2614.9 TOPS; 6 TB/s HBM3E, 256 GB",
        fp32=163.4,
        tf32=653.7,
        fp16=1307.4,
        bf16=1307.4,
        fp8=2614.9,
        int8=2614.9,
    ),
    _preset(
        "mi355x",
        "MI355X",
        8000,
        288,
        "AMD Instinct MI355X datasheet (2025), dense matrix: FP32 157.3, FP16/BF16 2516.6, FP8 5033.2, "
        "MXFP4 10066.3 TFLOPS, INT8 5033.2 TOPS (256 CUs × 8192 FP8 FLOP a clock at 2.4 GHz, ISSCC 2026); "
        "no TF32 matrix ops (CDNA 4), no NVFP4 scales; 8 TB/s HBM3E, 288 GB",
        fp32=157.3,
        fp16=2516.6,
        bf16=2516.6,
        fp8=5033.2,
        int8=5033.2,
        mxfp4=10066.3,
    ),
    _preset(
        "tpu-v5e",
        "TPU v5e",
        819,
        16,
        "Cloud TPU v5e documentation: BF16 197 TFLOPS, INT8 393 TOPS per chip; HBM2 16 GB, 819 GB/s",
        tile=128,
        interconnect_gpus=256,
        bf16=197,
        int8=393,
    ),
    _preset(
        "tpu-v5p",
        "TPU v5p",
        2765,
        95,
        "Cloud TPU v5p documentation: BF16 459, FP8 459 TFLOPS per chip; HBM2e 95 GB, 2765 GB/s; "
        "INT8 918 TOPS (JAX jax/_src/tpu_info.py: 9.18e14 per chip)",
        tile=128,
        interconnect_gpus=8960,
        bf16=459,
        fp8=459,
        int8=918,
    ),
    _preset(
        "tpu-v6e",
        "TPU v6e (Trillium)",
        1638,
        32,
        "Cloud TPU v6e documentation: BF16 918 TFLOPS, INT8 1836 TOPS per chip; HBM 32 GB, 1638 GB/s; "
        "FP8 918 TFLOPS (Cloud TPU7x documentation's comparison table)",
        tile=256,
        interconnect_gpus=256,
        bf16=918,
        fp8=918,
        int8=1836,
    ),
    _preset(
        "tpu7x",
        "TPU7x (Ironwood)",
        7370,
        192 * 2**30 / GB,
        "Cloud TPU7x documentation: BF16 2307, FP8 4614 TFLOPS per chip, HBM 192 GiB; 7.37 TB/s HBM3E "
        "(Google, Ironwood announcement, 2025)",
        tile=256,
        interconnect_gpus=9216,
        bf16=2307,
        fp8=4614,
    ),
    _preset(
        "gaudi3",
        "Gaudi 3",
        3670,
        128,
        "Intel Gaudi 3 AI accelerator (Hot Chips 2024, Intel): BF16 matrix 1835, FP8 matrix 1835 TFLOPS; "
        "HBM2e 128 GB, 3.67 TB/s",
        bf16=1835,
        fp8=1835,
    ),
)

#: The presets fitted to measured kernel timings (:mod:`rooflax.calibration.presets`), and their
#: folders of NVIDIA aiconfigurator tables.
FITTED = {"a100-80gb-sxm": "a100_sxm", "h100-sxm": "h100_sxm", "l40s": "l40s", "b200": "b200_sxm"}
#: Preset → (the fitted preset of its architecture whose terms it takes, whether its GPU-to-GPU
#: link is of the same kind, so that the collectives' terms carry over too).  The MI300X's family (MI325X, MI355X),
#: the TPUs and Gaudi 3 have no measurements: they keep the default terms, and their source says so.
ARCHITECTURE = {
    "a40": ("a100-80gb-sxm", False),
    "a6000": ("a100-80gb-sxm", False),
    "a100-40gb-pcie": ("a100-80gb-sxm", False),
    "a100-40gb-sxm": ("a100-80gb-sxm", True),
    "a100-80gb-pcie": ("a100-80gb-sxm", False),
    "h100-pcie": ("h100-sxm", False),
    "h200": ("h100-sxm", True),
    "l4": ("l40s", True),
    "rtx4090": ("l40s", True),
    "b300": ("b200", True),
    "gb200": ("b200", True),
    "h20": ("h100-sxm", True),
    "h800": ("h100-sxm", True),
}
_DATASHEET = {hw.name: hw for hw in _PRESETS}


def uncalibrated_preset(name: str) -> Hardware:
    """A preset with its datasheet figures and the default achieved terms (what a fit starts from)."""
    if name not in _DATASHEET:
        raise unknown_name("hardware", name, _DATASHEET)
    return _DATASHEET[name]


def _calibrated(hw: Hardware, fits: dict) -> Hardware:
    """``hw`` with the fitted terms of itself or its architecture (``calibrated.toml``), its source saying so."""
    fitted, same_link = (hw.name, True) if hw.name in FITTED else ARCHITECTURE.get(hw.name, (None, False))
    if fitted is None or fitted not in fits:
        return replace(hw, source=f"{hw.source}; achieved terms: defaults (no measurements of this architecture)")
    fit = fits[fitted]
    groups = tuple((g, tuple(t.items())) for g, t in fit.get("group_terms", {}).items() if same_link or g != "comm")
    data = f"aiconfigurator's {FITTED[fitted]} kernel timings (NVIDIA, Apache-2.0, snapshot 2026-08-21)"
    how = f"fitted to {data}" if fitted == hw.name else f"those of {fitted} (same architecture), fitted to {data}"
    return replace(
        hw,
        group_terms=groups,
        phase_terms=fit.get("phase_terms", {}),
        interconnect_latency_s=fit["interconnect_latency_s"] if same_link else hw.interconnect_latency_s,
        l2_resident_bytes=fit.get("l2_resident_bytes", 0.0) if fitted == hw.name else 0.0,
        source=f"{hw.source}; achieved terms {how}; elementwise terms: defaults",
    )


#: Presets by name (calibrated: :mod:`rooflax.calibration.presets`), read-only: an accelerator
#: of your own is a TOML file (:func:`load_hardware`) or a :class:`Hardware`, given where a
#: preset name is.
HARDWARE: Mapping[str, Hardware] = MappingProxyType(
    {
        hw.name: _calibrated(hw, _FITS)
        for hw in _PRESETS
        for _FITS in (tomllib.loads((Path(__file__).parent / "calibrated.toml").read_text()),)
    }
)

#: Device names as the CUDA/ROCm drivers give them (JAX's ``device_kind``, torch's
#: ``get_device_name``, aiconfigurator's ``device``) and JAX's TPU ``device_kind`` (the names
#: ``jax/_src/tpu_info.py`` reads) -> preset, most specific pattern first.
_DEVICE_KINDS = (
    (r"H200", "h200"),
    (r"H100.*PCIe", "h100-pcie"),
    (r"H100", "h100-sxm"),
    (r"A100.*80GB.*PCIe|A100-PCIE-80GB", "a100-80gb-pcie"),
    (r"A100.*PCIe|A100-PCIE", "a100-40gb-pcie"),
    (r"A100.*80GB", "a100-80gb-sxm"),
    (r"A100", "a100-40gb-sxm"),
    (r"GB200", "gb200"),
    (r"B200", "b200"),
    (r"B300", "b300"),
    (r"H800", "h800"),
    (r"\bH20\b", "h20"),
    (r"L40S", "l40s"),
    (r"\bA40\b", "a40"),
    (r"RTX A6000", "a6000"),
    (r"RTX 4090", "rtx4090"),
    (r"\bL4\b", "l4"),
    (r"MI300X", "mi300x"),
    (r"MI325X", "mi325x"),
    (r"MI355X", "mi355x"),
    (r"^TPU v5( lite|e)$", "tpu-v5e"),
    (r"^TPU v5p?$", "tpu-v5p"),
    (r"^TPU v6( lite|e)$", "tpu-v6e"),
    (r"^TPU7x$", "tpu7x"),
)


def preset_for_kind(kind: str) -> Hardware | None:
    """The hardware preset a device name (as the driver gives it) names, or None.

    >>> preset_for_kind("NVIDIA H100 80GB HBM3").name
    'h100-sxm'
    >>> preset_for_kind("NVIDIA A100-SXM4-80GB").name
    'a100-80gb-sxm'
    >>> preset_for_kind("cpu") is None
    True
    """
    for pattern, name in _DEVICE_KINDS:
        if re.search(pattern, kind, flags=re.IGNORECASE):
            return HARDWARE[name]
    return None


_FILE_KEYS_REQUIRED = ("name", "peak_flops", "bandwidth_bytes_per_s", "memory_bytes")
_FILE_KEYS_OPTIONAL = (
    "label",
    "source",
    "group_terms",
    "phase_terms",
    "l2_resident_bytes",
    *DEFAULT_ACHIEVED,
    "interconnect_bytes_per_s",
    "interconnect_latency_s",
    "board_power_w",
    "interconnect_gpus",
)


def load_hardware(path: str | Path) -> Hardware:
    """Read one accelerator from a TOML file (layout in the module docstring).

    ``source`` defaults to the file's path, so errors and metadata can name where it came from.

    Args:
        path: the hardware TOML file.
    """
    where = f"hardware file {str(path)!r}"
    text = read_text(path, "hardware file", "a hardware TOML file")
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{where}: not valid TOML ({exc})") from None
    check_keys(where, table, _FILE_KEYS_REQUIRED, _FILE_KEYS_OPTIONAL)
    if not isinstance(table["peak_flops"], dict):
        raise SpecError(f"{where}: peak_flops must be a table of dtype = FLOP/s")
    table.setdefault("source", str(path))
    try:
        return Hardware(**table)
    except SpecError as exc:
        raise SpecError(f"{where}: {exc}") from None


def get_hardware(name: str | Hardware, *, base: Path | None = None) -> Hardware:
    """A preset by name, or a TOML file when ``name`` ends in ``.toml``.

    Args:
        name: preset name, path to a hardware TOML file, or a Hardware (returned as is).
        base: directory that relative paths are read from (a spec file's folder).
    """
    if isinstance(name, Hardware):
        return name
    if not isinstance(name, str):
        raise SpecError(f"hardware: expected a preset name or a .toml path, got {name!r}")
    if name.endswith(".toml"):
        path = Path(name)
        return load_hardware(path if path.is_absolute() or base is None else base / path)
    if name not in HARDWARE:
        raise unknown_name("hardware", name, HARDWARE)
    return HARDWARE[name]


def hardware_to_toml(hw: Hardware) -> str:
    """The TOML text that :func:`load_hardware` reads back into ``hw``."""

    def quoted(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = [
        f"name = {quoted(hw.name)}",
        f"label = {quoted(hw.label)}",
        f"bandwidth_bytes_per_s = {hw.bandwidth_bytes_per_s!r}",
        f"memory_bytes = {hw.memory_bytes!r}",
        *(f"{key} = {getattr(hw, key)!r}" for key in DEFAULT_ACHIEVED),
        f"interconnect_bytes_per_s = {hw.interconnect_bytes_per_s!r}",
        f"interconnect_latency_s = {hw.interconnect_latency_s!r}",
        *([f"board_power_w = {hw.board_power_w!r}"] if hw.board_power_w is not None else []),
        *([f"l2_resident_bytes = {hw.l2_resident_bytes!r}"] if hw.l2_resident_bytes else []),
        *([f"interconnect_gpus = {hw.interconnect_gpus!r}"] if hw.interconnect_gpus is not None else []),
        f"source = {quoted(hw.source)}",
        "",
        "[peak_flops]",
        *(f"{dtype} = {value!r}" for dtype, value in hw.peak_flops),
    ]
    for group, terms in hw.group_terms:
        lines += ["", f"[group_terms.{quoted(group)}]", *(f"{key} = {value!r}" for key, value in terms)]
    for phase, groups in hw.phase_terms:
        for group, terms in groups:
            lines += ["", f"[phase_terms.{phase}.{quoted(group)}]", *(f"{key} = {value!r}" for key, value in terms)]
    return "\n".join(lines) + "\n"
