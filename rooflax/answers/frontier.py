"""The serving frontier: the most tokens/s per GPU at each tokens/s per user, and the best under an SLA.

:func:`frontier` serves (:mod:`rooflax.answers.serving`) every layout ``(tp, pp, ep)``
whose ``tp·pp·ep`` divides the GPU budget, every concurrency, dtype, speculation choice and
prefill mode, aggregated and (optionally) disaggregated, in a handful of vectorized sweeps
joined with polars; the Pareto set of tokens/s per GPU against tokens/s per user (per
accelerator) and, under an SLA (time to first token, time per output token), the
configurations with the most tokens/s per GPU.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Unpack, cast

import numpy as np
import polars as pl

from rooflax.answers import serving
from rooflax.answers.tables import Table
from rooflax.config.spec import SweepKeys, SweepSpec
from rooflax.errors import SpecError, boolean, positive_float, positive_int
from rooflax.names import LAYOUT

__all__ = ["Frontier", "frontier", "frontier_table", "pareto_mask"]

#: Best configurations under the SLA kept per accelerator unless told otherwise.
DEFAULT_TOP = 5


@dataclass(frozen=True, slots=True, kw_only=True)
class Frontier:
    """What :func:`frontier` found.

    Attributes:
        configurations: every feasible configuration served (the columns of
            :func:`rooflax.answers.serving.serve`, with ``layout``, ``on_frontier`` and ``meets_sla``).
        pareto: the configurations on the frontier, per accelerator, by tokens/s per user.
        best: the ``top`` configurations with the most tokens/s per GPU under the SLA, per
            accelerator (ties: the most tokens/s per user first; empty when none meets it:
            see ``reason``).
        reason: why ``best`` is empty, in one line; None otherwise.
        rank: the column ranked (``tokens_per_s_per_gpu``, or ``ideal_tokens_per_s_per_gpu``).
        sla: the SLA as given, ``{"ttft_s": ..., "tpot_s": ...}`` (None: no bound).
        traffic: the requests (prompt and output lengths).
        gpus: the GPU budget.
        searched: configurations served, feasible or not.
    """

    configurations: pl.DataFrame
    pareto: pl.DataFrame
    best: pl.DataFrame
    reason: str | None
    rank: str
    sla: dict[str, float | None]
    traffic: serving.Traffic
    gpus: int
    searched: int


def pareto_mask(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Which points no other point beats in both ``x`` and ``y`` (higher is better; of equal points, one).

    A point is on the frontier when its ``y`` is above that of every point with a larger
    ``x`` (or the same ``x`` ranked before it): one sort and a running maximum.

    >>> pareto_mask(np.array([1.0, 2.0, 3.0, 2.0]), np.array([3.0, 2.0, 1.0, 1.0])).tolist()
    [True, True, True, False]
    """
    order = np.lexsort((-y, -x))
    ranked = y[order]
    before = np.concatenate([[-np.inf], np.maximum.accumulate(ranked)[:-1]]) if len(ranked) else ranked
    mask = np.zeros(len(x), dtype=bool)
    mask[order] = ranked > before
    return mask


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def _layouts(spec: SweepSpec, gpus: int) -> dict[str, list[int]]:
    """The degrees of each parallel axis that divide ``gpus`` and every model of ``spec``."""
    out: dict[str, list[int]] = {}
    for axis in LAYOUT:
        allowed = []
        for degree in _divisors(gpus):
            try:
                for model in spec.models:
                    model.check_layout(**{axis: degree})
            except SpecError:
                continue
            allowed.append(degree)
        out[axis] = allowed
    return out


def _check_sla(field: str, value: float | None) -> float | None:
    return None if value is None else positive_float(field, value)


def frontier(
    spec: SweepSpec | str | Path | None = None,
    *,
    isl: int | None = None,
    osl: int | None = None,
    requests: Sequence[tuple[int, int, float]] | None = None,
    gpus: int,
    ttft: float | None = None,
    tpot: float | None = None,
    chunk: int | Sequence[int | None] | None = None,
    block_size: int = 16,
    k: object = None,
    tree: object = None,
    draft_model: Any = None,
    medusa_heads: int | None = None,
    acceptance: object = None,
    mtp: bool = False,
    disaggregated: bool = False,
    kv_link_bytes_per_s: float | None = None,
    gpu_hour_usd: float | Mapping[str, float] | None = None,
    ideal: bool = False,
    top: int = DEFAULT_TOP,
    **keys: Unpack[SweepKeys],
) -> Frontier:
    """Serve every configuration on a GPU budget; the frontier and the best under an SLA.

    Args:
        spec: the models, accelerators, dtypes and concurrencies (``batch``, per pipeline
            stage; default :data:`~rooflax.answers.serving.DEFAULT_CONCURRENCY`) to search, as a
            :class:`SweepSpec`, a TOML path or None (the keywords); the layouts are searched
            here, so ``tp``, ``pp`` and ``ep`` may not be given.
        isl: prompt tokens per request.
        osl: output tokens per request (≥ 2).
        requests: a mix of requests instead of ``isl`` and ``osl``: ``(isl, osl, share)`` of each
            kind, the shares summing to 1 (:class:`~rooflax.answers.serving.Traffic`).
        gpus: the device budget: layouts whose ``tp·pp·ep`` divides it.
        ttft: the SLA's longest time to first token, seconds (None: no bound); every request must
            meet it, so it bounds the longest prompt's (``ttft_max_s``).
        tpot: the SLA's longest time per output token, seconds (None: no bound).
        chunk: prefill modes: None (whole prompts), a chunk size, or a list of them (None
            in it: whole prompts too).
        block_size: tokens per KV page.
        k, tree, draft_model, medusa_heads, acceptance, mtp: speculation choices, searched beside
            none (:func:`rooflax.speculate`; ``mtp``: the model's multi-token prediction modules draft).
        disaggregated: search disaggregated prefill/decode too (prefill and decode
            instances with their own layouts, at most ``gpus`` devices in all).
        kv_link_bytes_per_s: the link a request's KV crosses between instances (None:
            the prefill devices' interconnect).
        gpu_hour_usd: a price per GPU-hour (``usd_per_million_tokens``; no default price): one
            number for every accelerator, or a mapping from each one's name to its price.
        ideal: rank and check the SLA on the ideal times instead of the achieved ones.
        top: configurations kept in ``best`` per accelerator.
        **keys: the spec's TOML keys (``model``, ``hardware``, ``dtype``, ``batch``).

    Returns:
        A :class:`Frontier`.

    Raises:
        SpecError: bad input, or a budget on which no layout holds the model (one line).
    """
    gpus = positive_int("gpus", gpus)
    top = positive_int("top", top)
    ttft, tpot = _check_sla("ttft", ttft), _check_sla("tpot", tpot)
    ideal, disaggregated = boolean("ideal", ideal), boolean("disaggregated", disaggregated)
    if kv_link_bytes_per_s is not None:
        positive_float("kv_link_bytes_per_s", kv_link_bytes_per_s)
    for axis in LAYOUT:
        if axis in keys:
            raise SpecError(
                f"{axis}: the frontier searches every layout whose tp·pp·ep divides gpus ({gpus}), so it reads "
                f"no {axis}; leave {axis} out"
            )
    chunks: list[int | None] = list(chunk) if isinstance(chunk, list | tuple) else [cast(int | None, chunk)]
    if not chunks:
        raise SpecError("chunk: expected a chunk size, None or a non-empty list of them, got []")
    traffics = [serving.Traffic.of(isl=isl, osl=osl, requests=requests, chunk=c, block_size=block_size) for c in chunks]
    probe = serving.base_spec(spec, keys, traffics[0])
    serving.gpu_hour_prices(gpu_hour_usd, [hw.name for hw in probe.hardware])  # checked before the search
    degrees = _layouts(probe, gpus)
    base = probe.with_keys(tp=degrees["tp"], pp=degrees["pp"], ep=degrees["ep"])
    rounds = serving.decode_rounds(
        base,
        traffics[0],
        k=k,
        tree=tree,
        draft_model=draft_model,
        medusa_heads=medusa_heads,
        acceptance=acceptance,
        mtp=mtp,
    )
    size = pl.col("tp") * pl.col("pp") * pl.col("ep")
    rounds = rounds.filter(gpus % size == 0)
    frames = []
    whole = None
    for traffic in traffics:
        prefill = serving.prefill_steps(base, traffic, base.batch).filter(gpus % size == 0)
        frames.append(serving.aggregated(rounds, prefill, traffic, base))
        whole = prefill if traffic.chunk is None else whole
    if disaggregated:
        if whole is None:
            whole = serving.prefill_steps(
                base, serving.Traffic.of(isl=isl, osl=osl, requests=requests, block_size=block_size)
            )
        frames.append(
            serving.disaggregated(rounds, whole, traffics[0], base, gpus=gpus, kv_link_bytes_per_s=kv_link_bytes_per_s)
        )
    everything = pl.concat(frames, how="diagonal_relaxed")
    if not everything["feasible"].any():
        _refuse(everything, probe, gpus)
    rank = "ideal_tokens_per_s_per_gpu" if ideal else "tokens_per_s_per_gpu"
    prefix = "ideal_" if ideal else ""
    found = serving.cost_columns(everything, gpu_hour_usd=gpu_hour_usd).filter("feasible")
    found = found.with_columns(_layout_label(disaggregated))
    on = np.zeros(found.height, dtype=bool)
    for _, rows in found.with_row_index("_row").group_by(["hardware"]):
        idx = rows["_row"].to_numpy()
        on[idx] = pareto_mask(rows[f"{prefix}tokens_per_s_per_user"].to_numpy(), rows[rank].to_numpy())
    meets = pl.lit(True)
    if ttft is not None:
        meets = meets & (pl.col(f"{prefix}ttft_max_s") <= ttft)
    if tpot is not None:
        meets = meets & (pl.col(f"{prefix}tpot_s") <= tpot)
    found = found.with_columns(on_frontier=pl.Series(on), meets_sla=meets).sort(
        ["hardware", rank, f"{prefix}tokens_per_s_per_user"], descending=[False, True, True]
    )
    best = found.filter("meets_sla").group_by("hardware", maintain_order=True).head(top)
    reason = None if best.height else _why_none(found, prefix, ttft, tpot)
    pareto = found.filter("on_frontier").sort("hardware", f"{prefix}tokens_per_s_per_user")
    return Frontier(
        configurations=found,
        pareto=pareto,
        best=best,
        reason=reason,
        rank=rank,
        sla={"ttft_s": ttft, "tpot_s": tpot},
        traffic=traffics[0],
        gpus=gpus,
        searched=everything.height,
    )


def _layout_label(disaggregated: bool) -> pl.Expr:
    """``tp×pp×ep`` of the (decode) instance, with the prefill instances' ahead when disaggregated."""
    own = pl.format("{}×{}×{}", "tp", "pp", "ep")
    if not disaggregated:
        return own.alias("layout")
    if_disaggregated = pl.format("{}·P{}×{}×{} + {}·D", "prefill_instances", "tp_p", "pp_p", "ep_p", "decode_instances")
    return (
        pl.when(pl.col("serving") == "disaggregated")
        .then(pl.concat_str(if_disaggregated, own))
        .otherwise(own)
        .alias("layout")
    )


def _refuse(rows: pl.DataFrame, spec: SweepSpec, gpus: int) -> None:
    """No configuration is feasible: say why in one line (the weights, else the KV cache)."""
    sizes = sorted({int(t) * int(p) * int(e) for t, p, e in rows.select(*LAYOUT).unique().iter_rows()})
    names = ", ".join(m.name for m in spec.models)
    hardware = ", ".join(h.name for h in spec.hardware)
    least = rows.sort("kv_usage").row(0, named=True)
    usage = least["kv_usage"]
    closest = "has no memory left after its weights" if usage == float("inf") else f"needs {usage:.3g}× the memory left"
    raise SpecError(
        f"gpus: on {gpus} × {hardware}, no layout of {names} dividing {gpus} (sizes {', '.join(map(str, sizes))}) "
        f"holds the weights and the KV cache (the closest, {least['tp']}×{least['pp']}×{least['ep']}, {closest}); "
        "give more GPUs, a smaller dtype or shorter requests"
    )


def _why_none(found: pl.DataFrame, prefix: str, ttft: float | None, tpot: float | None) -> str:
    """One line: the SLA nothing meets, and the closest any configuration comes to each bound."""
    parts = []
    for name, bound, what in (("ttft_max_s", ttft, "TTFT"), ("tpot_s", tpot, "TPOT")):
        if bound is None:
            continue
        least = found.sort(f"{prefix}{name}").row(0, named=True)
        parts.append(
            f"{what} ≤ {bound * 1e3:g} ms (the lowest is {least[f'{prefix}{name}'] * 1e3:.4g} ms, "
            f"{least['hardware']} {least['layout']} at concurrency {least['concurrency']})"
        )
    return f"no configuration meets {' and '.join(parts)}"


def frontier_table(result: Frontier, *, rows: pl.DataFrame | None = None) -> Table:
    """The best configurations under the SLA (or ``rows``) as a table, in milliseconds and tokens/s."""
    frame = result.best if rows is None else rows
    prefix = "ideal_" if result.rank.startswith("ideal_") else ""
    mixed = len(result.traffic.requests) > 1
    shown: list[pl.Expr] = [
        pl.col("hardware").cast(pl.String),
        pl.col("dtype").cast(pl.String),
        pl.col("layout"),
        pl.col("gpus"),
        pl.col("concurrency").alias("conc"),
        pl.col("speculation").alias("spec"),
        pl.col("prefill"),
        (pl.col(f"{prefix}ttft_s") * 1e3).round(1).alias("ttft_ms"),
        *([(pl.col(f"{prefix}ttft_max_s") * 1e3).round(1).alias("ttft_max_ms")] if mixed else []),
        (pl.col(f"{prefix}tpot_s") * 1e3).round(2).alias("tpot_ms"),
        pl.col(f"{prefix}tokens_per_s_per_user").round(1).alias("tok/s/user"),
        pl.col(result.rank).round(1).alias("tok/s/gpu"),
        (pl.col("kv_usage") * 100).round(0).alias("kv_%"),
        pl.col("joules_per_token").round(3).alias("J/tok"),
    ]
    if "usd_per_million_tokens" in frame.columns:
        shown.append(pl.col("usd_per_million_tokens").round(3).alias("$/Mtok"))
    sla = [
        f"{name} ≤ {v * 1e3:g} ms"
        for name, v in (("TTFT", result.sla["ttft_s"]), ("TPOT", result.sla["tpot_s"]))
        if v is not None
    ]
    title = f"most tokens/s per GPU{' under ' + ' and '.join(sla) if sla else ''} ({'ideal' if prefix else 'achieved'})"
    return Table.of(frame.select(shown), title=title)
