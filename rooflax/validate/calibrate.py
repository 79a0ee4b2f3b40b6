"""Calibration: fit the achieved-performance terms of a hardware profile to measured times.

Each measured op ``i`` has a time ``t_i``, its FLOPs as the device spends them
(:func:`rooflax.achieved.quantized_flops`, never fewer than the op's own) and its bytes.
At the profile's ceilings these are ``c_i = spent_i / peak`` and ``m_i = bytes_i /
bandwidth`` seconds, and the model of :mod:`rooflax.achieved` reads

    t_i = overhead + max(c_i / compute_efficiency, m_i / bandwidth_efficiency)

Given which resource binds each op, that is linear in ``(overhead, 1/compute_efficiency,
1/bandwidth_efficiency)``; :func:`fit_terms` alternates between assigning each op to its
binding resource and solving that linear system by plain least squares on relative
residuals (every point weighs the same whatever its duration), until the assignment stops
changing. Terms are fitted per op group where the group has enough points, else over all
points. An efficiency above 1 means the device beat the measured ceiling for that kind of
op (a copy kernel is not always the fastest reader): the ceiling is then raised to the
fastest rate seen and the efficiencies rescaled, so every efficiency stays in (0, 1] and
the predictions are unchanged.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import polars as pl

from rooflax.achieved import achieved_time
from rooflax.hardware import GROUP_TERMS, Hardware

__all__ = ["MIN_POINTS", "fit_terms", "predict_times"]

#: Fewest points for a group of its own terms (three unknowns, plus one to spare).
MIN_POINTS = 4
#: Smallest overhead a fit may give (an overhead must be positive).
MIN_OVERHEAD_S = 1e-9


def _solve(c: np.ndarray, m: np.ndarray, t: np.ndarray) -> tuple[float, float, float]:
    """``(overhead, 1/compute_efficiency, 1/bandwidth_efficiency)`` for one set of points."""
    u = v = 1.0
    binding = None
    for _ in range(20):
        compute = c * u >= m * v
        if binding is not None and np.array_equal(compute, binding):
            break
        binding = compute
        columns = [np.ones_like(t), np.where(compute, c, 0.0), np.where(compute, 0.0, m)]
        used = [k for k, col in enumerate(columns) if k == 0 or col.any()]
        design = np.stack([columns[k] for k in used], axis=1) / t[:, None]
        solution = dict(zip(used, np.linalg.lstsq(design, np.ones_like(t), rcond=None)[0], strict=True))
        if solution[0] < MIN_OVERHEAD_S:  # refit the slopes through the smallest allowed overhead
            rest = [k for k in used if k]
            target = (t - MIN_OVERHEAD_S) / t
            slopes = np.linalg.lstsq(design[:, 1:], target, rcond=None)[0] if rest else []
            solution = {0: MIN_OVERHEAD_S, **dict(zip(rest, slopes, strict=True))}
        u = max(solution.get(1, u), 1e-6)
        v = max(solution.get(2, v), 1e-6)
        overhead = solution[0]
    return float(overhead), float(u), float(v)


def _spent_seconds(frame: pl.DataFrame, hardware: Hardware, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    spent = np.maximum(frame["flops"].to_numpy(), frame["spent_flops"].to_numpy())
    return spent / hardware.peak(dtype), frame["bytes"].to_numpy() / hardware.bandwidth_bytes_per_s


def fit_terms(frame: pl.DataFrame, hardware: Hardware, dtype: str) -> Hardware:
    """``hardware`` with overhead and efficiencies fitted to the measured times of ``frame``.

    Args:
        frame: one row per measured op: ``group``, ``flops``, ``bytes``, ``spent_flops``
            (FLOPs with tile and wave quantization at ``hardware``'s tile and SM count) and
            ``measured_time_s``.
        hardware: the profile whose ceilings the times are measured against.
        dtype: the peak the products ran at.

    Returns:
        The profile with fitted ``kernel_overhead_s``, ``compute_efficiency`` and
        ``bandwidth_efficiency`` over all points, ``group_terms`` for each group with at
        least :data:`MIN_POINTS` points, and ceilings raised where a fit found the device
        faster than them (module docstring).
    """
    c, m = _spent_seconds(frame, hardware, dtype)
    t = frame["measured_time_s"].to_numpy()
    groups = frame["group"].to_numpy()
    fits = {None: _solve(c, m, t)}
    for group in dict.fromkeys(groups):
        mask = groups == group
        if mask.sum() >= MIN_POINTS:
            fits[group] = _solve(c[mask], m[mask], t[mask])
    compute_scale = min(1.0, *(u for _, u, _ in fits.values()))
    memory_scale = min(1.0, *(v for _, _, v in fits.values()))

    def terms(fit: tuple[float, float, float]) -> dict[str, float]:
        overhead, u, v = fit
        return dict(zip(GROUP_TERMS, (overhead, compute_scale / u, memory_scale / v), strict=True))

    return replace(
        hardware,
        peak_flops={d: p / compute_scale for d, p in hardware.peak_flops},
        bandwidth_bytes_per_s=hardware.bandwidth_bytes_per_s / memory_scale,
        **terms(fits.pop(None)),
        group_terms={group: terms(fit) for group, fit in fits.items()},
    )


def predict_times(frame: pl.DataFrame, hardware: Hardware, dtype: str) -> np.ndarray:
    """Achieved seconds of every row of ``frame`` (same columns as :func:`fit_terms`) on ``hardware``."""
    c, m = _spent_seconds(frame, hardware, dtype)
    out = np.empty(len(frame))
    for i, group in enumerate(frame["group"].to_list()):
        terms = hardware.terms(group)
        out[i] = achieved_time(c[i], m[i], (), seconds_per_flop=1 / terms["compute_efficiency"],
                               seconds_per_byte=1 / terms["bandwidth_efficiency"],
                               kernel_overhead_s=terms["kernel_overhead_s"], sm_count=hardware.sm_count,
                               tile_m=hardware.tile_m, tile_n=hardware.tile_n, tile_k=hardware.tile_k)
    return out
