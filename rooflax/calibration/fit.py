"""Fit the achieved model's terms to measured kernel times, and score a profile on held-out shapes.

:func:`fit_hardware` gives a profile fitted to one GPU's measurements (the frame of
:func:`rooflax.read_measurements`), per family of ops that the measurements cover:

``gemm`` rows → the terms of the product groups (``qkv mlp``, ``up/gate/down``, ``lm_head``)
    ``t = overhead + max(c, m) + β·min(c, m)``, ``c = u · spent_flops / peak``,
    ``m = v · bytes / bandwidth`` (``β``: the group's ``corner``);
``attention_prefill`` rows → the ``qk/pv`` group (fused attention) in prefill and verify,
    ``attention_decode`` rows → the same in decode (``phase_terms``): the same form; prefill
    and decode run different kernels (FlashAttention's forward pass, split-KV decoding), so
    each has its own terms, and verify (many queries over a cache) runs the prefill kind;
collective rows (``all_reduce``, ``alltoall``, ``all_gather``, ``reduce_scatter``) → ``comm``
    ``t = overhead + v · (p/2)^γ · bytes / link + hops · latency`` over ``p`` devices, the fitted
    latency a hop becoming the profile's ``interconnect_latency_s`` (``γ``, ``link_scaling``: 0
    on NVLink, about 2 on the L40S's PCIe, where the GPUs share the host's links);
``moe`` rows (a fused MoE layer) → the ``moe`` terms, which price the routed experts' ops
    (``expert_gate``, ``expert_up``, ``expert_silu_mul``, ``expert_down``) and no other: the
    same form over those four ops. The fused kernel (vLLM's Triton ``fused_moe`` or FlashInfer's
    grouped GEMMs) is not cuBLAS: it pads each expert's tokens to its M block, sorts and
    gathers the tokens and reduces the top-k outputs, so the product terms priced it 17–34% off (held-out median);
``rooflax validate`` rows (its timed ops) → the family of their op and phase
    (:func:`~rooflax.calibration.predict.fitted_family`: the linear ops are ``gemm``, ``qk``
    and ``pv`` the attention family of their phase), so ``rooflax validate --profile`` is
    this same fit on the device's own timings. validate rotates its operands past the
    caches, so its rows take no L2 term (only replayed kernel tables do).

``compute_efficiency = 1/u``, ``bandwidth_efficiency = 1/v``. Each fit minimizes the
squared *relative* error (every shape weighs the same whatever its duration) by least
squares: for the max form, over a grid of the ratio ``v/u`` (for each ratio the model is a
line in ``(overhead, u)``); every efficiency is capped at 1 (a kernel may not beat the
datasheet ceiling; where it seems to, the slope is held at 1 and the rest refitted) and the
overhead kept positive. Only the fastest kernel per shape counts (what a serving engine
picks, :func:`~rooflax.calibration.measurements.fastest_kernels`), full attention
(``window = 0``) and the dtypes rooflax prices. Elementwise ops keep the profile's own terms.
Each family's terms also record what they were fitted on, the smallest and largest FLOPs and
bytes of one measured kernel (``fitted_flops_min`` ... ``fitted_bytes_max``), so that an op
swept far outside it is flagged (:mod:`rooflax.answers.extrapolation`).

:func:`accuracy` is the scorecard: per hardware and kind, how far the achieved model
(``predicted``) and the roof (``ideal``) are from the measured times. :func:`split_by_shape`
cuts a frame into training and held-out shapes, the same way on every machine.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping
from dataclasses import replace

import numpy as np
import polars as pl

from rooflax.calibration.measurements import fastest_kernels
from rooflax.calibration.predict import FAMILY_OF_KIND, fitted_family, predict_measurements, work
from rooflax.config.hardware import Hardware
from rooflax.errors import SpecError

__all__ = [
    "BAND",
    "FITTED_GROUPS",
    "MIN_FIT_ROWS",
    "accuracy",
    "calibrate",
    "fit_hardware",
    "scored_rows",
    "split_by_shape",
    "stable_share",
]

#: What each fitted family sets: the terms of these op groups, in these phases (None: every phase).
FITTED_GROUPS = {
    "gemm": (("qkv mlp", "up/gate/down", "lm_head"), None),
    "attention_prefill": (("qk/pv",), ("prefill", "verify")),
    "attention_decode": (("qk/pv",), ("decode",)),
    "comm": (("comm",), None),
    "moe": (("moe",), None),
}
#: Fewest measured shapes a family is fitted on (fewer leave the profile's terms as they are).
MIN_FIT_ROWS = 8
_MIN_OVERHEAD_S = 1e-9
_RATIOS = np.geomspace(1e-2, 1e2, 201)
_RATIOS_STEP = float(_RATIOS[1] / _RATIOS[0])
#: Candidate L2-resident operand sizes (bytes; 0: none) and L2 speedups a fit chooses from.
_RESIDENT = (0.0, *(2.0**e for e in range(20, 30)))
_SPEEDUPS = np.geomspace(1.0, 8.0, 64).tolist()
#: Candidate link scalings ``γ`` of the collectives (0: the ring's bandwidth whatever the device count).
_LINK_SCALINGS = np.round(np.arange(0.0, 3.0001, 0.05), 2).tolist()
#: The quantiles of measured / predicted that bound an error band: four in five measurements fall inside.
BAND = (0.1, 0.9)


def _weighted_lstsq(columns: list[np.ndarray], t: np.ndarray, rest: np.ndarray | None = None) -> np.ndarray:
    """Coefficients of ``Σ coefficient·column ≈ rest`` (default ``t``), each row's error relative to ``t``."""
    design = np.stack(columns, axis=1) / t[:, None]
    return np.linalg.lstsq(design, np.ones_like(t) if rest is None else rest / t, rcond=None)[0]


def _line(x: np.ndarray, kernels: np.ndarray, t: np.ndarray) -> tuple[float, float]:
    """``(overhead, slope)`` of ``t ≈ overhead·kernels + slope·x`` (relative least squares), slope ≥ 1, overhead > 0."""
    overhead, slope = _weighted_lstsq([kernels, x], t)
    if slope < 1:
        slope = 1.0
        overhead = float(_weighted_lstsq([kernels], t, t - x)[0])
    if overhead < _MIN_OVERHEAD_S:
        overhead = _MIN_OVERHEAD_S
        slope = max(1.0, float(_weighted_lstsq([x], t, t - overhead * kernels)[0]))
    return float(overhead), float(slope)


def _relative_sse(predicted: np.ndarray, t: np.ndarray) -> float:
    return float(np.sum((predicted / t - 1) ** 2))


def _corner(high: np.ndarray, low: np.ndarray, kernels: np.ndarray, t: np.ndarray) -> float:
    """The corner ``β`` of ``t ≈ overhead·kernels + u·(high + β·low)`` (relative least squares, linear in
    ``(overhead, u, u·β)``), clipped to [0, 1]."""
    _, u, u_beta = _weighted_lstsq([kernels, high, low], t)
    return float(np.clip(u_beta / u, 0.0, 1.0)) if u > 0 else 0.0


def _blend(compute: np.ndarray, memory: np.ndarray, corner: float) -> np.ndarray:
    """``Σ_ops max(compute, memory) + corner · min(compute, memory)`` per row."""
    return (np.maximum(compute, memory) + corner * np.minimum(compute, memory)).sum(axis=1)


def _fit_max(compute: np.ndarray, memory: np.ndarray, t: np.ndarray, default: tuple[float, float]) -> dict[str, float]:
    """Terms of ``t = Σ_ops overhead + max(u·compute, v·memory) + β·min(u·compute, v·memory)`` (rows × ops arrays).

    For each ratio ``v/u`` of the grid the corner ``β`` is the clipped least-squares one
    (:func:`_corner`) and the rest a line. A slope that binds no measured op is not
    measured: it is ``default``'s (``1/efficiency``), lowered if needed so that it still binds
    none (the predictions are the fit's).
    """
    kernels = np.full(len(t), float(compute.shape[1]))
    best: tuple[float, float, float, float] | None = None
    best_error, best_ratio = np.inf, 1.0
    for width in (None, _RATIOS_STEP, _RATIOS_STEP ** (1 / 20)):  # the grid, then two finer passes around its best
        ratios = _RATIOS if width is None else best_ratio * np.geomspace(1 / width, width, 41)
        for ratio in ratios:
            scaled = ratio * memory
            corner = _corner(
                np.maximum(compute, scaled).sum(axis=1), np.minimum(compute, scaled).sum(axis=1), kernels, t
            )
            overhead, u = _line(_blend(compute, scaled, corner), kernels, t)
            v = ratio * u
            if v < 1:  # the memory slope may not beat the bandwidth either: refit with v held at 1
                overhead, u = _line(_blend(compute, memory / u, corner), kernels, t)
                v = 1.0 if ratio * u < 1 else ratio * u
            error = _relative_sse(overhead * kernels + _blend(u * compute, v * memory, corner), t)
            if error < best_error:
                best, best_error, best_ratio = (overhead, u, v, corner), error, ratio
    assert best is not None, "no finite error on the grid: the measured times must be positive and finite"
    overhead, u, v, corner = best
    compute_bound = u * compute >= v * memory
    if not compute_bound.any():  # the compute slope is not seen: the default, raised only as far as binds none
        u = min(default[0], float(np.min(v * memory / np.maximum(compute, 1e-300))))
    elif compute_bound.all():
        v = min(default[1], float(np.min(u * compute / np.maximum(memory, 1e-300))))
    return {
        "kernel_overhead_s": float(overhead),
        "compute_efficiency": float(1 / max(u, 1.0)),
        "bandwidth_efficiency": float(1 / max(v, 1.0)),
        "corner": corner,
    }


def _fit_cached(
    w: dict[str, np.ndarray], default: tuple[float, float], resident: float
) -> tuple[dict[str, float], float]:
    """A family's terms, and their relative squared error, with operands of at most ``resident`` bytes in L2.

    Those rows' memory time is divided by ``l2_speedup``: the terms (:func:`_fit_max`, all
    rows together) and the speedup (a 1-D search, the terms held) are fitted in turn.
    """
    compute, memory, t = w["compute_s"], w["memory_s"], w["t"]
    cached = ((w["bytes"].sum(axis=1) <= resident) & w["replayed"])[:, None]

    def fitted(speedup: float) -> tuple[dict[str, float], float]:
        scaled = np.where(cached, memory / speedup, memory)
        terms = _fit_max(compute, scaled, t, default)
        return terms, _relative_sse(_max_form(terms, compute, scaled), t)

    def error(terms: dict[str, float], speedup: float) -> float:
        return _relative_sse(_max_form(terms, compute, np.where(cached, memory / speedup, memory)), t)

    speedup = 1.0
    terms, sse = fitted(speedup)
    if cached.any():
        for _ in range(2):
            speedup = float(min(_SPEEDUPS, key=functools.partial(error, terms)))
            terms, sse = fitted(speedup)
    ratio = t / _max_form(terms, compute, np.where(cached, memory / speedup, memory))
    return {**terms, "l2_speedup": speedup, **_band(ratio)}, sse


def _band(ratio: np.ndarray) -> dict[str, float]:
    """The error band of a fit: the p10 and p90 of measured / predicted over its rows."""
    return {"band_low": float(np.quantile(ratio, BAND[0])), "band_high": float(np.quantile(ratio, BAND[1]))}


def _max_form(terms: dict[str, float], compute: np.ndarray, memory: np.ndarray) -> np.ndarray:
    u, v = 1 / terms["compute_efficiency"], 1 / terms["bandwidth_efficiency"]
    return terms["kernel_overhead_s"] * compute.shape[1] + _blend(u * compute, v * memory, terms["corner"])


def _resident_bytes(w: dict[str, np.ndarray], default: tuple[float, float]) -> float:
    """The L2-resident operand size (of :data:`_RESIDENT`) under which the products fit best (0: no L2 term)."""
    return float(min(_RESIDENT, key=lambda resident: _fit_cached(w, default, resident)[1]))


def _fit_link(
    memory: np.ndarray, hops: np.ndarray, devices: np.ndarray, t: np.ndarray
) -> tuple[dict[str, float], float]:
    """Terms of ``t = overhead + v·memory·(p/2)^γ + latency·hops``, and the latency a hop (all ≥ their floors).

    ``γ`` (``link_scaling``) is the best of :data:`_LINK_SCALINGS`; for each the rest is linear.
    """
    best: tuple[float, dict[str, float], float] | None = None
    for scaling in _LINK_SCALINGS:
        terms, latency = _fit_link_at(memory * (np.maximum(devices, 1) / 2) ** scaling, hops, t)
        m, h = (memory * (np.maximum(devices, 1) / 2) ** scaling).sum(axis=1), hops.sum(axis=1)
        predicted = terms["kernel_overhead_s"] + m / terms["bandwidth_efficiency"] + latency * h
        error = _relative_sse(predicted, t)
        if best is None or error < best[0]:
            best = (error, {**terms, "link_scaling": float(scaling)}, latency)
    assert best is not None
    return best[1], best[2]


def _fit_link_at(memory: np.ndarray, hops: np.ndarray, t: np.ndarray) -> tuple[dict[str, float], float]:
    """Terms of ``t = overhead + v·memory + latency·hops``, and the latency a hop (all ≥ their floors)."""
    m, h = memory.sum(axis=1), hops.sum(axis=1)
    ones = np.ones_like(t)
    overhead, v, latency = _weighted_lstsq([ones, m, h], t)
    if latency < 0:
        latency = 0.0
        overhead, v = _weighted_lstsq([ones, m], t)
    if v < 1:
        v = 1.0
        overhead, latency = _weighted_lstsq([ones, h], t, t - m)
        latency = max(float(latency), 0.0)
    overhead = max(float(overhead), _MIN_OVERHEAD_S)
    latency = max(float(latency), 1e-10)
    band = _band(t / (overhead + float(v) * m + latency * h))
    return {"kernel_overhead_s": overhead, "bandwidth_efficiency": 1 / float(v), **band}, latency


def _fitted_range(w: dict[str, np.ndarray]) -> dict[str, float]:
    """The smallest and largest FLOPs and bytes of one measured kernel of a family (its ops summed)."""
    flops, moved = w["flops"].sum(axis=1), w["bytes"].sum(axis=1)
    return {
        "fitted_flops_min": float(flops.min()),
        "fitted_flops_max": float(flops.max()),
        "fitted_bytes_min": float(moved.min()),
        "fitted_bytes_max": float(moved.max()),
    }


def scored_rows(frame: pl.DataFrame) -> pl.DataFrame:
    """The rows a fit uses and a scorecard scores: the fastest kernel per shape, full attention (and validate's ops)."""
    rows = frame.filter(pl.col("kind").is_in(list(FAMILY_OF_KIND)) | fitted_family(frame).is_not_null())
    if "window" in rows.columns:
        rows = rows.filter(pl.col("window").fill_null(0) == 0)
    return fastest_kernels(rows)


def _family_work(rows: pl.DataFrame, hardware: Hardware, family: str) -> dict[str, np.ndarray] | None:
    parts = []
    for (kind, dtype), group in rows.filter(fitted_family(rows) == family).group_by(
        "kind", "dtype", maintain_order=True
    ):
        w = work(kind, group, hardware, dtype)
        if w is not None:  # a kernel table's rows are replayed on the same operands, validate's are not
            replayed = np.full(group.height, kind in FAMILY_OF_KIND)
            parts.append(({**w, "replayed": replayed}, group["measured_time_s"].to_numpy()))
    if not parts:
        return None
    width = max(w["compute_s"].shape[1] for w, _ in parts)

    def padded(key: str) -> np.ndarray:
        return np.concatenate([np.pad(w[key], ((0, 0), (0, width - w[key].shape[1]))) for w, _ in parts])

    return {
        "compute_s": padded("compute_s"),
        "memory_s": padded("memory_s"),
        "hops": padded("hops"),
        "bytes": padded("bytes"),
        "devices": padded("devices"),
        "flops": padded("flops"),
        "t": np.concatenate([t for _, t in parts]),
        "replayed": np.concatenate([w["replayed"] for w, _ in parts]),
    }


def _pairs(table: dict[str, dict[str, float]]) -> tuple[tuple[str, tuple[tuple[str, float], ...]], ...]:
    """A ``group → terms`` table as the pairs a :class:`Hardware` holds."""
    return tuple((group, tuple(terms.items())) for group, terms in table.items())


def fit_hardware(measurements: pl.DataFrame, hardware: Hardware, *, name: str | None = None) -> Hardware:
    """``hardware`` with the achieved terms of every family its measurements cover fitted (module docstring).

    Args:
        measurements: measured rows of this one GPU (:func:`rooflax.read_measurements`).
        hardware: the profile whose ceilings the times are measured against (its datasheet
            figures stay as they are).
        name: the fitted profile's name (default: ``hardware``'s).

    Returns:
        The profile with ``group_terms`` for the fitted groups, and for collectives the
        fitted ``interconnect_latency_s``; families with fewer than :data:`MIN_FIT_ROWS`
        measured shapes keep the profile's terms.

    Raises:
        SpecError: no row of a family rooflax fits.
    """
    rows = scored_rows(measurements)
    terms = {group: dict(values) for group, values in hardware.group_terms}
    phase_terms = {phase: {group: dict(values) for group, values in groups} for phase, groups in hardware.phase_terms}
    latency = hardware.interconnect_latency_s
    default = (1 / hardware.compute_efficiency, 1 / hardware.bandwidth_efficiency)
    found = {family: _family_work(rows, hardware, family) for family in FITTED_GROUPS}
    works = {family: w for family, w in found.items() if w is not None and len(w["t"]) >= MIN_FIT_ROWS}
    resident = _resident_bytes(works["gemm"], default) if "gemm" in works else 0.0
    fitted = []
    for family, (groups, phases) in FITTED_GROUPS.items():
        if family not in works:
            continue
        w = works[family]
        fitted.append(family)
        if family == "comm":
            family_terms, latency = _fit_link(w["memory_s"], w["hops"], w["devices"], w["t"])
        else:
            family_terms = _fit_cached(w, default, resident)[0]
        family_terms = {**family_terms, **_fitted_range(w)}
        for group in groups:
            if phases is None:
                terms[group] = family_terms
            for phase in phases or ():
                phase_terms.setdefault(phase, {})[group] = family_terms
    if not fitted:
        raise SpecError(
            f"measurements: no products, attention or collectives rooflax can fit for {hardware.name!r} "
            f"(a family needs {MIN_FIT_ROWS} measured shapes; kinds: "
            f"{', '.join(f'{kind} ({n})' for kind, n in sorted(rows.group_by('kind').len().iter_rows()))})"
        )
    return replace(
        hardware,
        name=name or hardware.name,
        group_terms=_pairs(terms),
        phase_terms=tuple((phase, _pairs(groups)) for phase, groups in phase_terms.items()),
        interconnect_latency_s=latency,
        l2_resident_bytes=resident,
    )


#: The columns that make a measured shape (a held-out shape is held out in every kernel and dtype).
_SHAPE = (
    "kind",
    "m",
    "n",
    "k",
    "batch",
    "seq_len",
    "heads",
    "kv_heads",
    "head_dim",
    "gpus",
    "message_bytes",
    "tokens",
    "hidden",
    "intermediate",
    "topk",
    "experts",
    "moe_tp",
    "moe_ep",
    "model",
    "phase",
    "spec_k",
)


def split_by_shape(frame: pl.DataFrame, *, held_out: float = 0.5, seed: int = 0) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``(train, test)``: whole shapes go to one side, chosen by a hash of the shape that is the same everywhere.

    Args:
        frame: measured rows (:func:`rooflax.read_measurements`).
        held_out: the share of shapes to hold out, in (0, 1).
        seed: another seed gives another split.
    """
    if isinstance(held_out, bool) or not isinstance(held_out, int | float) or not 0 < held_out < 1:
        raise SpecError(f"held_out: expected a share between 0 and 1, got {held_out!r}")
    columns = [c for c in _SHAPE if c in frame.columns]
    key = frame.select(pl.concat_str([pl.col(c).cast(pl.String).fill_null("") for c in columns], separator="|"))
    test = pl.Series([stable_share(text, seed) < held_out for text in key.to_series().to_list()], dtype=pl.Boolean)
    return frame.filter(~test), frame.filter(test)


def stable_share(text: str, seed: int = 0) -> float:
    """``text`` hashed to a number in [0, 1), the same on every machine and Python (``hash`` is salted):
    the first 8 bytes of BLAKE2b of ``seed|text`` over 2**64.

    >>> 0 <= stable_share("gemm|1|4096|4096") < 1
    True
    """
    digest = hashlib.blake2b(f"{seed}|{text}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") / 2**64


def accuracy(
    measurements: pl.DataFrame,
    hardware: str | Hardware | Mapping[str, Hardware] | None = None,
) -> pl.DataFrame:
    """The scorecard: per hardware and kind, ``n`` shapes and the median and p90 relative error.

    Args:
        measurements: measured rows (:func:`rooflax.read_measurements`); only the fastest
            kernel per shape, full attention, is scored.
        hardware: as for :func:`rooflax.calibration.predict.predict_measurements`.

    Returns:
        Columns ``hardware``, ``kind``, ``n``, ``predicted_median``, ``predicted_p90``,
        ``ideal_median``, ``ideal_p90`` (``|time / measured − 1|``), ``predicted_p10_ratio``,
        ``predicted_p90_ratio`` (the spread of ``predicted / measured``) and ``band_coverage``
        (the share of measurements inside the predicted error band; null without a band).
    """
    priced = predict_measurements(scored_rows(measurements), hardware).filter(pl.col("predicted_time_s").is_not_null())
    ratio = pl.col("predicted_time_s") / pl.col("measured_time_s")
    ideal = (pl.col("ideal_time_s") / pl.col("measured_time_s") - 1).abs()
    inside = pl.col("measured_time_s").is_between(pl.col("predicted_lo_s"), pl.col("predicted_hi_s"))
    return (
        priced.group_by("hardware", "kind")
        .agg(
            pl.len().alias("n"),
            (ratio - 1).abs().median().alias("predicted_median"),
            inside.mean().alias("band_coverage"),
            (ratio - 1).abs().quantile(0.9).alias("predicted_p90"),
            ideal.median().alias("ideal_median"),
            ideal.quantile(0.9).alias("ideal_p90"),
            ratio.quantile(0.1).alias("predicted_p10_ratio"),
            ratio.quantile(0.9).alias("predicted_p90_ratio"),
        )
        .sort("hardware", "kind")
    )


def calibrate(
    measurements: pl.DataFrame, hardware: str | Hardware | None = None, *, name: str | None = None
) -> Hardware:
    """One GPU's profile fitted to its measurements (:func:`fit_hardware` from the preset or profile they name).

    Args:
        measurements: measured rows of one GPU (:func:`rooflax.read_measurements`).
        hardware: the preset or profile to fit from (default: the rows' ``hardware``); its
            datasheet figures stay, its achieved terms are fitted.
        name: the fitted profile's name (default: ``<hardware>-fitted``).

    Raises:
        SpecError: rows of several GPUs without ``hardware``, or nothing to fit.
    """
    from rooflax.config.hardware import FITTED as _FITTED
    from rooflax.config.hardware import get_hardware, uncalibrated_preset

    names = sorted(set(measurements["hardware"].to_list()))
    if hardware is None:
        if len(names) != 1:
            raise SpecError(
                f"hardware: the measurements hold {len(names)} GPUs ({', '.join(names)}); "
                "calibrate one at a time (give --hardware / hardware= and its files only)"
            )
        hardware = names[0]
    base = get_hardware(hardware)
    start = uncalibrated_preset(base.name) if isinstance(hardware, str) and base.name in _FITTED else base
    return fit_hardware(measurements, start, name=name or f"{base.name}-fitted")
