"""Below the roof: the time an operation is predicted to take on a real device.

The ideal roof (:mod:`rooflax.roofline`) is an upper bound: ``time = max(flops / peak,
bytes / bandwidth)``. Real kernels lose to four effects, each a documented field of
:class:`rooflax.Hardware` with cited preset values, and each replaced by a fitted value
when ``rooflax validate --profile`` writes a calibrated profile:

``kernel_overhead_s``
    A fixed time per kernel: launch, prologue and tail. It dominates small decode ops.
``tile_m``, ``tile_n``, ``tile_k``
    Tile quantization. A matrix product ``[M, K] × [K, N]`` runs as output tiles of
    ``tile_m × tile_n``, each stepping through ``K`` by ``tile_k``; a partial tile costs
    a whole one, so the product does ``2 · ⌈M/tm⌉tm · ⌈N/tn⌉tn · ⌈K/tk⌉tk`` FLOPs.
``sm_count``
    Wave quantization. The tiles run in waves of one tile per multiprocessor; the last,
    partial wave costs a whole one, so the compute time is
    ``⌈tiles / sm_count⌉ · sm_count · tile_flops / peak``.
``compute_efficiency``, ``bandwidth_efficiency``
    The fraction of the datasheet peak and bandwidth a well-tuned kernel sustains.

Per op, with ``E_c`` and ``E_b`` the efficiencies::

    compute = max(flops, waves · sm_count · tile_flops) / (peak · E_c)    (products)
    compute = flops / (peak · E_c)                                        (other ops)
    memory  = bytes / (bandwidth · E_b)
    achieved_time = kernel_overhead_s + max(compute, memory)

Every term is at least its ideal counterpart, so ``achieved_time ≥ time`` on every row;
as the operation grows the overhead and both quantizations vanish and the ratio tends
to ``1 / E`` of whichever resource binds (to 1 with efficiencies of 1). A worked
example, decode ``qkv_proj`` of Llama-13B at batch 1 on the A40 preset (``M = 1``,
``N = 15360``, ``K = 5120``, tiles 128×128×32, 84 SMs): 120 tiles make 2 waves of 84, so
``compute = 2 · 84 · 2·128·128·5120 / (149.7e12 · E_c)``, while ``memory = 157,327,360 B
/ (696e9 · E_b)``.

Source of the quantization model: NVIDIA, *Matrix Multiplication Background User's Guide*
(DU-09799-001, 2023), §3.1 "Tile Quantization" and §3.2 "Wave Quantization".

All functions are plain arithmetic on Python numbers or jnp arrays (``maximum`` picks
``max`` or ``jnp.maximum``), so they run under ``jax.vmap`` unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

__all__ = ["Gemm", "achieved_time", "ceil_div", "quantized_flops"]

Num = Any


class Gemm(NamedTuple):
    """``count`` independent products ``[m, k] × [k, n]`` (a batched matrix product)."""

    count: Num
    m: Num
    n: Num
    k: Num


def ceil_div(x: Num, y: Num) -> Num:
    """``⌈x / y⌉`` for positive whole numbers, as Python ints or float arrays.

    >>> ceil_div(257, 128), ceil_div(256.0, 128)
    (3, 2.0)
    """
    return -(-x // y)


def quantized_flops(g: Gemm, *, sm_count: Num, tile_m: Num, tile_n: Num, tile_k: Num) -> Num:
    """FLOPs the device spends on ``g``: whole waves of whole tiles (tile and wave quantization).

    Output tiles of ``tile_m × tile_n`` step through K by ``tile_k``; one tile runs on each
    of ``sm_count`` multiprocessors at a time, and the last, partial wave costs a whole one:
    ``⌈tiles / sm_count⌉ · sm_count · 2·tile_m·tile_n·⌈K/tile_k⌉tile_k``.

    >>> quantized_flops(Gemm(1, 1, 200, 100), sm_count=1, tile_m=128, tile_n=128, tile_k=32)  # 2 tiles of 128×128×128
    8388608
    >>> quantized_flops(Gemm(1, 128, 128 * 85, 32), sm_count=84, tile_m=128, tile_n=128, tile_k=32)  # 2 waves of 84
    176160768
    """
    tiles = g.count * ceil_div(g.m, tile_m) * ceil_div(g.n, tile_n)
    return ceil_div(tiles, sm_count) * sm_count * 2 * tile_m * tile_n * ceil_div(g.k, tile_k) * tile_k


def achieved_time(flops: Num, bytes_: Num, gemms: Sequence[Gemm], *, peak: Num, bandwidth: Num,
                  kernel_overhead_s: Num, sm_count: Num, tile_m: Num, tile_n: Num, tile_k: Num,
                  compute_efficiency: Num, bandwidth_efficiency: Num, maximum: Callable = max) -> Num:
    """Predicted seconds of one op (module docstring): overhead plus the slower of compute and memory.

    Args:
        flops, bytes_: the op's counts (the counting contract).
        gemms: the matrix products the op runs (empty for elementwise ops); their
            quantized times add up.
        peak, bandwidth: the datasheet roof, FLOP/s and bytes/s.
        kernel_overhead_s, sm_count, tile_m, tile_n, tile_k, compute_efficiency,
            bandwidth_efficiency: the hardware's achieved-performance fields.
        maximum: ``max`` for Python numbers, ``jnp.maximum`` for arrays.

    >>> achieved_time(100.0, 10.0, (), peak=10.0, bandwidth=1.0, kernel_overhead_s=1.0, sm_count=1,
    ...               tile_m=1, tile_n=1, tile_k=1, compute_efficiency=0.5, bandwidth_efficiency=1.0)
    21.0
    """
    compute = flops
    if gemms:
        spent = sum(quantized_flops(g, sm_count=sm_count, tile_m=tile_m, tile_n=tile_n, tile_k=tile_k)
                    for g in gemms)
        compute = maximum(compute, spent)
    compute_s = compute / (peak * compute_efficiency)
    memory_s = bytes_ / (bandwidth * bandwidth_efficiency)
    return kernel_overhead_s + maximum(compute_s, memory_s)
