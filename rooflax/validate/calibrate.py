"""Calibration: fit the achieved-performance terms of a hardware profile to measured times.

Each measured op ``i`` has a time ``t_i``, its FLOPs as the device spends them
(:func:`rooflax.cost.achieved.quantized_flops`, never fewer than the op's own) and its bytes.
At the profile's ceilings these are ``c_i = spent_i / peak`` and ``m_i = bytes_i /
bandwidth`` seconds, and the model of :mod:`rooflax.achieved` reads

    t_i = overhead + max(c_i / compute_efficiency, m_i / bandwidth_efficiency)

Given which resource binds each op, that is linear in ``(overhead, 1/compute_efficiency,
1/bandwidth_efficiency)``, solved by plain least squares on relative residuals (every point
weighs the same whatever its duration). :func:`fit_terms` finds which resource binds by a
search over the ratio of the two slopes (for each ratio the model is a line through
``max(c_i, ratio · m_i)``, fitted by least squares), then refines that assignment with the
three-term solve until it stops changing; the overhead is kept positive. A slope the points
cannot determine (no op of the set bound by that resource) is taken from the fit over all
points, or from the profile's own efficiency, lowered if needed so that it binds none of
the set's ops. Terms are fitted per op group where the group has enough points, else over
all points. An efficiency above 1 means the device beat the measured ceiling for that kind
of op (a copy kernel is not always the fastest reader): the ceiling is then raised to the
fastest rate seen and the efficiencies rescaled, so every efficiency stays in (0, 1] and
the predictions are unchanged.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import polars as pl

from rooflax.config.hardware import GROUP_TERMS, Hardware
from rooflax.cost.achieved import achieved_time
from rooflax.errors import SpecError

__all__ = ["MIN_POINTS", "fit_terms", "holdout_errors", "predict_times"]

#: Fewest points for a group of its own terms (three unknowns, plus one to spare).
MIN_POINTS = 4
#: Smallest overhead a fit may give (an overhead must be positive).
MIN_OVERHEAD_S = 1e-9


Fit = tuple[float, float | None, float | None]  # overhead, 1/compute_efficiency, 1/bandwidth_efficiency


def _residual(fit: Fit, c: np.ndarray, m: np.ndarray, t: np.ndarray) -> float:
    overhead, u, v = fit
    return float(np.sum(((overhead + np.maximum(c * (u or 0.0), m * (v or 0.0))) / t - 1) ** 2))


def _least_squares(columns: list[np.ndarray], t: np.ndarray) -> list[float]:
    """``[overhead, slopes...]`` minimizing ``Σ((overhead + Σ slope·column) / t − 1)²``, overhead ≥ the minimum."""
    design = np.stack([np.ones_like(t), *columns], axis=1) / t[:, None]
    solution = np.linalg.lstsq(design, np.ones_like(t), rcond=None)[0]
    if solution[0] < MIN_OVERHEAD_S:  # refit the slopes through the smallest allowed overhead
        target = 1 - MIN_OVERHEAD_S / t
        slopes = np.linalg.lstsq(design[:, 1:], target, rcond=None)[0] if columns else []
        solution = [MIN_OVERHEAD_S, *slopes]
    return [float(x) for x in solution]


def _assigned(c: np.ndarray, m: np.ndarray, t: np.ndarray, compute: np.ndarray) -> Fit | None:
    """The three-term solve with ``compute`` marking the compute-bound ops; None when a slope is not positive."""
    columns = {1: np.where(compute, c, 0.0), 2: np.where(compute, 0.0, m)}
    used = [k for k, col in columns.items() if col.any()]
    solution = dict(zip([0, *used], _least_squares([columns[k] for k in used], t), strict=True))
    if any(solution[k] <= 0 for k in used):
        return None
    return solution[0], solution.get(1), solution.get(2)


def _solve(c: np.ndarray, m: np.ndarray, t: np.ndarray) -> Fit:
    """``(overhead, 1/compute_efficiency, 1/bandwidth_efficiency)`` of one set of points (None: undetermined)."""
    ridges = c / m  # an op turns memory-bound where the slope ratio v/u exceeds its c/m
    line: tuple[float, float, float] | None = None  # the best line with a positive slope
    best_error = np.inf
    for ratios in (np.geomspace(ridges.min() / 2, ridges.max() * 2, 241), None):
        if ratios is None:  # a finer pass around the best ratio
            if line is None:  # no line with a positive slope: times do not grow with the work
                return max(MIN_OVERHEAD_S, float(np.sum(1 / t) / np.sum(t**-2.0))), None, None
            ratios = np.geomspace(line[2] / line[1] / 1.1, line[2] / line[1] * 1.1, 41)
        for ratio in ratios:
            x = np.maximum(c, ratio * m)
            intercept, slope = _least_squares([x], t)
            if slope > 0 and (error := _residual((intercept, slope, ratio * slope), c, m, t)) < best_error:
                line, best_error = (intercept, slope, ratio * slope), error
    assert line is not None  # the finer pass returns without one
    best: Fit = line
    compute = c * line[1] >= m * line[2]
    for _ in range(20):  # refine the assignment by the exact three-term solve
        refined = _assigned(c, m, t, compute)
        if refined is None or (error := _residual(refined, c, m, t)) > best_error:
            break
        best, best_error = refined, error
        if None in refined:
            break
        binding = c * refined[1] >= m * refined[2]
        if np.array_equal(binding, compute):
            break
        compute = binding
    overhead, u, v = best
    if u is not None and v is not None:
        compute = c * u >= m * v
        u, v = (u if compute.any() else None), (v if not compute.all() else None)
    return overhead, u, v


def _completed(fit: Fit, fallback: tuple[float, float], c: np.ndarray, m: np.ndarray) -> tuple[float, float, float]:
    """``fit`` with an undetermined slope taken from ``fallback``, changed only as far as it must to bind no op."""
    overhead, u, v = fit
    if v is None:
        if u is None:
            return overhead, *fallback
        return overhead, u, min(fallback[1], float(np.min(c / m)) * u)  # no op memory-bound: m·v ≤ c·u for all
    if u is None:  # no op compute-bound: c·u ≤ m·v for all
        return overhead, min(fallback[0], float(np.min(m / c)) * v), v
    return overhead, u, v


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
    default = (1 / hardware.compute_efficiency, 1 / hardware.bandwidth_efficiency)
    overall = _completed(_solve(c, m, t), default, c, m)
    fits: dict[str | None, tuple[float, float, float]] = {None: overall}  # None: over all points
    for group in dict.fromkeys(groups):
        mask = groups == group
        if mask.sum() >= MIN_POINTS:
            fits[group] = _completed(_solve(c[mask], m[mask], t[mask]), overall[1:], c[mask], m[mask])
    compute_scale = min(1.0, *(u for _, u, _ in fits.values()))
    memory_scale = min(1.0, *(v for _, _, v in fits.values()))

    def terms(fit: tuple[float, float, float]) -> dict[str, Any]:
        overhead, u, v = fit
        return dict(zip(GROUP_TERMS, (overhead, compute_scale / u, memory_scale / v), strict=True))

    return replace(
        hardware,
        peak_flops=tuple((d, p / compute_scale) for d, p in hardware.peak_flops),
        bandwidth_bytes_per_s=hardware.bandwidth_bytes_per_s / memory_scale,
        **terms(fits.pop(None)),
        group_terms=tuple((group, tuple(terms(fit).items())) for group, fit in fits.items() if group is not None),
    )


def predict_times(frame: pl.DataFrame, hardware: Hardware, dtype: str) -> np.ndarray:
    """Achieved seconds of every row of ``frame`` (same columns as :func:`fit_terms`) on ``hardware``."""
    c, m = _spent_seconds(frame, hardware, dtype)
    out = np.empty(len(frame))
    for i, group in enumerate(frame["group"].to_list()):
        terms = hardware.terms(group)
        out[i] = achieved_time(
            c[i],
            m[i],
            (),
            seconds_per_flop=1 / terms["compute_efficiency"],
            seconds_per_byte=1 / terms["bandwidth_efficiency"],
            kernel_overhead_s=terms["kernel_overhead_s"],
            sm_count=hardware.sm_count,
            tile_m=hardware.tile_m,
            tile_n=hardware.tile_n,
            tile_k=hardware.tile_k,
        )
    return out


def holdout_errors(frame: pl.DataFrame, profile: Hardware, dtype: str) -> dict[str, np.ndarray]:
    """Fit on alternate grid points of a validation frame and measure the error on the others.

    Points are the frame's ``(phase, batch, seq_len, spec_k)`` in order of appearance; the
    even ones (first, third, ...) train :func:`fit_terms`, the odd ones are predicted.

    Args:
        frame: a validation frame (:func:`rooflax.validate.validate`), with ``predicted_time_s``.
        profile: the measured profile the frame was taken with (default achieved terms).
        dtype: the dtype the products ran in.

    Returns:
        Relative errors ``|predicted / measured − 1|`` on the held-out ops, for ``"ideal"``
        (the roof at the measured ceilings), ``"default"`` (the achieved model with the
        profile's default terms) and ``"calibrated"`` (with the terms fitted on the rest).
    """
    names = (
        frame.select(
            pl.concat_str(
                pl.col("phase", "batch", "seq_len", "spec_k").cast(pl.String), ignore_nulls=True, separator="/"
            )
        )
        .to_series()
        .to_list()
    )
    order = {name: i for i, name in enumerate(dict.fromkeys(names))}
    train = np.array([order[name] % 2 == 0 for name in names])
    if train.all() or not train.any():
        raise SpecError(f"holdout: needs at least two grid points, got {len(order)}")
    fitted = fit_terms(frame.filter(pl.Series(train)), profile, dtype)
    test = frame.filter(pl.Series(~train))
    measured = test["measured_time_s"].to_numpy()
    predictions = {
        "ideal": test["predicted_time_s"].to_numpy(),
        "default": predict_times(test, profile, dtype),
        "calibrated": predict_times(test, fitted, dtype),
    }
    return {name: np.abs(times / measured - 1) for name, times in predictions.items()}
