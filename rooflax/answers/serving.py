"""Serving at steady state: time to first token, time per output token and throughput of a
configuration serving a stream of requests, composed from the sweep's step costs.

Traffic: every request has ``isl`` prompt tokens and ``osl`` output tokens (the first output token
comes out of the prefill, the other ``osl − 1`` out of decode steps), or a **mix**: kinds ``i`` of
``isl_i`` prompt and ``osl_i`` output tokens, a share ``w_i`` of the requests each (``Σ w_i = 1``;
fixed lengths are the one-kind mix, and every formula below is the fixed one when there is one
kind). A configuration is a model, accelerator, dtype, layout ``(tp, pp, ep)`` on ``g = tp·pp·ep``
devices, a concurrency ``C`` (sequences in flight), a speculation choice and a prefill mode. Every
step cost is a summary sweep's (:func:`rooflax.sweep`, ``summary=True``), ideal (``time_s``) and
achieved (``achieved_time_s``, with the error band where the hardware has one); the outputs are
computed once from each.

**Band.** Each end of the achieved outputs' band is the whole computation again with every
step at that end: every op at its group's low (high) band factor, as a summary frame's
``achieved_time_lo_s`` takes them (a speculation round's draft and verify ends,
:func:`rooflax.speculate`; a mixed step's op rows each at its group's factor). Fast steps
give ``ttft_lo_s`` and ``tpot_lo_s`` and the rates' high ends (``tokens_per_s_per_gpu_hi``,
``tokens_per_s_per_user_hi``), slow steps the others; a KV transfer has no band. Null where
the hardware has no measured band.

**Steps.** A pipeline of ``pp`` stages runs ``pp`` micro-batches of ``B`` sequences (``C = pp·B``),
paced by its slowest stage, so every step takes one round of the pipeline,
``τ = pp·B·Q / tokens_per_s`` (``time_s`` itself when ``pp = 1``). Decode steps are priced at the
mean context of the sequences in flight, ``S̄ = isl + ⌊osl/2⌋``; with a mix, a kind stays ``osl_i``
rounds in flight, so the sequences in flight are kind ``i`` in proportion
``v_i = w_i·osl_i / Σ w_j·osl_j`` and ``S̄ = Σ v_i·(isl_i + ⌊osl_i/2⌋)`` to the nearest token. A
decode round (speculation: one draft-and-verify round, :func:`rooflax.speculate`) takes ``τ_d`` and
gives every sequence ``r`` tokens (``r = 1`` without speculation). Prefill takes ``T_p`` per request
(a mix: each kind's ``T_i``, and ``T_p = Σ w_i·T_i``): a whole prompt is one prefill step of batch 1
(no decode token rides along, ``d = 0``); chunked prefill splits it into ``n = ⌈isl/c⌉`` chunks (a
mix: ``n = Σ w_i·⌈isl_i/c⌉`` on average), each mixed into a step beside the ``d = C − 1`` other
sequences' decode tokens. A mixed step costs the linear, elementwise and collective ops of
``C − 1 + q`` tokens (``q`` the chunk's tokens), the rotary and attention of the ``C − 1`` decode
tokens at ``S̄`` (:data:`POSITION_OPS`), the chunk's rotary and attention as a verify step of ``q``
tokens at its context (``i·c``), and the LM head of ``C`` tokens, each op at its own roof (the op
rows of :func:`rooflax.sweep`): ``L`` times the layer's ops plus the head.

**Continuous batching.** When a sequence finishes, a new request takes its slot. Per
request the system runs its prefill (``T_p``) and ``m = (ō − 1 − n·d) / (C·r)`` decode
rounds, ``ō = Σ w_i·osl_i`` the output tokens of a request (``osl`` fixed), so (exact at steady
state, and Little's law ``C = λ · e2e`` holds by construction):

- requests per second ``λ = 1 / (T_p + m·τ_d)``;
- end to end ``e2e = C / λ`` (a mix: the requests' mean, ``Σ w_i·(T_i + (osl_i − 1)·TPOT)``);
  time to first token ``TTFT = T_p`` (no queueing: a request arrives as a slot frees; a mix:
  the requests' mean ``ttft_s``, and the longest prompt's ``T_i`` as ``ttft_max_s``, the slowest:
  an SLA's bound is on it, since every request must meet it);
- time per output token ``TPOT = (e2e − TTFT) / (ō − 1)``: the decode rounds and the other
  requests' prefills a sequence waits through while it decodes, the same for every kind (one
  request alone: ``TPOT = τ_d / r``);
- tokens/s per user ``1 / TPOT``; tokens/s per GPU ``λ · ō / g`` (output tokens).

A configuration is **feasible** when ``m ≥ 0`` (the chunks' decode tokens do not already
exceed the output) and the KV cache fits: paged in blocks of ``block_size`` tokens, the
``C`` sequences hold ``⌈S̄/block⌉·block`` tokens each on average (a mix: ``Σ v_i·⌈(isl_i +
⌊osl_i/2⌋)/block⌉·block``, the KV at ``S̄`` scaled by that over ``S̄``), ``kv_usage`` = that KV
over the device memory left after the weights, the drafter and the larger of the decode
step's and the (longest) prefill step's activations; feasible where ``kv_usage ≤ 1``.

**Disaggregated.** ``x`` prefill instances (layout ``(tp, pp, ep)_p``, ``g_p`` devices, whole
prompts, batch 1) and ``y`` decode instances (``g_d`` devices, concurrency ``C``) with their own
layouts. A request's KV cache (one copy of the model's cache at ``isl`` tokens:
``k·2·G·d·L·isl`` bytes for full attention, the latent and rotary key for latent attention, at
most the window for sliding-window layers) crosses a link (``kv_link_bytes_per_s``; default each
prefill device's interconnect in parallel, ``g_p · interconnect``) after its prefill: ``TTFT =
T_p + kv / link`` (a mix: the mean ``kv = Σ w_i·kv_i``, and ``ttft_max_s`` the longest prompt's
``T_i + kv_i / link``); decode instances run decode rounds only: ``TPOT = τ_d / r``. Rates: a
prefill instance serves ``R_p = 1/T_p`` requests/s, a decode instance ``R_d = C·r / (τ_d·(ō −
1))``; the system ``λ = min(x·R_p, y·R_d)`` on ``x·g_p + y·g_d`` devices. ``balance`` ``= R_d /
R_p`` is the ratio ``x/y`` that keeps both busy; with it and an infinitely fast link the devices
spend ``g_p/R_p + g_d/R_d`` device-seconds per request, the sum of the parts.

**Cost and energy.** ``joules_per_token`` = board power / tokens/s per GPU (every device
at its board power: an upper bound; null where the hardware has no ``board_power_w``);
``usd_per_million_tokens`` = price per GPU-hour / 3600 / tokens/s per GPU · 10⁶, only
when a price is given (no price is assumed): one for every accelerator, or one for each by
its name (:func:`gpu_hour_prices`).

Speculation and chunked prefill are priced for ``pp = 1`` layouts only. A speculation round
(:func:`rooflax.speculate`) is one micro-batch's latency, its draft then its verify step through
every stage; a pipeline round here is ``pp`` micro-batches paced by the slowest stage, and how a
micro-batch's draft (on which device: a draft model's, the last stage's prediction modules) overlaps
the other micro-batches' verify steps is not modelled.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Unpack, cast

import polars as pl

from rooflax.answers.bands import op_band
from rooflax.answers.speculate import speculate
from rooflax.config.dtypes import DtypePolicy
from rooflax.config.models import Model
from rooflax.config.spec import SpecKeys, SweepKeys, SweepSpec
from rooflax.data.frames import resolve_spec, sweep
from rooflax.engine.evaluate import evaluate
from rooflax.errors import SpecError, boolean, close_matches, positive_float, positive_int
from rooflax.names import ENTITIES, LAYOUT

__all__ = [
    "DEFAULT_CONCURRENCY",
    "METRICS",
    "POSITION_OPS",
    "Traffic",
    "aggregated",
    "base_spec",
    "cost_columns",
    "decode_rounds",
    "disaggregated",
    "gpu_hour_prices",
    "prefill_steps",
    "serve",
]

#: Concurrencies (sequences in flight per pipeline stage) served when none are given.
DEFAULT_CONCURRENCY = tuple(2**i for i in range(11))
#: The ops whose cost depends on the positions of the tokens (their rotary angles, the context they
#: attend), priced per part of a mixed step; the others depend on the step's token count alone.
POSITION_OPS = ("rotary", "qk", "softmax", "pv", "attention")
#: The serving outputs, each achieved (these names) and ideal (``ideal_`` before them).
METRICS = ("ttft_s", "tpot_s", "e2e_s", "tokens_per_s_per_user", "tokens_per_s_per_gpu", "requests_per_s")
#: The keys of one instance's layout.
INSTANCE = (*ENTITIES, "hidden", *LAYOUT)
#: How the step times are read: ideal, achieved, and the achieved time's band ends.
_TIMES = {"ideal_": "time_s", "": "achieved_time_s", "lo_": "achieved_time_lo_s", "hi_": "achieved_time_hi_s"}
_RATES = {"ideal_": "tokens_per_s", "": "achieved_tokens_per_s"}
_NOT_READ = ("seq_len", "phases", "spec_k", "tree")


@dataclass(frozen=True, slots=True, kw_only=True)
class Traffic:
    """The requests served: prompt and output lengths (fixed, or a mix of kinds), prefill chunk and KV block.

    Args:
        isl: prompt tokens per request, ≥ 1 (with ``osl``; or ``requests``).
        osl: output tokens per request, ≥ 2 (the first comes out of prefill; one output
            token has no time per output token).
        requests: a mix instead of ``isl`` and ``osl``: ``(isl, osl, share)`` of each kind of
            request, the shares (of requests) positive and summing to 1; a fixed ``isl, osl``
            is the mix ``((isl, osl, 1.0),)``.
        chunk: prompt tokens mixed into each step (chunked prefill), or None: whole prompts.
        block_size: tokens per KV-cache page.
    """

    isl: int | None = None
    osl: int | None = None
    requests: tuple[tuple[int, int, float], ...] = ()
    chunk: int | None = None
    block_size: int = 16

    def __post_init__(self) -> None:
        if self.requests and (self.isl is not None or self.osl is not None):
            raise SpecError("requests: give either isl and osl or requests (a mix), not both")
        if not self.requests and (self.isl is None or self.osl is None):
            raise SpecError(f"isl: expected isl and osl (or requests), got isl={self.isl!r}, osl={self.osl!r}")
        kinds = _kinds(self.requests) if self.requests else ((_isl("isl", self.isl), _osl("osl", self.osl), 1.0),)
        if not self.requests:
            object.__setattr__(self, "isl", kinds[0][0])
        object.__setattr__(self, "requests", kinds)
        if self.chunk is not None:
            chunk = positive_int("chunk", self.chunk)
            longest = max(i for i, _, _ in kinds)
            if chunk > longest:
                raise SpecError(
                    f"chunk: {chunk} tokens is longer than the {'prompt' if len(kinds) == 1 else 'longest prompt'} "
                    f"(isl {longest}); at most {longest}"
                )
            object.__setattr__(self, "chunk", chunk)
        object.__setattr__(self, "block_size", positive_int("block_size", self.block_size))

    @classmethod
    def of(
        cls,
        *,
        isl: int | None = None,
        osl: int | None = None,
        requests: Sequence[tuple[int, int, float]] | None = None,
        chunk: int | None = None,
        block_size: int = 16,
    ) -> Traffic:
        """The traffic of fixed ``isl`` and ``osl`` or of a mix ``requests`` (any sequence of kinds; None: no mix)."""
        if requests is None:
            return cls(isl=isl, osl=osl, chunk=chunk, block_size=block_size)
        if isinstance(requests, str | bytes) or not isinstance(requests, Sequence) or not requests:
            raise SpecError(f"requests: expected a non-empty list of (isl, osl, share) kinds, got {requests!r}")
        return cls(isl=isl, osl=osl, requests=tuple(requests), chunk=chunk, block_size=block_size)

    @property
    def _in_flight(self) -> tuple[float, ...]:
        """Each kind's share of the sequences in flight, ``w_i·osl_i / Σ w_j·osl_j``."""
        total = self.output_tokens
        return tuple(w * o / total for _, o, w in self.requests)

    @property
    def output_tokens(self) -> float:
        """Output tokens per request, ``ō = Σ w_i·osl_i`` (``osl`` itself when fixed)."""
        if len(self.requests) == 1:
            return self.requests[0][1]
        return sum(w * o for _, o, w in self.requests)

    @property
    def context(self) -> int:
        """The mean context of the sequences in flight, ``isl + ⌊osl/2⌋`` (a mix: the kinds' in flight's
        weighted mean, to the nearest token)."""
        if len(self.requests) == 1:
            return self.requests[0][0] + self.requests[0][1] // 2
        return round(sum(v * (i + o // 2) for v, (i, o, _) in zip(self._in_flight, self.requests, strict=True)))

    @property
    def paged_context(self) -> float:
        """The mean context of the sequences in flight in whole KV blocks: each kind's rounded up to
        whole blocks, weighted as :attr:`context`."""
        pages = [-(-(i + o // 2) // self.block_size) * self.block_size for i, o, _ in self.requests]
        if len(self.requests) == 1:
            return pages[0]
        return sum(v * p for v, p in zip(self._in_flight, pages, strict=True))

    @property
    def prompts(self) -> tuple[tuple[int, float], ...]:
        """Each prompt length and the share of the requests with it (kinds of one ``isl`` together)."""
        shares: dict[int, float] = {}
        for isl, _, w in self.requests:
            shares[isl] = shares.get(isl, 0.0) + w
        return tuple(shares.items())

    def chunks(self, isl: int) -> tuple[tuple[int, int], ...]:
        """``(tokens, context)`` of each prefill chunk of a prompt of ``isl`` tokens (one whole prompt
        without a chunk)."""
        c = self.chunk or isl
        return tuple((min(c, isl - start), min(start + c, isl)) for start in range(0, isl, c))

    @property
    def prefill(self) -> str:
        """The prefill mode's label: ``whole`` or ``chunk C``."""
        return "whole" if self.chunk is None else f"chunk {self.chunk}"

    @property
    def label(self) -> str:
        """The requests in words: ``2,048 tokens in, 512 out`` or each kind's share and lengths."""
        if len(self.requests) == 1:
            isl, osl, _ = self.requests[0]
            return f"{isl:,} tokens in, {osl:,} out"
        return "a mix: " + ", ".join(f"{w:.0%} {i:,} in / {o:,} out" for i, o, w in self.requests)


def _isl(field: str, value: object) -> int:
    return positive_int(field, value)


def _osl(field: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 2:
        raise SpecError(
            f"{field}: expected an integer ≥ 2 output tokens (the first comes out of prefill, the rest "
            f"out of decode steps), got {value!r}"
        )
    return value


def _kinds(requests: object) -> tuple[tuple[int, int, float], ...]:
    """The mix ``requests`` checked: ``(isl, osl, share)`` kinds, shares positive and summing to 1 (± 1e-9)."""
    if isinstance(requests, str | bytes) or not isinstance(requests, Sequence):
        raise SpecError(f"requests: expected a list of (isl, osl, share) kinds, got {requests!r}")
    kinds = []
    for n, kind in enumerate(requests):
        if isinstance(kind, str | bytes) or not isinstance(kind, Sequence) or len(kind) != 3:
            raise SpecError(f"requests[{n}]: expected (isl, osl, share), got {kind!r}")
        isl, osl, share = kind
        kinds.append((_isl(f"requests[{n}] isl", isl), _osl(f"requests[{n}] osl", osl), _share(n, share)))
    total = sum(w for _, _, w in kinds)
    if abs(total - 1.0) > 1e-9:
        raise SpecError(f"requests: the shares sum to {total:g}; they are fractions of the requests and sum to 1")
    return tuple(kinds)


def _share(n: int, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 < float(value) <= 1:
        raise SpecError(f"requests[{n}] share: expected a fraction of the requests in (0, 1], got {value!r}")
    return float(value)


def _round(prefix: str, tokens: pl.Expr) -> pl.Expr:
    """One pipeline round of a step: ``pp · (tokens of a micro-batch) / tokens_per_s``; band ends
    scale the achieved round by the band's ratio to the achieved latency."""
    if prefix in _RATES:
        return pl.col("pp") * tokens / pl.col(_RATES[prefix])
    return pl.col("pp") * tokens / pl.col("achieved_tokens_per_s") * pl.col(_TIMES[prefix]) / pl.col("achieved_time_s")


def _total(times: pl.Expr) -> pl.Expr:
    """The sum of ``times``, null when any is (a band the hardware has not measured stays unknown)."""
    return pl.when(times.has_nulls()).then(None).otherwise(times.sum())


def base_spec(spec: SweepSpec | str | Path | None, keys: SweepKeys, traffic: Traffic) -> SweepSpec:
    """The decode sweep the serving steps start from: ``spec`` with ``keys``, at the traffic's mean context.

    Args:
        spec: a :class:`SweepSpec`, a TOML path or None.
        keys: the spec's keys (no ``seq_len``, ``phases``, ``spec_k`` or ``tree``: the traffic sets them).
        traffic: the requests.
    """
    for key in _NOT_READ:
        if key in keys:
            raise SpecError(
                f"{key}: serving sets each step's {key} from the traffic (isl, osl, chunk), so it reads no "
                f"{key}; leave {key} out"
            )
    given: dict[str, Any] = dict(keys)
    if spec is None and "batch" not in given:
        given["batch"] = list(DEFAULT_CONCURRENCY)
    given.update(phases=["decode"], seq_len=[traffic.context], spec_k=None, tree=None)
    return resolve_spec(spec, cast(SpecKeys, given))


def decode_rounds(
    base: SweepSpec,
    traffic: Traffic,
    *,
    k: object = None,
    tree: object = None,
    draft_model: Any = None,
    medusa_heads: int | None = None,
    acceptance: object = None,
    mtp: bool = False,
) -> pl.DataFrame:
    """One row per instance layout, batch and speculation choice: a decode round's times and memory.

    Args:
        base: the decode sweep (seq_len the traffic's mean context, :class:`Traffic`).
        traffic: the requests.
        k, tree, draft_model, medusa_heads, acceptance, mtp: speculation as :func:`rooflax.speculate`
            takes it (none: decode steps only); priced for the ``pp = 1`` layouts.

    Returns:
        :data:`INSTANCE`, ``batch``, ``concurrency`` (``pp·batch``), ``speculation`` (``none``,
        ``k=K``, or the tree's label; ``medusa`` before it with Medusa heads, ``draft`` with a
        draft model, ``mtp`` with the model's prediction modules), ``draft_k`` (null: none),
        ``tokens_per_round``, the round's times ``ideal_round_s``, ``round_s``, ``lo_round_s``,
        ``hi_round_s`` (band: null where the hardware has none), ``kv_bytes`` (paged, per
        device), ``other_bytes`` (weights, drafter, activations per device) and ``weight_bytes``
        (the target's, per device).
    """
    mtp = boolean("mtp", mtp)
    for model in base.models if mtp else ():
        model.mtp_model()  # refuses a model without prediction modules, before any sweep
    decode = sweep(base, summary=True)
    paged = traffic.paged_context / traffic.context
    rows = decode.select(
        *INSTANCE,
        "batch",
        (pl.col("pp") * pl.col("batch")).alias("concurrency"),
        pl.lit("none").alias("speculation"),
        pl.lit(None, pl.Int64).alias("draft_k"),
        pl.lit(1.0).alias("tokens_per_round"),
        *(_round(p, pl.col("batch")).alias(f"{p}round_s") for p in _TIMES),
        (pl.col("kv_cache_bytes") * paged).alias("kv_bytes"),
        (pl.col("weight_bytes") + pl.col("activation_bytes")).alias("other_bytes"),
        "weight_bytes",
    )
    if k is None and tree is None and draft_model is None and medusa_heads is None and not mtp:
        return rows
    if 1 not in base.pp:
        raise SpecError(f"k: speculation is priced for pp = 1 layouts only, and the spec's pp is {list(base.pp)}")
    flat = base.with_keys(pp=[1])
    spec = speculate(
        flat, k=k, tree=tree, draft_model=draft_model, medusa_heads=medusa_heads, acceptance=acceptance, mtp=mtp
    ).join(decode.select(*INSTANCE, "batch", "kv_cache_bytes", "weight_bytes"), on=[*INSTANCE, "batch"])
    drafter = "medusa " if medusa_heads is not None else "draft " if draft_model is not None else "mtp " if mtp else ""
    label = pl.when(pl.col("tree") == "chain").then(pl.format("k={}", "draft_k")).otherwise(pl.col("tree"))
    speculated = spec.select(
        *INSTANCE,
        "batch",
        pl.col("batch").alias("concurrency"),
        (pl.lit(drafter) + label).alias("speculation"),
        "draft_k",
        "tokens_per_round",
        pl.col("round_time_s").alias("ideal_round_s"),
        pl.col("achieved_round_time_s").alias("round_s"),
        pl.col("achieved_round_time_lo_s").alias("lo_round_s"),
        pl.col("achieved_round_time_hi_s").alias("hi_round_s"),
        (pl.col("kv_cache_bytes") * paged).alias("kv_bytes"),
        (pl.col("memory_bytes") - pl.col("kv_cache_bytes")).alias("other_bytes"),
        "weight_bytes",
    )
    return pl.concat([rows, speculated.cast(rows.schema)])


def prefill_steps(base: SweepSpec, traffic: Traffic, batches: Sequence[int] = ()) -> pl.DataFrame:
    """One row per instance layout (and, chunked, per concurrency): the prefill time a request costs.

    Args:
        base: the decode sweep of :func:`decode_rounds` (its models, hardware, dtypes, layouts).
        traffic: the requests; with a ``chunk``, the mixed steps (module docstring) of each
            concurrency in ``batches``, for the ``pp = 1`` layouts.
        batches: the concurrencies to price chunked prefill at.

    Returns:
        :data:`INSTANCE`, ``prefill`` (the mode), ``concurrency`` (null: the same at every
        concurrency), ``chunks`` (steps a prompt takes), ``ride`` (decode tokens riding in
        each: 0 whole, ``C − 1`` chunked), ``ideal_prefill_s``, ``prefill_s``, ``lo_prefill_s``,
        ``hi_prefill_s`` (per request), ``prefill_activation_bytes`` and ``prefill_memory_bytes``
        (per device: weights, the prompt's KV, activations).
    """
    kinds = traffic.prompts
    if traffic.chunk is None:
        whole = sweep(base.with_keys(phases=["prefill"], batch=[1], seq_len=[isl for isl, _ in kinds]), summary=True)
        prompts = whole.select(
            *INSTANCE,
            pl.lit(None, pl.Int64).alias("concurrency"),
            pl.col("seq_len").alias("isl"),
            *(_round(p, pl.col("seq_len")).alias(f"{p}prefill_s") for p in _TIMES),
            pl.col("activation_bytes").alias("prefill_activation_bytes"),
            pl.col("memory_bytes").alias("prefill_memory_bytes"),
        )
        return _per_request(prompts, traffic, ride=pl.lit(0, pl.Int64))
    if 1 not in base.pp:
        raise SpecError(
            f"chunk: chunked prefill is priced for pp = 1 layouts only, and the spec's pp is {list(base.pp)}"
        )
    flat = base.with_keys(pp=[1])
    chunks = pl.DataFrame(
        [(isl, q, context) for isl, _ in kinds for q, context in traffic.chunks(isl)],
        schema={"isl": pl.Int64, "q": pl.Int64, "context": pl.Int64},
        orient="row",
    )
    sizes = sorted(set(chunks["q"].to_list()))
    concurrency = pl.DataFrame({"concurrency": sorted(set(batches))}, schema={"concurrency": pl.Int64})
    # the token-count ops of C − 1 + q tokens, the head of C, the decode attention of C − 1 (at S̄)
    need = sorted(
        {c - 1 + q for c in batches for q in sizes} | {c for c in batches} | {c - 1 for c in batches if c > 1}
    )
    ops = op_band(sweep(flat.with_keys(batch=need), summary=False), flat)
    positional = pl.col("op").cast(pl.String).is_in(POSITION_OPS)
    head = pl.col("op").cast(pl.String) == "lm_head"
    times = [_total(pl.col(t)).alias(t) for t in _TIMES.values()]
    tokens = ops.filter(~positional & ~head).group_by(*INSTANCE, "batch").agg(times)
    heads = ops.filter(head).group_by(*INSTANCE, "batch").agg(times)
    decode_attention = ops.filter(positional).group_by(*INSTANCE, "batch").agg(times)
    verify = op_band(
        sweep(
            flat.with_keys(
                phases=["verify"], batch=[1], spec_k=sizes, seq_len=sorted(set(chunks["context"].to_list()))
            ),
            summary=False,
        ),
        flat,
    )
    chunk_attention = (
        verify.filter(positional)
        .group_by(*INSTANCE, pl.col("spec_k").alias("q"), pl.col("seq_len").alias("context"))
        .agg(times)
    )
    layers = pl.DataFrame(
        {"model": [m.name for m in flat.models], "layers": [m.layers for m in flat.models]},
        schema={"model": ops.schema["model"], "layers": pl.Int64},
    )
    steps = (
        chunk_attention.join(chunks, on=["q", "context"])
        .join(concurrency, how="cross")
        .with_columns(tokens=pl.col("concurrency") - 1 + pl.col("q"), others=pl.col("concurrency") - 1)
        .join(tokens, left_on=[*INSTANCE, "tokens"], right_on=[*INSTANCE, "batch"], suffix="_tokens")
        .join(heads, left_on=[*INSTANCE, "concurrency"], right_on=[*INSTANCE, "batch"], suffix="_head")
        .join(
            decode_attention, left_on=[*INSTANCE, "others"], right_on=[*INSTANCE, "batch"], how="left", suffix="_decode"
        )
        .join(layers, on="model")
    )
    # C = 1: no decode token rides along (no decode-attention row joined)
    alone = pl.col("time_s_decode").is_null()
    mixed = {
        prefix: pl.col("layers")
        * (pl.col(f"{t}_tokens") + pl.col(t) + pl.when(alone).then(0.0).otherwise(pl.col(f"{t}_decode")))
        + pl.col(f"{t}_head")
        for prefix, t in _TIMES.items()
    }
    prompt = steps.group_by(*INSTANCE, "concurrency", "isl").agg(
        *(_total(expr).alias(f"{prefix}prefill_s") for prefix, expr in mixed.items())
    )
    activations = sweep(flat.with_keys(phases=["prefill"], batch=[1], seq_len=[traffic.chunk]), summary=True).select(
        *INSTANCE,
        pl.col("activation_bytes").alias("prefill_activation_bytes"),
        pl.col("memory_bytes").alias("prefill_memory_bytes"),
    )
    return _per_request(prompt.join(activations, on=INSTANCE), traffic, ride=pl.col("concurrency") - 1)


def _per_request(prompts: pl.DataFrame, traffic: Traffic, *, ride: pl.Expr) -> pl.DataFrame:
    """Each kind's prompt (rows keyed by ``isl``) averaged over the requests: the prefill times weighted
    by the kinds' shares (``{p}prefill_s``) and the longest prompt's (``{p}prefill_max_s``), the chunks
    a request takes on average, the memory of the largest."""
    kinds = traffic.prompts
    longest = max(isl for isl, _ in kinds)
    shares = pl.DataFrame(
        {
            "isl": [isl for isl, _ in kinds],
            "share": [w for _, w in kinds],
            "steps": [float(len(traffic.chunks(isl))) for isl, _ in kinds],
        },
        schema={"isl": pl.Int64, "share": pl.Float64, "steps": pl.Float64},
    )
    at_longest = pl.col("isl") == longest
    return (
        prompts.join(shares, on="isl")
        .group_by(*INSTANCE, "concurrency", maintain_order=True)
        .agg(
            (pl.col("share") * pl.col("steps")).sum().alias("chunks"),
            *(_total(pl.col("share") * pl.col(f"{p}prefill_s")).alias(f"{p}prefill_s") for p in _TIMES),
            *(pl.col(f"{p}prefill_s").filter(at_longest).first().alias(f"{p}prefill_max_s") for p in _TIMES),
            pl.col("prefill_activation_bytes").max(),
            pl.col("prefill_memory_bytes").max(),
        )
        .select(
            *INSTANCE,
            pl.lit(traffic.prefill).alias("prefill"),
            "concurrency",
            "chunks",
            ride.alias("ride"),
            *(f"{p}prefill_s" for p in _TIMES),
            *(f"{p}prefill_max_s" for p in _TIMES),
            "prefill_activation_bytes",
            "prefill_memory_bytes",
        )
    )


def _capacity(spec: SweepSpec, schema: pl.Schema) -> pl.DataFrame:
    """Each accelerator's memory, interconnect and board power, keyed by its name."""
    return pl.DataFrame(
        {
            "hardware": [h.name for h in spec.hardware],
            "capacity_bytes": [float(h.memory_bytes) for h in spec.hardware],
            "interconnect_bytes_per_s": [float(h.interconnect_bytes_per_s) for h in spec.hardware],
            "board_power_w": [h.board_power_w for h in spec.hardware],
        },
        schema={
            "hardware": schema["hardware"],
            "capacity_bytes": pl.Float64,
            "interconnect_bytes_per_s": pl.Float64,
            "board_power_w": pl.Float64,
        },
    )


def _feasibility(other: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """``kv_usage`` (KV over the memory left after ``other`` bytes; infinite where none is left) and
    whether it fits."""
    left = pl.col("capacity_bytes") - other
    usage = pl.when(left > 0).then(pl.col("kv_bytes") / left).otherwise(float("inf"))
    return usage.alias("kv_usage"), (usage <= 1.0)


#: Which end of a rate's band the step times' low (high) end gives: fast steps, high rates.
_RATE_END = {"lo_": "hi", "hi_": "lo"}


def _band(prefix: str, ttft: pl.Expr, ttft_max: pl.Expr, tpot: pl.Expr, per_gpu: pl.Expr) -> dict[str, pl.Expr]:
    """One end of the band (``prefix`` ``lo_`` or ``hi_``: every step at its ops' low or high ratio):
    ``ttft_lo_s``, ``ttft_max_lo_s``, ``tpot_lo_s`` and the rates' other end (``tokens_per_s_per_user_hi``, ...)."""
    end = _RATE_END[prefix]
    return {
        f"ttft_{prefix}s": ttft,
        f"ttft_max_{prefix}s": ttft_max,
        f"tpot_{prefix}s": tpot,
        f"tokens_per_s_per_user_{end}": 1.0 / tpot,
        f"tokens_per_s_per_gpu_{end}": per_gpu,
    }


def aggregated(rounds: pl.DataFrame, prefill: pl.DataFrame, traffic: Traffic, spec: SweepSpec) -> pl.DataFrame:
    """Serving rows of instances that prefill and decode on the same devices (module docstring).

    Args:
        rounds: :func:`decode_rounds`.
        prefill: :func:`prefill_steps`.
        traffic: the requests.
        spec: the sweep both came from (its accelerators' memory).
    """
    osl = traffic.output_tokens
    whole = prefill.filter(pl.col("concurrency").is_null()).drop("concurrency")
    if whole.height:
        joined = rounds.join(whole, on=INSTANCE)
    else:
        joined = rounds.join(prefill, on=[*INSTANCE, "concurrency"])
    joined = joined.join(_capacity(spec, rounds.schema), on="hardware")
    gpus = pl.col("tp") * pl.col("pp") * pl.col("ep")
    c, r = pl.col("concurrency"), pl.col("tokens_per_round")
    rounds_per_request = (osl - 1 - pl.col("chunks") * pl.col("ride")) / (c * r)
    columns: dict[str, pl.Expr] = {}
    for p in ("", "ideal_", "lo_", "hi_"):
        ttft, ttft_max = pl.col(f"{p}prefill_s"), pl.col(f"{p}prefill_max_s")
        rate = 1.0 / (ttft + rounds_per_request * pl.col(f"{p}round_s"))
        e2e = c / rate
        tpot = (e2e - ttft) / (osl - 1)
        if p in ("lo_", "hi_"):
            columns |= _band(p, ttft, ttft_max, tpot, rate * osl / gpus)
            continue
        columns |= {
            f"{p}ttft_s": ttft,
            f"{p}ttft_max_s": ttft_max,
            f"{p}tpot_s": tpot,
            f"{p}e2e_s": e2e,
            f"{p}tokens_per_s_per_user": 1.0 / tpot,
            f"{p}tokens_per_s_per_gpu": rate * osl / gpus,
            f"{p}requests_per_s": rate,
        }
    usage, fits = _feasibility(
        pl.max_horizontal(pl.col("other_bytes"), pl.col("weight_bytes") + pl.col("prefill_activation_bytes"))
    )
    return joined.select(
        *INSTANCE,
        gpus.alias("gpus"),
        pl.lit("aggregated").alias("serving"),
        "batch",
        "concurrency",
        "speculation",
        "draft_k",
        "prefill",
        *(expr.alias(name) for name, expr in columns.items()),
        usage,
        ((rounds_per_request >= 0) & fits).alias("feasible"),
        "board_power_w",
    )


def _request_kv_bytes(model: Model, dtype: DtypePolicy, spec: SweepSpec, isl: int) -> float:
    """The KV cache one request's prompt leaves, one copy (what crosses to a decode instance): the model's own
    cache at ``isl`` tokens on one device (each layer kind's: a latent-attention layer's latent and rotary key,
    a sliding-window layer's window), :func:`rooflax.evaluate`'s ``kv_cache_bytes``."""
    return evaluate(
        model=model, hardware=spec.hardware[0], dtype=dtype, phase="prefill", batch=1, seq_len=isl
    ).kv_cache_bytes


def disaggregated(
    rounds: pl.DataFrame,
    prefill: pl.DataFrame,
    traffic: Traffic,
    spec: SweepSpec,
    *,
    gpus: int,
    kv_link_bytes_per_s: float | None = None,
) -> pl.DataFrame:
    """Serving rows of ``x`` prefill instances beside ``y`` decode instances (module docstring).

    Every pair of a prefill layout and a decode configuration of the same model, accelerator
    and dtype, with the counts ``x, y ≥ 1`` on at most ``gpus`` devices that serve the most
    tokens/s per GPU (ties: the most requests/s), on the achieved times; for each ``x`` only
    the two decode counts either side of the balance are tried (one of them is best at that ``x``).

    Args:
        rounds: :func:`decode_rounds` (the decode instances).
        prefill: :func:`prefill_steps` of whole prompts (the prefill instances).
        traffic: the requests.
        spec: the sweep both came from.
        gpus: the device budget.
        kv_link_bytes_per_s: the link from a prefill to a decode instance (None: each
            prefill device's interconnect, in parallel).
    """
    osl = traffic.output_tokens
    capacity = _capacity(spec, rounds.schema)
    longest = max(isl for isl, _ in traffic.prompts)
    pairs_of = [(m, d) for m in spec.models for d in spec.dtypes]
    # each prompt length's KV once per model and dtype, for the mean and the longest
    kv_of = [{isl: _request_kv_bytes(m, d, spec, isl) for isl, _ in traffic.prompts} for m, d in pairs_of]
    kv_per_request = pl.DataFrame(
        {
            "model": [m.name for m, _ in pairs_of],
            "dtype": [d.name for _, d in pairs_of],
            "kv_request_bytes": [sum(w * kv[isl] for isl, w in traffic.prompts) for kv in kv_of],
            "kv_request_max_bytes": [kv[longest] for kv in kv_of],
        },
        schema={
            "model": rounds.schema["model"],
            "dtype": rounds.schema["dtype"],
            "kv_request_bytes": pl.Float64,
            "kv_request_max_bytes": pl.Float64,
        },
    )
    p_gpus = pl.col("tp_p") * pl.col("pp_p") * pl.col("ep_p")
    pre = (
        prefill.join(capacity, on="hardware")
        .filter(pl.col("prefill_memory_bytes") <= pl.col("capacity_bytes"))
        .join(kv_per_request, on=["model", "dtype"])
        .select(
            *ENTITIES,
            "hidden",
            *(pl.col(n).alias(f"{n}_p") for n in LAYOUT),
            *(pl.col(f"{p}prefill_s") for p in _TIMES),
            *(pl.col(f"{p}prefill_max_s") for p in _TIMES),
            "kv_request_bytes",
            "kv_request_max_bytes",
            "interconnect_bytes_per_s",
        )
        .with_columns(gpus_p=p_gpus)
    )
    link = (
        pl.col("gpus_p") * pl.col("interconnect_bytes_per_s")
        if kv_link_bytes_per_s is None
        else pl.lit(kv_link_bytes_per_s)
    )
    usage, fits = _feasibility(pl.col("other_bytes"))
    dec = (
        rounds.join(capacity.drop("interconnect_bytes_per_s"), on="hardware")
        .with_columns(usage, fits.alias("fits"), gpus_d=pl.col("tp") * pl.col("pp") * pl.col("ep"))
        .filter(pl.col("gpus_d") < gpus)
    )
    # for each count x of prefill instances, the decode counts on either side of the balance x·R_p / R_d
    # (within the budget): one of them serves the most tokens/s per GPU at that x
    balance = pl.col("concurrency") * pl.col("tokens_per_round") * pl.col("prefill_s")
    balance = balance / (pl.col("round_s") * (osl - 1))  # R_d / R_p
    most = (gpus - pl.col("x") * pl.col("gpus_p")) // pl.col("gpus_d")
    counts = pl.DataFrame({"x": range(1, gpus)}, schema={"x": pl.Int64})
    pairs = (
        pre.filter(pl.col("gpus_p") < gpus)
        .join(dec, on=[*ENTITIES, "hidden"])
        .join(counts, how="cross")
        .with_columns(
            y=pl.concat_list(
                (pl.col("x") / balance).floor().cast(pl.Int64), (pl.col("x") / balance).ceil().cast(pl.Int64)
            ).list.eval(pl.element().clip(1)),
            most=most,
        )
        .explode("y")
        .with_columns(y=pl.min_horizontal("y", "most"))
        .filter(pl.col("y") >= 1)
        .with_columns(used=pl.col("x") * pl.col("gpus_p") + pl.col("y") * pl.col("gpus_d"))
    )
    transfer = pl.col("kv_request_bytes") / link
    columns: dict[str, pl.Expr] = {}
    for p in _TIMES:
        tpot = pl.col(f"{p}round_s") / pl.col("tokens_per_round")
        prefill_rate = 1.0 / pl.col(f"{p}prefill_s")
        decode_rate = pl.col("concurrency") / (tpot * (osl - 1))
        rate = pl.min_horizontal(pl.col("x") * prefill_rate, pl.col("y") * decode_rate)
        ttft = pl.col(f"{p}prefill_s") + transfer
        ttft_max = pl.col(f"{p}prefill_max_s") + pl.col("kv_request_max_bytes") / link
        if p in ("lo_", "hi_"):
            columns |= _band(p, ttft, ttft_max, tpot, rate * osl / pl.col("used"))
            continue
        columns |= {
            f"{p}ttft_s": ttft,
            f"{p}ttft_max_s": ttft_max,
            f"{p}tpot_s": tpot,
            f"{p}e2e_s": ttft + (osl - 1) * tpot,
            f"{p}tokens_per_s_per_user": 1.0 / tpot,
            f"{p}tokens_per_s_per_gpu": rate * osl / pl.col("used"),
            f"{p}requests_per_s": rate,
        }
        if not p:
            columns["balance"] = decode_rate / prefill_rate
    out = pairs.select(
        *INSTANCE,
        pl.col("used").alias("gpus"),
        pl.lit("disaggregated").alias("serving"),
        "batch",
        "concurrency",
        "speculation",
        "draft_k",
        pl.lit("whole").alias("prefill"),
        *(expr.alias(name) for name, expr in columns.items()),
        "kv_usage",
        "fits",
        "board_power_w",
        pl.col("x").alias("prefill_instances"),
        pl.col("y").alias("decode_instances"),
        *(f"{n}_p" for n in LAYOUT),
        transfer.alias("kv_transfer_s"),
    )
    best = out.sort(["tokens_per_s_per_gpu", "requests_per_s"], descending=[True, True]).group_by(
        *INSTANCE, *(f"{n}_p" for n in LAYOUT), "batch", "speculation", maintain_order=True
    )
    return best.first().rename({"fits": "feasible"})


def gpu_hour_prices(
    gpu_hour_usd: float | Mapping[str, float] | None, hardware: Sequence[str]
) -> dict[str, float] | None:
    """The price per GPU-hour of each accelerator served, checked.

    Args:
        gpu_hour_usd: US dollars per GPU-hour: one number for every accelerator, or a mapping
            from each accelerator's name to its price (every one of ``hardware``, no other); or None.
        hardware: the names of the accelerators served.

    Returns:
        The price of each of ``hardware`` by name, or None without a price.

    >>> gpu_hour_prices({"h200": 3.8, "b200": 5.5}, ["b200", "h200"])
    {'b200': 5.5, 'h200': 3.8}
    """
    if gpu_hour_usd is None:
        return None
    if not isinstance(gpu_hour_usd, Mapping):
        return dict.fromkeys(hardware, positive_float("gpu_hour_usd", gpu_hour_usd))
    for name in gpu_hour_usd:
        if name not in hardware:
            hint = close_matches(name, hardware)
            did_you_mean = f"; did you mean {' or '.join(map(repr, hint))}?" if hint else ""
            raise SpecError(
                f"gpu_hour_usd: {name!r} is not an accelerator served here{did_you_mean} "
                f"(served: {', '.join(hardware)})"
            )
    missing = [name for name in hardware if name not in gpu_hour_usd]
    if missing:
        raise SpecError(
            f"gpu_hour_usd: no price for {', '.join(missing)}; give one for each accelerator served "
            f"({', '.join(hardware)}) or one number for all"
        )
    return {name: positive_float(f"gpu_hour_usd[{name!r}]", gpu_hour_usd[name]) for name in hardware}


def cost_columns(frame: pl.DataFrame, *, gpu_hour_usd: float | Mapping[str, float] | None = None) -> pl.DataFrame:
    """``joules_per_token`` (at board power: an upper bound; null where it is unknown) and, with a
    price per GPU-hour, ``usd_per_million_tokens``, from the achieved tokens/s per GPU.

    Args:
        frame: serving rows (with ``hardware``, ``tokens_per_s_per_gpu`` and ``board_power_w``).
        gpu_hour_usd: US dollars per GPU-hour, one for every accelerator or one for each of the
            frame's (:func:`gpu_hour_prices`); or None: no price column.
    """
    out = frame.with_columns(joules_per_token=pl.col("board_power_w") / pl.col("tokens_per_s_per_gpu"))
    hardware = out["hardware"].cast(pl.String).unique(maintain_order=True).to_list()
    prices = gpu_hour_prices(gpu_hour_usd, hardware)
    if prices is None:
        return out
    price = pl.col("hardware").cast(pl.String).replace_strict(prices, return_dtype=pl.Float64)
    return out.with_columns(usd_per_million_tokens=price / 3600.0 / pl.col("tokens_per_s_per_gpu") * 1e6)


def serve(
    spec: SweepSpec | str | Path | None = None,
    *,
    isl: int | None = None,
    osl: int | None = None,
    requests: Sequence[tuple[int, int, float]] | None = None,
    chunk: int | None = None,
    block_size: int = 16,
    k: object = None,
    tree: object = None,
    draft_model: Any = None,
    medusa_heads: int | None = None,
    acceptance: object = None,
    mtp: bool = False,
    gpu_hour_usd: float | Mapping[str, float] | None = None,
    **keys: Unpack[SweepKeys],
) -> pl.DataFrame:
    """Steady-state serving of every configuration of a sweep (module docstring for the model).

    Args:
        spec: a :class:`SweepSpec`, a TOML path, or None; its models, accelerators, dtypes,
            layouts and ``batch`` axis (sequences in flight per pipeline stage; default
            :data:`DEFAULT_CONCURRENCY`) are served; ``seq_len``, ``phases``, ``spec_k`` and
            ``tree`` come from the traffic and may not be given.
        isl: prompt tokens per request.
        osl: output tokens per request (≥ 2).
        requests: a mix of requests instead of ``isl`` and ``osl``: ``(isl, osl, share)`` of each
            kind, the shares summing to 1 (:class:`Traffic`).
        chunk: prompt tokens per step (chunked prefill), or None: whole prompts.
        block_size: tokens per KV page.
        k, tree, draft_model, medusa_heads, acceptance, mtp: speculation, as :func:`rooflax.speculate`
            (``mtp``: the model's multi-token prediction modules draft, rows ``mtp k=K``).
        gpu_hour_usd: a price per GPU-hour for ``usd_per_million_tokens``: one number, or one
            per accelerator by name (:func:`gpu_hour_prices`).
        **keys: the spec's TOML keys (``model``, ``hardware``, ``batch``, ``tp``, ...).

    Returns:
        One row per configuration: :data:`INSTANCE`, ``gpus``, ``serving``, ``batch``,
        ``concurrency``, ``speculation``, ``draft_k``, ``prefill``, :data:`METRICS` achieved
        and ``ideal_…`` with ``ttft_max_s`` (the longest prompt's TTFT; ``ttft_s`` is the requests'
        mean), the band ends ``ttft_lo_s``, ``ttft_hi_s``, ``ttft_max_lo_s``, ``ttft_max_hi_s``, ``tpot_lo_s``,
        ``tpot_hi_s``, ``tokens_per_s_per_user_lo``, ``_hi``, ``tokens_per_s_per_gpu_lo``,
        ``_hi`` (module docstring; null where the hardware has no band), ``kv_usage``, ``feasible``, ``board_power_w``,
        ``joules_per_token`` and, with a price, ``usd_per_million_tokens``.

    >>> rows = serve(model="toy-llama", hardware="h100-sxm", batch=[1], isl=64, osl=16)
    >>> row = rows.row(0, named=True)
    >>> round(row["ideal_e2e_s"] * row["ideal_requests_per_s"], 12)   # Little's law, C = 1
    1.0
    """
    traffic = Traffic.of(isl=isl, osl=osl, requests=requests, chunk=chunk, block_size=block_size)
    base = base_spec(spec, keys, traffic)
    gpu_hour_prices(gpu_hour_usd, [hw.name for hw in base.hardware])
    rounds = decode_rounds(
        base,
        traffic,
        k=k,
        tree=tree,
        draft_model=draft_model,
        medusa_heads=medusa_heads,
        acceptance=acceptance,
        mtp=mtp,
    )
    prefill = prefill_steps(base, traffic, base.batch)
    out = aggregated(rounds, prefill, traffic, base)
    return cost_columns(out.sort(*INSTANCE, "batch", "speculation"), gpu_hour_usd=gpu_hour_usd)
