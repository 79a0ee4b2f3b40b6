"""Speculative decoding end to end: draft cost, verify step, acceptance, effective tokens/s and speedup.

One round of speculation drafts ``K`` tokens, verifies ``candidates`` tokens in one step
of the target (a chain: ``K + 1``, the last token the target produced and the drafts;
or a tree, :mod:`rooflax.trees`), and yields ``tokens_per_round`` tokens
(:mod:`rooflax.acceptance`). Per grid point and ``K``:

- ``round_time_s = draft_time_s + verify_time_s``, the drafter's time
  (:mod:`rooflax.drafters`: a draft model's ``K`` decode steps, Medusa heads, the
  model's own multi-token prediction modules, or 0 for an external drafter) plus the
  target's verify step at ``seq_len`` (``Q = candidates``, ``T = seq_len``, the tree
  mask's scores), in the same layout ``tp, pp, ep`` as the plain decode it is compared
  with; a draft model and Medusa heads run on one device (``tp = pp = ep = 1``), whatever
  the target's layout, prediction modules at the target's ``tp`` and ``ep``;
- ``effective_tokens_per_s = batch · tokens_per_round / round_time_s``;
- ``speedup = effective_tokens_per_s / (batch / decode_time_s)``, against plain decode of
  the target at the same batch and ``seq_len``;
- ``memory_bytes``: the target's verify step on its fullest device plus the drafter's
  weights (and a draft model's KV cache and activations), ``fits_in_memory`` when that is
  at most the device's memory.

The same columns prefixed ``achieved_`` use the predicted achieved times. ``K = 0`` is a
round of one candidate and no drafting: exactly plain decode, speedup 1.

The achieved times' error band (the hardware profile's fit, :mod:`rooflax.calibration.fit`)
comes with them: ``achieved_round_time_lo_s`` and ``_hi_s`` are the drafter's and the verify
step's band ends summed (each step's band as its summary frame gives it, a draft model's
times ``K``, Medusa heads each op at its group's band); ``achieved_effective_tokens_per_s_lo``
and ``_hi`` divide by the round's slow and fast ends; ``achieved_speedup_lo`` and ``_hi``
take a ratio's ends consistently (:func:`rooflax.answers.tables.ratio_band`: a round and
plain decode are priced on one profile, so their errors go together, as a summary's band
takes them across ops: both at their fast ends, and both at their slow ends; ``K = 0``
keeps exactly 1). A draft model's steps are priced on the same profile. All
null on a profile with no measurements (no band), as in summary frames.

Everything comes from the engine's summary sweeps (target decode, target verify at every
candidate count, the draft model's decode), joined in polars; no grid point is visited in
Python.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple, Unpack, cast

import numpy as np
import polars as pl

from rooflax.answers.tables import Table, ratio_band
from rooflax.config.acceptance import Acceptance, parse_acceptance
from rooflax.config.dtypes import tensor_bytes
from rooflax.config.models import Model, get_model
from rooflax.config.spec import SpecKeys, SweepKeys, SweepSpec
from rooflax.cost.drafters import HeadStep, MtpStep, medusa_times, medusa_weight_bytes, mtp_times
from rooflax.cost.roofline import Roof
from rooflax.cost.trees import check_tree
from rooflax.data.frames import check_in_memory, resolve_spec, row_bytes, sweep
from rooflax.errors import SpecError, boolean, positive_int
from rooflax.names import CELL, LAYOUT

__all__ = ["Choices", "best_k", "check_map_spec", "choices", "speculate", "speculation_table", "unfit_cells"]

#: Draft lengths swept when neither ``k`` nor ``tree`` is given (fewer when the heads or their
#: acceptance price fewer).
DEFAULT_K = tuple(range(9))
#: The acceptance without Medusa heads when none is given.
DEFAULT_ACCEPTANCE = {"kind": "geometric", "alpha": 0.8}
#: The acceptance of multi-token prediction when none is given (:data:`rooflax.config.acceptance.TABLES`).
MTP_ACCEPTANCE = "deepseek-v3-mtp"
#: The model each Medusa acceptance preset's heads were trained on: Vicuna v1.3 7B, 13B and
#: 33B are fine-tunes of LLaMA of the same size (FasterDecoding/Medusa).
MEDUSA_BASES = {"medusa-vicuna-7b": "llama-7b", "medusa-vicuna-13b": "llama-13b", "medusa-vicuna-33b": "llama-33b"}
_TIMES = ("time_s", "achieved_time_s", "achieved_time_lo_s", "achieved_time_hi_s")
#: Spec keys speculate sets itself (per round), so a keyword giving them would be ignored.
_NOT_READ = ("phases", "spec_k")


def _draft_lengths(k: object) -> tuple[int, ...]:
    values = [k] if isinstance(k, int) else k
    if not isinstance(values, list | tuple | range) or not values:
        raise SpecError(f"k: expected draft lengths, a non-empty list of integers ≥ 0, got {k!r}")
    out = sorted(
        {0 if v == 0 and not isinstance(v, bool) else positive_int(f"k[{i}]", v) for i, v in enumerate(values)}
    )
    if len(out) != len(values):
        raise SpecError(f"k: a draft length is repeated in {list(values)!r}")
    return tuple(out)


def _rounds(k: object, tree: object, acceptance: Acceptance, heads: int | None) -> pl.DataFrame:
    """One row per round shape: ``candidates``, ``draft_k``, the tree's ``depths`` (None for
    chains) and its ``tree`` label (``chain``, ``top_k 4,2``, ``sparse 64``, ``depths #i``)."""
    schema = {"candidates": pl.Int64(), "draft_k": pl.Int64(), "depths": pl.List(pl.Int64), "tree": pl.String()}
    if tree is None:
        ks = _draft_lengths(k)
        acceptance.check_round(ks[-1], ks[-1] + 1, "k")
        return pl.DataFrame(
            {
                "candidates": [v + 1 for v in ks],
                "draft_k": list(ks),
                "depths": [None] * len(ks),
                "tree": ["chain"] * len(ks),
            },
            schema=schema,
        )
    if not isinstance(tree, list | tuple) or not tree:
        raise SpecError(
            f"tree: expected a non-empty list of trees ({{depths = [...]}}, {{top_k = [...]}} or "
            f"{{sparse = Q}}), got {tree!r}"
        )
    rows: list[tuple[int, int, list[int], str]] = []
    seen: dict[tuple[int, ...], int] = {}
    for i, entry in enumerate(tree):
        if isinstance(entry, dict) and "sparse" in entry:
            if len(entry) != 1:
                raise SpecError(f"tree[{i}]: give exactly one of depths, top_k or sparse")
            depths = acceptance.sparse_tree(entry["sparse"], None if heads is None else heads + 1, f"tree[{i}].sparse")
            label = f"sparse {len(depths)}"
        else:
            depths = check_tree(entry, f"tree[{i}]")
            label = (
                f"top_k {','.join(map(str, entry['top_k']))}"
                if isinstance(entry, dict) and "top_k" in entry
                else f"depths #{i}"
            )
            acceptance.check_round(max(depths) - 1, len(depths), f"tree[{i}]")
        if depths in seen:
            raise SpecError(
                f"tree[{i}]: the same tree as tree[{seen[depths]}] (candidate depths "
                f"{list(depths)[:8]}{'...' if len(depths) > 8 else ''}); give each tree once"
            )
        seen[depths] = i
        rows.append((len(depths), max(depths) - 1, list(depths), label))
    rows.sort(key=lambda row: row[:2])
    return pl.DataFrame(rows, schema=schema, orient="row")


def _draft_model(draft_model: object, spec: SweepSpec) -> Model:
    given = str(draft_model) if isinstance(draft_model, Path) else draft_model  # get_model reads a path as text
    model = get_model(given) if isinstance(given, str | Model) else None
    if model is None:
        raise SpecError(f"draft_model: expected a model preset name or file, got {draft_model!r}")
    for target in spec.models:
        if target.vocab != model.vocab:
            raise SpecError(
                f"draft_model: {model.name!r} has a vocabulary of {model.vocab} tokens, the target "
                f"{target.name!r} has {target.vocab}; a draft model must share the target's vocabulary"
            )
    return model


def _select(frame: pl.DataFrame, phase: str, prefix: str, keys: tuple[str, ...]) -> pl.DataFrame:
    rows = frame.filter(pl.col("phase") == phase)
    return rows.select(*keys, *(pl.col(t).alias(f"{prefix}{t}") for t in (*_TIMES, "memory_bytes")))


def _medusa(rows: pl.DataFrame, spec: SweepSpec, heads: int, shared: bool) -> pl.DataFrame:
    """Medusa draft times for every (model, hardware, dtype, batch, hidden, draft_k) of ``rows``."""
    need = rows.select("model", "hardware", "dtype", "batch", "hidden", "draft_k").unique()
    most = cast(int, need["draft_k"].max())  # an Int64 column
    if need.height and most > heads:
        raise SpecError(
            f"medusa_heads: a round drafts {most} tokens but the model has {heads} "
            "heads; draft at most one token per head (k ≤ medusa_heads, tree depth ≤ heads + 1)"
        )
    models = {m.name: m for m in spec.models}
    hardware = {h.name: h for h in spec.hardware}
    dtypes = {d.name: d for d in spec.dtypes}
    parts = []
    for (model, hw, dt), part in need.group_by("model", "hardware", "dtype"):
        roof, dtype = Roof.of(hardware[hw], dtypes[dt]), dtypes[dt]
        step = HeadStep(
            batch=part["batch"].to_numpy().astype(np.float64),
            hidden=part["hidden"].to_numpy().astype(np.float64),
            vocab=float(models[model].vocab),
            heads=part["draft_k"].to_numpy().astype(np.float64),
            w=dtype.weight.storage,
            a=dtype.act.storage,
            shared_lm_head=shared,
        )
        ideal, achieved, low, high = medusa_times(step, roof)
        weights = medusa_weight_bytes(heads, step.hidden, step.vocab, step.w, shared)
        band = (pl.Series(values, dtype=pl.Float64).fill_nan(None) for values in (low, high))
        parts.append(
            part.with_columns(
                draft_time_s=ideal,
                draft_achieved_time_s=achieved,
                draft_achieved_time_lo_s=next(band),
                draft_achieved_time_hi_s=next(band),
                draft_memory_bytes=weights,
            )
        )
    return pl.concat(parts)


def _mtp(rows: pl.DataFrame, spec: SweepSpec) -> pl.DataFrame:
    """``rows`` with the draft of ``draft_k`` multi-token prediction modules: each a decode step of
    :meth:`rooflax.Model.mtp_model` at the target's batch, ``tp`` and ``ep``, plus its own ops
    (:func:`rooflax.cost.drafters.mtp_times`); its memory the modules' weights (not the shared
    vocabulary) and KV caches."""
    models = {m.name: m for m in spec.models}
    drafters = {m.mtp_model().name: name for name, m in models.items()}
    frame = sweep(
        spec.with_keys(
            model=[m.mtp_model() for m in models.values()], phases=["decode"], spec_k=None, tree=None, pp=None
        ),
        summary=True,
    ).with_columns(target=pl.col("model").cast(pl.String).replace_strict(drafters))
    hardware, dtypes = {h.name: h for h in spec.hardware}, {d.name: d for d in spec.dtypes}
    parts = []
    for (target, hw, dt), part in frame.group_by("target", "hardware", "dtype"):
        model, dtype = models[cast(str, target)], dtypes[cast(str, dt)]
        batch = np.ceil(part["batch"].to_numpy() / part["ep"].to_numpy())  # a device's sequences
        ideal, achieved, low, high = mtp_times(
            MtpStep(batch=batch, hidden=float(model.hidden), w=dtype.weight.storage, a=dtype.act.storage),
            Roof.of(hardware[cast(str, hw)], dtype),
        )
        w, h = dtype.weight.storage, model.hidden
        vocab = 2 * tensor_bytes(w, -(-model.vocab // part["tp"].to_numpy()), h) + tensor_bytes(w, 1, h)
        own = tensor_bytes(w, h, 2 * h) + 3 * tensor_bytes(w, 1, h)
        parts.append(
            part.select(
                "target",
                "hardware",
                "dtype",
                "batch",
                "seq_len",
                "tp",
                "ep",
                step_time_s=pl.col("time_s") + ideal,
                step_achieved_time_s=pl.col("achieved_time_s") + achieved,
                step_achieved_time_lo_s=pl.col("achieved_time_lo_s") + pl.Series(low).fill_nan(None),
                step_achieved_time_hi_s=pl.col("achieved_time_hi_s") + pl.Series(high).fill_nan(None),
                step_memory_bytes=model.mtp_layers * (pl.col("weight_bytes") - vocab + own + pl.col("kv_cache_bytes")),
            )
        )
    keys = ("hardware", "dtype", "batch", "seq_len", "tp", "ep")
    steps = pl.concat(parts).with_columns(pl.col(key).cast(rows.schema[key]) for key in ("hardware", "dtype"))
    return (
        rows.with_columns(target=pl.col("model").cast(pl.String))
        .join(steps, on=["target", *keys])
        .with_columns(
            draft_time_s=pl.col("draft_k") * pl.col("step_time_s"),
            draft_achieved_time_s=pl.col("draft_k") * pl.col("step_achieved_time_s"),
            draft_achieved_time_lo_s=pl.col("draft_k") * pl.col("step_achieved_time_lo_s"),
            draft_achieved_time_hi_s=pl.col("draft_k") * pl.col("step_achieved_time_hi_s"),
            draft_memory_bytes=pl.col("step_memory_bytes"),
        )
        .drop("target", "^step_.*$")
    )


class Choices(NamedTuple):
    """What :func:`speculate` runs for its arguments: the target's sweep, the draft lengths
    (None: the trees given), the acceptance, and one note per default it chose."""

    spec: SweepSpec
    k: tuple[int, ...] | None
    acceptance: Acceptance
    notes: tuple[str, ...]


def _span(values: tuple[int, ...]) -> str:
    return f"{values[0]}..{values[-1]} ({len(values)} values)" if len(values) > 1 else str(values[0])


def _medusa_preset(models: tuple[Model, ...]) -> tuple[str, str]:
    """The Medusa acceptance preset for the target models, and why: the heads trained on that
    model, else on the base model nearest in parameter count."""
    picks = {}
    for model in models:
        exact = [name for name, base in MEDUSA_BASES.items() if base == model.name]
        if exact:
            picks[model.name] = (exact[0], f"a fine-tune of {model.name}")
        else:
            nearest = min(MEDUSA_BASES, key=lambda name: abs(get_model(MEDUSA_BASES[name]).params - model.params))
            picks[model.name] = (
                nearest,
                f"a fine-tune of {MEDUSA_BASES[nearest]}, the nearest in size to "
                f"{model.name} among models with published heads",
            )
    presets = sorted({preset for preset, _ in picks.values()})
    if len(presets) > 1:
        raise SpecError(
            f"acceptance: the sweep's models {', '.join(picks)} take different Medusa presets "
            f"({', '.join(presets)}); give acceptance (CLI --acceptance) or sweep one model"
        )
    return presets[0], next(iter(picks.values()))[1]


def choices(
    spec: SweepSpec | str | Path | None = None,
    *,
    k: object = None,
    tree: object = None,
    medusa_heads: int | None = None,
    acceptance: object = None,
    mtp: bool = False,
    **keys: Unpack[SweepKeys],
) -> Choices:
    """The sweep, draft lengths and acceptance :func:`speculate` uses, with a note on each default.

    Without a spec, the ``model``, ``hardware``, ``dtype``, ``batch`` and ``seq_len`` not
    given are the reference sweep's (Llama-13B on the A40 in fp16, batch 1..64 × seq_len
    128..8192). Without an acceptance, Medusa heads get the Medusa preset of the target model
    (:data:`MEDUSA_BASES`; the nearest in size for other models), other drafters the
    geometric ``α = 0.8``. Without ``k`` or ``tree``, chains of ``0..8`` drafts, at most one
    per head and no more than a Medusa acceptance prices. With ``mtp`` (the models' multi-token
    prediction modules draft), the acceptance ``deepseek-v3-mtp`` and draft lengths ``0`` to the
    fewest modules a model has.

    >>> chosen = choices(model="llama-33b", batch=[1], seq_len=[1024], medusa_heads=5)
    >>> chosen.k, chosen.acceptance.heads
    ((0, 1, 2, 3, 4, 5), 'vicuna-33b')
    """
    notes = []
    base = resolve_spec(spec, SpecKeys(**keys), reference_axes=True)
    if spec is None:
        for key, attribute in (
            ("model", "models"),
            ("hardware", "hardware"),
            ("dtype", "dtypes"),
            ("batch", "batch"),
            ("seq_len", "seq_len"),
        ):
            if key not in keys:
                values = getattr(base, attribute)
                shown = _span(values) if key in ("batch", "seq_len") else ", ".join(v.name for v in values)
                notes.append(f"{key} {shown}: the reference sweep's (no spec or {key} given)")
    heads = None if medusa_heads is None else positive_int("medusa_heads", medusa_heads)
    for model in base.models if mtp else ():
        model.mtp_model()  # refuses a model without prediction modules
    if acceptance is None and heads is not None:
        preset, why = _medusa_preset(base.models)
        model_acceptance = parse_acceptance(preset)
        notes.append(
            f"acceptance {preset}: the published Medusa-1 heads of Vicuna {preset.rsplit('-', 1)[1].upper()}, "
            f"{why} (the default for Medusa heads given no acceptance)"
        )
    elif acceptance is None and mtp:
        model_acceptance = parse_acceptance(MTP_ACCEPTANCE)
        notes.append(
            f"acceptance {MTP_ACCEPTANCE}: DeepSeek-V3's module, its second token accepted 85-90% of the time "
            "(the default for multi-token prediction given no acceptance)"
        )
    elif acceptance is None:
        model_acceptance = parse_acceptance(DEFAULT_ACCEPTANCE)
        notes.append(
            f"acceptance geometric, alpha {DEFAULT_ACCEPTANCE['alpha']}: each draft accepted with "
            f"probability {DEFAULT_ACCEPTANCE['alpha']}, the default given no acceptance"
        )
    else:
        model_acceptance = parse_acceptance(acceptance)
    if k is None and tree is None:
        limit, why = DEFAULT_K[-1], ""
        if heads is not None and heads < limit:
            limit, why = heads, f", capped at one draft per head ({heads} heads)"
        modules = min(m.mtp_layers for m in base.models) if mtp else limit
        if modules < limit:
            limit, why = modules, f", capped at one draft per prediction module ({modules})"
        priced = len(model_acceptance.accuracy) if model_acceptance.kind == "medusa" else limit
        if priced < limit:
            limit, why = priced, f", capped at the {priced} heads the acceptance prices"
        k = tuple(range(limit + 1))
        notes.append(f"k 0..{limit}: the default draft lengths 0..{DEFAULT_K[-1]}{why}")
    return Choices(base, None if k is None else _draft_lengths(k), model_acceptance, tuple(notes))


def speculate(
    spec: SweepSpec | str | Path | None = None,
    *,
    k: object = None,
    tree: object = None,
    draft_model: str | Path | Model | None = None,
    medusa_heads: int | None = None,
    shared_lm_head: bool = False,
    acceptance: object = None,
    mtp: bool = False,
    **keys: Unpack[SweepKeys],
) -> pl.DataFrame:
    """Expected tokens per round, round time, effective tokens/s and speedup of speculative decoding.

    Args:
        spec: the target's sweep (a :class:`SweepSpec`, a TOML path, or None: the
            reference sweep's keys where ``keys`` give none, :func:`choices`); its
            models, accelerators, dtypes and ``batch``, ``seq_len``, ``hidden`` axes are used,
            its phases and ``spec_k`` are not.
        k: draft lengths ``K`` (integers ≥ 0), each verified as a chain of ``K + 1``
            candidates; default ``0..8``, capped at one draft per Medusa head and at the heads
            a Medusa acceptance prices (:func:`choices` says what it chose).
        tree: instead of ``k``, trees of candidates (``{depths = [...]}`` or
            ``{top_k = [...]}``, :mod:`rooflax.trees`; or ``{sparse = Q}``, the likeliest tree
            of ``Q`` candidates under a ``medusa`` acceptance, no deeper than the heads); trees
            of the same size are told apart by the ``tree`` column.
        draft_model: a model preset or file that drafts ``K`` tokens by decoding; it must
            share the target's vocabulary.
        medusa_heads: instead, the number of Medusa heads (one forward per round, using
            ``K`` heads); neither: an external drafter, free.
        shared_lm_head: Medusa heads reuse the base model's LM head (its weights read once).
        mtp: instead, the target's own multi-token prediction modules draft (DeepSeek-V3's
            ``num_nextn_predict_layers``): module ``k`` drafts the ``k``-th token, so ``K`` is at most
            the modules a model has; each runs at the target's batch, ``tp`` and ``ep``
            (:mod:`rooflax.drafters`); default acceptance ``deepseek-v3-mtp``.
        acceptance: ``{"kind": "geometric", "alpha": 0.8}`` (the default without Medusa
            heads), a table, or Medusa head accuracies (``"medusa-vicuna-7b"`` or
            ``{"kind": "medusa", ...}``; :mod:`rooflax.acceptance`); with Medusa heads the
            default is the preset of the target model (:data:`MEDUSA_BASES`).
        **keys: the spec's TOML keys (``model``, ``batch``, ...), replacing the spec's.

    Returns:
        One row per grid cell (:data:`rooflax.names.CELL`) and round shape: ``draft_k``, ``candidates``,
        ``tree`` (``chain``, or which tree: ``top_k 4,2``, ``sparse 64``, ``depths #i`` for
        the ``i``-th given), ``tokens_per_round``, then ``decode_time_s``, ``draft_time_s``, ``verify_time_s``,
        ``round_time_s``, ``effective_tokens_per_s``, ``speedup``, and each of those six
        again below the roof (``achieved_…``), the band of the last three
        (``achieved_round_time_lo_s``, ``_hi_s``, ``achieved_effective_tokens_per_s_lo``,
        ``_hi``, ``achieved_speedup_lo``, ``_hi``; module docstring), ``memory_bytes``,
        ``capacity_bytes`` and ``fits_in_memory``. Cells where ``seq_len < candidates`` have
        no row.

    >>> df = speculate(batch=[1], seq_len=[1024], k=[0, 4], acceptance={"kind": "geometric", "alpha": 0.8})
    >>> df.select("draft_k", "tokens_per_round", "speedup").rows()[0]
    (0, 1.0, 1.0)
    """
    shared_lm_head = boolean("shared_lm_head", shared_lm_head)
    for key in _NOT_READ:
        if key in keys:
            raise SpecError(
                f"{key}: speculate prices plain decode and each round's verify step itself, so it reads "
                f"no {key}; leave {key} out (give draft lengths as k, or trees as tree)"
            )
    mtp = boolean("mtp", mtp)
    if draft_model is not None and medusa_heads is not None:
        raise SpecError("medusa_heads: give a draft_model or medusa_heads, not both")
    if mtp and (draft_model is not None or medusa_heads is not None):
        raise SpecError("mtp: the model's prediction modules draft; give mtp, a draft_model or medusa_heads, one")
    if shared_lm_head and medusa_heads is None:
        raise SpecError("shared_lm_head: given without medusa_heads; it applies to Medusa heads only")
    if tree is not None and k is not None:
        raise SpecError("tree: give draft lengths k (chains) or trees, not both")
    base, k, model_acceptance, _ = choices(
        spec, k=k, tree=tree, medusa_heads=medusa_heads, acceptance=acceptance, mtp=mtp, **keys
    )
    heads = None if medusa_heads is None else int(medusa_heads)
    rounds = _rounds(k, tree, model_acceptance, heads)
    most = cast(int, rounds["draft_k"].max())
    for model in base.models if mtp else ():
        if most > model.mtp_layers:
            modules = model.mtp_layers
            raise SpecError(
                f"{'k' if tree is None else 'tree'}: a round drafts {most} tokens but {model.name} has {modules} "
                f"prediction module{'s' if modules > 1 else ''}; draft at most one token per module (k ≤ {modules})"
            )
    largest = cast(int, rounds["candidates"].max())  # an Int64 column of at least one round
    if largest > base.seq_len[-1]:
        raise SpecError(
            f"{'k' if tree is None else 'tree'}: rounds of up to {largest} candidates need seq_len ≥ "
            f"{largest}, the largest seq_len is {base.seq_len[-1]}"
        )
    cells = base.with_keys(phases=["decode"], spec_k=None, tree=None).configurations()
    check_in_memory(
        "speculate",
        cells * rounds.height,
        row_bytes(True) * 3,  # a verify, a decode and an output row
        instead="speculate joins every cell's rounds in memory: give a smaller grid (fewer batch, seq_len "
        "or hidden values) or fewer draft lengths",
    )
    # a sweep verifies one tree per candidate count: trees of the same size go to further sweeps
    rounds = rounds.with_columns(layer=pl.int_range(pl.len()).over("candidates"))
    decode: list[pl.DataFrame] = []  # the first sweep's: it alone prices decode too
    verify = []
    for layer in range(cast(int, rounds["layer"].max()) + 1):
        part = rounds.filter(layer=layer)
        trees = "chain" if tree is None else [{"depths": d} for d in part["depths"].to_list()]
        frame = sweep(
            base.with_keys(
                phases=["verify"] if layer else ["decode", "verify"], spec_k=part["candidates"].to_list(), tree=trees
            ),
            summary=True,
        )
        if not decode:
            decode.append(_select(frame, "decode", "decode_", CELL))
        verify.append(
            _select(frame.rename({"spec_k": "candidates"}), "verify", "verify_", (*CELL, "candidates")).join(
                part.select("candidates", "draft_k", "tree"), on="candidates"
            )
        )
    out = pl.concat(verify).join(decode[0], on=CELL)
    if draft_model is not None:
        drafter = _draft_model(draft_model, base)
        draft = sweep(
            base.with_keys(
                model=[drafter], phases=["decode"], spec_k=None, tree=None, hidden=None, tp=None, pp=None, ep=None
            ),
            summary=True,
        )
        cell = ("hardware", "dtype", "batch", "seq_len")
        out = out.join(_select(draft, "decode", "step_", cell), on=cell).with_columns(
            draft_time_s=pl.col("draft_k") * pl.col("step_time_s"),
            draft_achieved_time_s=pl.col("draft_k") * pl.col("step_achieved_time_s"),
            draft_achieved_time_lo_s=pl.col("draft_k") * pl.col("step_achieved_time_lo_s"),
            draft_achieved_time_hi_s=pl.col("draft_k") * pl.col("step_achieved_time_hi_s"),
            draft_memory_bytes=pl.col("step_memory_bytes"),
        )
    elif mtp:
        out = _mtp(out, base)
    elif heads is not None:
        medusa = _medusa(out, base, heads, shared_lm_head)
        out = out.join(medusa, on=["model", "hardware", "dtype", "batch", "hidden", "draft_k"])
    else:
        out = out.with_columns(
            draft_time_s=pl.lit(0.0),
            draft_achieved_time_s=pl.lit(0.0),
            draft_achieved_time_lo_s=pl.lit(0.0),
            draft_achieved_time_hi_s=pl.lit(0.0),
            draft_memory_bytes=pl.lit(0.0),
        )
    tokens = model_acceptance.tokens_per_round(out["draft_k"].to_numpy(), out["candidates"].to_numpy())
    out = out.with_columns(tokens_per_round=pl.Series(tokens, dtype=pl.Float64))
    columns = []
    for prefix, time in (("", "time_s"), ("achieved_", "achieved_time_s")):
        round_time = pl.col(f"draft_{time}") + pl.col(f"verify_{time}")
        columns += [
            pl.col(f"decode_{time}").alias(f"{prefix}decode_time_s"),
            pl.col(f"draft_{time}").alias(f"{prefix}draft_time_s"),
            pl.col(f"verify_{time}").alias(f"{prefix}verify_time_s"),
            round_time.alias(f"{prefix}round_time_s"),
            (pl.col("batch") * pl.col("tokens_per_round") / round_time).alias(f"{prefix}effective_tokens_per_s"),
            (pl.col("tokens_per_round") * pl.col(f"decode_{time}") / round_time).alias(f"{prefix}speedup"),
        ]
    low, high = (
        pl.col(f"draft_achieved_time_{end}_s") + pl.col(f"verify_achieved_time_{end}_s") for end in ("lo", "hi")
    )
    decode_high = pl.col("tokens_per_round") * pl.col("decode_achieved_time_hi_s")
    columns += [
        low.alias("achieved_round_time_lo_s"),
        high.alias("achieved_round_time_hi_s"),
        (pl.col("batch") * pl.col("tokens_per_round") / high).alias("achieved_effective_tokens_per_s_lo"),
        (pl.col("batch") * pl.col("tokens_per_round") / low).alias("achieved_effective_tokens_per_s_hi"),
        *ratio_band(
            (pl.col("tokens_per_round") * pl.col("decode_achieved_time_lo_s"), decode_high),
            (low, high),
            "achieved_speedup",
            one_profile=True,
        ),
    ]
    capacity = pl.DataFrame(
        {"hardware": [h.name for h in base.hardware], "capacity": [float(h.memory_bytes) for h in base.hardware]},
        schema={"hardware": out.schema["hardware"], "capacity": pl.Float64},
    )
    memory = pl.col("verify_memory_bytes") + pl.col("draft_memory_bytes")
    columns += [
        memory.alias("memory_bytes"),
        pl.col("capacity").alias("capacity_bytes"),
        (memory <= pl.col("capacity")).alias("fits_in_memory"),
    ]
    out = out.join(capacity, on="hardware")
    return out.select(*CELL, "draft_k", "candidates", "tree", "tokens_per_round", *columns).sort(
        "model", "hardware", "dtype", "hidden", "tp", "pp", "ep", "batch", "seq_len", "candidates", "tree"
    )


def best_k(
    frame: pl.DataFrame | SweepSpec | str | Path | None = None,
    *,
    achieved: bool = False,
    fits: bool = False,
    **options: Any,
) -> pl.DataFrame:
    """For each grid cell, the round shape with the highest effective tokens/s.

    Args:
        frame: a :func:`speculate` frame, or the ``spec`` argument of :func:`speculate`.
        achieved: rank by the predicted achieved ``achieved_effective_tokens_per_s``
            instead of the ideal one.
        fits: rank only rounds whose target and drafter fit in one device's memory
            (``fits_in_memory``); a cell where none fits has no row (:func:`unfit_cells`
            says which and why), and where none fits in any cell, the error says so.
        **options: :func:`speculate`'s keywords, when ``frame`` is not a frame (it checks them).

    Returns:
        One row per cell: the winning row of the :func:`speculate` frame (ties go to
        fewer candidates).
    """
    achieved, fits = boolean("achieved", achieved), boolean("fits", fits)
    if not isinstance(frame, pl.DataFrame):
        frame = speculate(frame, **options)
    elif options:
        raise SpecError(f"best_k: {', '.join(options)} apply only when no speculate frame is given")
    key = "achieved_effective_tokens_per_s" if achieved else "effective_tokens_per_s"
    if key not in frame.columns:
        raise SpecError(f"best_k: expected a frame of rooflax.speculate (with {key!r}), got columns {frame.columns}")
    if fits:
        unfit = unfit_cells(frame)
        if frame.height and unfit.height == frame.select(CELL).n_unique():
            least = unfit.sort("memory_bytes").row(0, named=True)
            raise SpecError(
                f"fits: no round fits in one device's memory in any of the {unfit.height} cells; the "
                f"smallest needs {least['memory_bytes'] / 1e9:.1f} GB ({_where(least)}) where "
                f"{least['hardware']} has {least['capacity_bytes'] / 1e9:g} GB: use a smaller batch or "
                "seq_len, more memory, or leave out fits to rank them anyway"
            )
        frame = frame.filter("fits_in_memory")
    return (
        frame.sort([*CELL, key, "candidates", "tree"], descending=[False] * len(CELL) + [True, False, False])
        .group_by(list(CELL), maintain_order=True)
        .first()
    )


def _where(row: dict) -> str:
    return f"batch {row['batch']}, seq_len {row['seq_len']}, draft_k {row['draft_k']}"


def unfit_cells(frame: pl.DataFrame) -> pl.DataFrame:
    """The cells of a :func:`speculate` frame where no round fits in one device's memory
    (those :func:`best_k` with ``fits=True`` gives no row), each with its smallest round.

    Args:
        frame: a frame of :func:`speculate` (every round of every cell).

    Returns:
        :data:`rooflax.names.CELL`, ``draft_k``, ``memory_bytes`` and ``capacity_bytes`` of the cell's
        round of least memory, and that as a ``reason`` in words.
    """
    unfit = frame.group_by(CELL).agg(pl.col("fits_in_memory").any().alias("any")).filter(~pl.col("any")).select(CELL)
    least = (
        frame.join(unfit, on=CELL, how="semi")
        .sort("memory_bytes")
        .group_by(CELL, maintain_order=True)
        .first()
        .sort(CELL)
        .select(*CELL, "draft_k", "memory_bytes", "capacity_bytes")
    )
    return least.with_columns(
        reason=pl.format(
            "the smallest round needs {} GB, {} has {} GB",
            (pl.col("memory_bytes") / 1e9).round(1),
            pl.col("hardware"),
            (pl.col("capacity_bytes") / 1e9).round(1),
        )
    )


#: What one speculation map draws a single value of, with where the CLI sets it.
_MAP_KEYS = (
    ("model", "models", "--model"),
    ("hardware", "hardware", "--hardware"),
    ("dtype", "dtypes", "--dtype"),
    ("hidden", "hidden", "--hidden"),
    ("tp", "tp", "the spec's tp"),
    ("pp", "pp", "the spec's pp"),
    ("ep", "ep", "the spec's ep"),
)


def check_map_spec(spec: SweepSpec, field: str = "plot") -> None:
    """Refuse a sweep whose :func:`best_k` frame one speculation map cannot draw, before any work.

    The map (:func:`rooflax.plot.speculation_map`) is one batch × seq_len grid: it needs a
    single model, accelerator, dtype, width and layout.
    """
    for column, attribute, where in _MAP_KEYS:
        values = getattr(spec, attribute)
        if values is not None and len(values) > 1:
            names = [getattr(v, "name", v) for v in values]
            raise SpecError(
                f"{field}: the speculation map draws one {column}, the sweep has {len(names)} "
                f"({', '.join(map(str, names))}); give one with {where}"
            )


def _banded(frame: pl.DataFrame, column: str) -> bool:
    """Whether ``frame`` has the band of ``column`` (``column_lo``, ``column_hi``) on every row."""
    ends = [f"{column}_lo", f"{column}_hi"]
    return set(ends) <= set(frame.columns) and frame.select(pl.sum_horizontal(pl.col(ends).null_count())).item() == 0


def _band(column: str) -> pl.Expr:
    """``column``'s band as text, ``low–high`` (three decimals)."""
    return pl.format("{}–{}", *(pl.col(f"{column}_{end}").round(3) for end in ("lo", "hi")))


def speculation_table(frame: pl.DataFrame) -> str:
    """A speculate or best-k frame as a plain-text table (the CLI's output).

    It shows ``model``, ``hardware``, ``batch`` and ``seq_len``, and each other cell column
    (``dtype``, ``hidden``, ``tp``, ``pp``, ``ep``) that takes more than one value, so that
    no two rows of different cells look alike; the achieved speedup's band (``achieved band``)
    where the frame has one.
    """
    varying = [c for c in ("dtype", "hidden", *LAYOUT) if frame.get_column(c).n_unique() > 1]
    shown = frame.select(
        "model",
        "hardware",
        *varying,
        "batch",
        "seq_len",
        "draft_k",
        "candidates",
        *(["tree"] if (frame.get_column("tree") != "chain").any() else []),
        pl.col("tokens_per_round").round(4),
        (pl.col("round_time_s") * 1e3).round(3).alias("round_ms"),
        pl.col("effective_tokens_per_s").round(1).alias("tokens_per_s"),
        pl.col("speedup").round(3),
        (pl.col("achieved_round_time_s") * 1e3).round(3).alias("achieved_round_ms"),
        pl.col("achieved_speedup").round(3),
        *([_band("achieved_speedup").alias("achieved_band")] if _banded(frame, "achieved_speedup") else []),
        pl.when("fits_in_memory").then(pl.lit("yes")).otherwise(pl.lit("no")).alias("fits"),
    )
    return Table.of(shown).markdown()
