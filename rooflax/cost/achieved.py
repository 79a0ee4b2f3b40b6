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
``corner`` (a fitted group term, 0 unless fitted)
    How much of the lesser of compute and memory time fails to overlap the greater. The
    roofline's ``max`` assumes perfect overlap; a real kernel loads a tile before it computes
    on it, so near the ridge, where the two times are equal, it runs slower than either
    (measured: fused attention's prefill kernels, fitted corner near 1, their loads barely
    hidden; matrix products 0.1-0.3). ``max + β·min`` is the linear blend between the two
    limits (``β = 0``: overlap, Williams et al., *Roofline*, CACM 52(4), 2009; ``β = 1``:
    no overlap, the sum form of the "exposed" memory time), fitted per family by the same
    relative least squares as the other terms; one number, no per-point tuning.

Each term is the op's group's (:attr:`rooflax.cost.ops.OpDef.terms_group`): the chart groups, and
``moe`` for the routed experts' ops, which run as one fused MoE kernel with terms of its own
(fitted to NVIDIA's aiconfigurator ``moe_perf`` tables; a profile without them prices the
experts with ``up/gate/down``'s).

Per op, with ``E_c`` and ``E_b`` the efficiencies::

    compute = max(flops, waves · sm_count · tile_flops) / (peak · E_c)    (products)
    compute = flops / (peak · E_c)                                        (other ops)
    memory  = bytes / (bandwidth · E_b)
    achieved_time = kernel_overhead_s + max(compute, memory) + corner · min(compute, memory)

Every term is at least its ideal counterpart, so ``achieved_time ≥ time`` on every row;
as the operation grows the overhead and both quantizations vanish and the ratio tends
to ``1 / E`` of whichever resource binds (to 1 with efficiencies of 1). A worked
example, decode ``qkv_proj`` of Llama-13B at batch 1 on the A40 preset (``M = 1``,
``N = 15360``, ``K = 5120``, tiles 128×128×32, 84 SMs): 120 tiles make 2 waves of 84, so
``compute = 2 · 84 · 2·128·128·5120 / (149.7e12 · E_c)``, while ``memory = 157,327,360 B
/ (696e9 · E_b)``.

Source of the quantization model: NVIDIA, *Matrix Multiplication Background User's Guide*
(DU-09799-001, 2023), §3.1 "Tile Quantization" and §3.2 "Wave Quantization".

All functions are plain arithmetic on Python numbers or jnp arrays, so they run under
``jax.vmap`` unchanged; one numeric-backend argument, ``xp``, names the array namespace whose
``minimum``, ``maximum`` and ``where`` they use: :data:`pymath` (the default: builtins on
Python numbers, exact on integers), ``numpy`` or ``jax.numpy``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

__all__ = ["MIN_TILE_M", "Gemm", "achieved_time", "ceil_div", "floor_div", "pymath", "quantized_flops", "spent_flops"]

Num = Any


class _PyMath:
    """The numeric backend of Python numbers: the array-namespace names the cost layer uses, as builtins."""

    __slots__ = ()
    minimum = staticmethod(min)
    maximum = staticmethod(max)

    @staticmethod
    def where(condition: Num, x: Num, y: Num) -> Num:
        """``x`` where ``condition`` holds, else ``y`` (``jnp.where`` on one Python value)."""
        return x if condition else y


#: The ``xp`` of Python numbers (what :func:`rooflax.evaluate` computes with); ``numpy`` and
#: ``jax.numpy`` are the backends of arrays.
pymath = _PyMath()


class Gemm(NamedTuple):
    """``count`` independent products ``[m, k] × [k, n]`` (a batched matrix product)."""

    count: Num
    m: Num
    n: Num
    k: Num


def _jax(x: Num, y: Num) -> bool:
    return isinstance(x, jax.Array) or isinstance(y, jax.Array)


def ceil_div(x: Num, y: Num) -> Num:
    """``⌈x / y⌉`` for positive whole numbers: Python numbers, numpy or JAX arrays.

    JAX arrays (the engine's traced values) take ``ceil(x / y)``: exact for whole
    ``x < 2**53`` (the quotient's rounding error, below ``x·2**-53 / y``, is less than its
    distance ``≥ 1/y`` to the next whole number), and several times faster than float
    floor division, which XLA computes through ``fmod``.

    >>> ceil_div(257, 128), ceil_div(256.0, 128)
    (3, 2.0)
    """
    return jnp.ceil(x / y) if _jax(x, y) else -(-x // y)


def floor_div(x: Num, y: Num) -> Num:
    """``⌊x / y⌋`` for positive whole numbers (arrays: ``floor(x / y)``, exact as in :func:`ceil_div`).

    >>> floor_div(257, 128), floor_div(255.0, 128)
    (2, 1.0)
    """
    return jnp.floor(x / y) if _jax(x, y) else x // y


#: Narrowest M tile: the 16 rows of one tensor-core MMA step (NVIDIA's guide above, §2.2).
MIN_TILE_M = 16


def quantized_flops(g: Gemm, *, sm_count: Num, tile_m: Num, tile_n: Num, tile_k: Num, xp: Any = pymath) -> Num:
    """FLOPs the device spends on ``g``: whole waves of whole tiles (tile and wave quantization).

    Output tiles of ``tm × tile_n`` step through K by ``tile_k``; ``tm`` is ``tile_m``, or for a
    skinny product (``M < tile_m``, as in decode) M rounded up to :data:`MIN_TILE_M`, the way
    GEMM libraries pick narrow tiles for few rows. When the tiles cannot fill the
    multiprocessors, K is split among them (split-K): ``splits = ⌊sm_count / tiles⌋``, at most
    one K step each. Each multiprocessor runs one work unit (a tile and a K split) at a time,
    and the last, partial wave costs a whole one::

        units = tiles · splits;  spent = ⌈units / sm_count⌉ · sm_count · 2·tm·tile_n·⌈⌈K/tile_k⌉ / splits⌉·tile_k

    >>> # M 1 -> one 16-row tile; N 200 -> 2 tiles; one SM: 2 units of 16×128×128
    >>> quantized_flops(Gemm(1, 1, 200, 100), sm_count=1, tile_m=128, tile_n=128, tile_k=32)
    1048576
    >>> # 85 tiles on 84 SMs: 2 waves
    >>> quantized_flops(Gemm(1, 128, 128 * 85, 32), sm_count=84, tile_m=128, tile_n=128, tile_k=32)
    176160768
    """
    tm = xp.minimum(tile_m, ceil_div(g.m, MIN_TILE_M) * MIN_TILE_M)
    tiles = g.count * ceil_div(g.m, tm) * ceil_div(g.n, tile_n)
    steps = ceil_div(g.k, tile_k)
    splits = xp.minimum(xp.maximum(floor_div(sm_count, tiles), 1), steps)
    units = tiles * splits
    return ceil_div(units, sm_count) * sm_count * 2 * tm * tile_n * ceil_div(steps, splits) * tile_k


def achieved_time(
    flops: Num,
    bytes_: Num,
    gemms: Sequence[Gemm],
    *,
    seconds_per_flop: Num,
    seconds_per_byte: Num,
    kernel_overhead_s: Num,
    sm_count: Num,
    tile_m: Num,
    tile_n: Num,
    tile_k: Num,
    corner: Num = 0.0,
    xp: Any = pymath,
) -> Num:
    """Predicted seconds of one op (module docstring): overhead plus the slower of compute and memory,
    plus ``corner`` times the faster.

    Args:
        flops, bytes_: the op's counts (the counting contract).
        gemms: the matrix products the op runs (empty for elementwise ops); the FLOPs
            they spend (:func:`quantized_flops`) add up, and count when above ``flops``.
        seconds_per_flop: ``1 / (peak · compute_efficiency)``.
        seconds_per_byte: ``1 / (bandwidth · bandwidth_efficiency)``.
        kernel_overhead_s, sm_count, tile_m, tile_n, tile_k: the hardware's fields.
        corner: the share of the lesser of compute and memory time that adds to the greater
            (0: they overlap perfectly, the roofline's ``max``; 1: they add up).
        xp: the numeric backend (:data:`pymath` for Python numbers, ``numpy`` or
            ``jax.numpy`` for arrays).

    Reciprocals are taken once on the host and multiplied here: the engine's results must
    not depend on how XLA compiles a division for one device or several.

    >>> achieved_time(100.0, 10.0, (), seconds_per_flop=0.2, seconds_per_byte=1.0, kernel_overhead_s=1.0,
    ...               sm_count=1, tile_m=1, tile_n=1, tile_k=1)
    21.0
    >>> # corner 0.5: half of the faster (memory, 10 s) adds to the slower (compute, 20 s)
    >>> achieved_time(100.0, 10.0, (), seconds_per_flop=0.2, seconds_per_byte=1.0, kernel_overhead_s=1.0,
    ...               sm_count=1, tile_m=1, tile_n=1, tile_k=1, corner=0.5)
    26.0
    """
    compute = spent_flops(flops, gemms, sm_count=sm_count, tile_m=tile_m, tile_n=tile_n, tile_k=tile_k, xp=xp)
    c, m = compute * seconds_per_flop, bytes_ * seconds_per_byte
    if isinstance(corner, int | float) and corner == 0:  # the roofline's corner: no term to add
        return kernel_overhead_s + xp.maximum(c, m)
    # the max between the product and the sum keeps XLA from fusing them into one multiply-add, whose
    # single rounding would give the engine other bits than Python numbers (corner·min is never negative)
    return kernel_overhead_s + xp.maximum(c, m) + xp.maximum(corner * xp.minimum(c, m), 0.0)


def spent_flops(
    flops: Num, gemms: Sequence[Gemm], *, sm_count: Num, tile_m: Num, tile_n: Num, tile_k: Num, xp: Any = pymath
) -> Num:
    """FLOPs an op costs the device: its products' :func:`quantized_flops` summed, never fewer than ``flops``
    (``flops`` itself for an op with no products).

    >>> spent_flops(10, (Gemm(1, 1, 200, 100), Gemm(1, 1, 200, 100)), sm_count=1, tile_m=128, tile_n=128, tile_k=32)
    2097152
    """
    if not gemms:
        return flops
    spent = sum(
        quantized_flops(g, sm_count=sm_count, tile_m=tile_m, tile_n=tile_n, tile_k=tile_k, xp=xp) for g in gemms
    )
    return xp.maximum(flops, spent)
