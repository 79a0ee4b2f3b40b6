"""What a sweep found, in a few tables: :func:`describe`.

For a dataset (or a frame) the :class:`Report` says:

- **rows** and what the sweep covered;
- **bound shares**: per phase and op group, the share of rows that are memory-,
  compute- and network-bound (collectives of a parallel layout), and of rows whose
  ``bound`` is missing or not one of those (long frames);
- **crossovers**: per model × hardware × dtype × parallel layout × phase step × op group,
  the smallest batch at which the group's ops turn compute-bound (:func:`rooflax.crossover`
  along ``batch`` at the sweep's median ``seq_len`` and ``hidden``; a range when the
  group's ops differ; a column per layout; the collectives, group ``comm``, are
  network-bound and named as such);
- **tokens/s**: per phase, the best configuration (among those that fit in memory, where
  any do) and the worst, with their ideal and achieved tokens/s;
- **memory**: per model × hardware × dtype × phase, how many configurations fit, and the
  smallest footprint that does not (where memory stops fitting);
- **layouts** (sweeps of several parallel layouts ``tp, pp, ep``): per phase and layout,
  how many configurations fit and the best one that does, and per phase the fewest devices
  that fit, the layout of most tokens/s and the one of most tokens/s per device.

Datasets are read lazily: bound shares are one streamed aggregation, and tokens/s and
memory are reduced part by part (summary datasets) or chunk by chunk from a summary sweep
of the dataset's own spec (long datasets: it is cheap, and memory stays flat), so a
10^8-row dataset is never loaded whole.
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from rooflax.answers.crossover import crossover
from rooflax.answers.tables import Table, number
from rooflax.config.hardware import HARDWARE
from rooflax.config.spec import SpecKeys, SweepSpec
from rooflax.data.frames import chunk_frame, resolve_spec
from rooflax.engine import vectorized as engine
from rooflax.errors import SpecError
from rooflax.names import AXES, BOUNDS, CELL, ENTITIES, GROUPS, LAYOUT

__all__ = ["Report", "describe", "spec_line"]

_CONFIG = (*CELL, "spec_k")
_TOTALS = ("phase", *_CONFIG, "tokens_per_s", "achieved_tokens_per_s", "memory_bytes", "fits_in_memory")
#: The summary columns of the achieved time's error band (absent from datasets written before it).
_BAND = ("achieved_time_s", "achieved_time_lo_s", "achieved_time_hi_s")
_MEMORY_KEYS = (*ENTITIES, *LAYOUT, "phase")


@dataclass(frozen=True, slots=True, kw_only=True)
class Report:
    """What a sweep found (module docstring); ``str(report)`` is plain text.

    Attributes:
        source: the dataset's path, or ``"frame"``.
        kind: ``ops`` (long frame) or ``summary``.
        rows: rows of the dataset or frame.
        spec: the sweep in one line (empty when unknown).
        bounds: ``phase``, ``group``, ``rows``, ``memory_share``, ``compute_share``,
            ``network_share`` and ``unknown_share`` (``bound`` null or not a known bound)
            (None for summary frames, which have no per-op bound).
        crossovers: ``model``, ``hardware``, ``dtype``, ``tp``, ``pp``, ``ep`` (only for
            sweeps of parallel layouts), ``phase``, ``spec_k``, ``group``, ``seq_len``,
            ``hidden``, ``first`` and ``last`` (smallest and
            largest crossover of the group's ops; null: never up to 2**40), ``never``
            (ops of the group that never cross), ``ridge``, ``batch_max`` (the sweep's
            largest batch) (None without a spec).
        tokens: ``phase``, ``rank`` (``best``, ``worst``), the configuration,
            ``tokens_per_s``, ``achieved_tokens_per_s``, ``memory_bytes``,
            ``fits_in_memory`` (None without model totals).
        memory: ``model``, ``hardware``, ``dtype``, ``phase``, ``configurations``,
            ``fit``, and the smallest footprint that does not fit: ``misfit_bytes`` with
            its ``batch``, ``seq_len``, ``hidden``, ``spec_k`` (null when all fit), and
            ``capacity_bytes`` (None without model totals).
        notes: what was left out, and why.
        layouts: ``phase``, ``tp``, ``pp``, ``ep``, ``devices``, ``configurations``,
            ``fit``, and the fitting configuration of most tokens/s: ``batch``,
            ``seq_len``, ``tokens_per_s``, ``tokens_per_s_per_device``, ``memory_bytes``
            (null where none fits) (None unless the sweep has several layouts).
    """

    source: str
    kind: str
    rows: int
    spec: str
    bounds: pl.DataFrame | None
    crossovers: pl.DataFrame | None
    tokens: pl.DataFrame | None
    memory: pl.DataFrame | None
    notes: tuple[str, ...] = ()
    layouts: pl.DataFrame | None = None

    def tables(self) -> list[Table | str]:
        """The report as lines and :class:`rooflax.answers.tables.Table` values, in reading order."""
        what = "long frame, one row per op" if self.kind == "ops" else "summary frame, one row per configuration"
        items: list[Table | str] = [f"{self.source}: {self.rows:,} rows ({what})"]
        if self.spec:
            items.append(f"sweep: {self.spec}")
        for part in (self._bounds(), self._crossovers(), self._tokens(), self._memory(), self._layouts()):
            if part is not None:
                items += ["", part]
        items += self._best_layouts()
        items += [f"note: {note}" for note in self.notes]
        return items

    def text(self) -> str:
        """The report as plain text."""
        return "\n".join(item.text() if isinstance(item, Table) else item for item in self.tables())

    def __str__(self) -> str:
        return self.text()

    def _bounds(self) -> Table | None:
        if self.bounds is None:
            return None
        shown = ["memory", "compute", *(k for k in ("network", "unknown") if (self.bounds[f"{k}_share"] > 0).any())]
        rows = tuple(
            (r["phase"], r["group"], f"{r['rows']:,}", *(f"{r[f'{k}_share']:.0%}" for k in shown))
            for r in self.bounds.iter_rows(named=True)
        )
        return Table(
            title="share of rows by bound, per phase and op group"
            + ("; unknown: bound missing or not memory, compute or network" if "unknown" in shown else ""),
            header=("phase", "group", "rows", *shown),
            rows=rows,
            numeric=(False, False, True, *(True,) * len(shown)),
        )

    def _crossovers(self) -> Table | None:
        if self.crossovers is None:
            return None
        df = self.crossovers
        varying = [k for k in ENTITIES if df.get_column(k).n_unique() > 1]
        layout = [k for k in LAYOUT if k in df.columns and df[k].n_unique() > 1]  # a column per layout

        def column_of(r: dict) -> str:
            return " ".join([*(str(r[k]) for k in varying), *(f"{k} {r[k]}" for k in layout)]) or "batch"

        columns = list(dict.fromkeys(column_of(r) for r in df.iter_rows(named=True)))
        verify = df["spec_k"].is_not_null().any()
        cells: dict[tuple, dict[str, str]] = {}
        ridges: dict[str, str] = {}
        for r in df.iter_rows(named=True):
            column = column_of(r)
            key = (r["phase"], *([_cell(r["spec_k"])] if verify else []), r["group"])
            cells.setdefault(key, {})[column] = _span(r)
            ridges[column] = f"{r['ridge']:.1f}"
        never = sorted({key[-1] for key, row in cells.items() if set(row.values()) == {"never"}}, key=GROUPS.index)
        network = [group for group in never if group == "comm"]  # collectives: no FLOPs, bytes over the link
        never = [group for group in never if group not in network]
        rows = [
            (*key, *(row.get(c, "") for c in columns))
            for key, row in cells.items()
            if key[-1] not in (*never, *network)
        ]
        width = 3 if verify else 2
        rows.append(("ridge FLOP/B", *[""] * (width - 1), *(ridges[c] for c in columns)))
        first = df.row(0, named=True)
        at = f"seq_len {first['seq_len']}" + (f", hidden {first['hidden']}" if df["hidden"].n_unique() == 1 else "")
        title = (
            f"smallest batch at which each op group turns compute-bound ({at}; a range when its ops differ; "
            f"* beyond the sweep's largest batch, {first['batch_max']})"
            + (f"; never for {', '.join(never)}" if never else "")
            + (
                "; comm (collectives) network-bound: no FLOPs, bytes over the interconnect, never crossing"
                if network
                else ""
            )
        )
        header = ("phase", *(["spec_k"] if verify else []), "group", *columns)
        return Table(title=title, header=header, rows=tuple(rows), numeric=(False,) * width + (True,) * len(columns))

    def _tokens(self) -> Table | None:
        if self.tokens is None:
            return None
        several = [k for k in ENTITIES if self.tokens.get_column(k).n_unique() > 1]
        shown = [
            *several,
            "batch",
            "seq_len",
            *(k for k in ("hidden", *LAYOUT, "spec_k") if self.tokens[k].n_unique() > 1),
        ]
        banded = "achieved_time_lo_s" in self.tokens.columns and self.tokens["achieved_time_lo_s"].null_count() == 0

        def band(r: dict) -> tuple[str, ...]:
            """Achieved tokens/s at the step's error band (its slow end, then its fast end)."""
            if not banded:
                return ()
            scale = r["achieved_tokens_per_s"] * r["achieved_time_s"]
            return (f"{number(scale / r['achieved_time_hi_s'], 4)}–{number(scale / r['achieved_time_lo_s'], 4)}",)

        rows = tuple(
            (
                r["phase"],
                r["rank"],
                number(r["tokens_per_s"], 4),
                number(r["achieved_tokens_per_s"], 4),
                *band(r),
                *(_cell(r[k]) for k in shown),
                f"{r['memory_bytes'] / 1e9:.1f}",
                "yes" if r["fits_in_memory"] else "no",
            )
            for r in self.tokens.iter_rows(named=True)
        )
        return Table(
            title="tokens/s per phase (best: among configurations that fit in memory, where any do)",
            header=(
                "phase",
                "rank",
                "tokens/s",
                "achieved",
                *(["achieved band"] if banded else []),
                *shown,
                "memory GB",
                "fits",
            ),
            rows=rows,
            numeric=(
                False,
                False,
                True,
                True,
                *([True] if banded else []),
                *(k not in ENTITIES for k in shown),
                True,
                False,
            ),
        )

    def _memory(self) -> Table | None:
        if self.memory is None:
            return None
        keys = [k for k in (*ENTITIES, *LAYOUT) if self.memory.get_column(k).n_unique() > 1]
        axes = ["batch", "seq_len", *(k for k in ("hidden", "spec_k") if self.memory[k].drop_nulls().n_unique() > 1)]
        rows = []
        for r in self.memory.iter_rows(named=True):
            where = (
                "all fit"
                if r["misfit_bytes"] is None
                else (
                    f"{r['misfit_bytes'] / 1e9:.1f} GB at " + ", ".join(f"{k} {r[k]}" for k in axes if r[k] is not None)
                )
            )
            rows.append(
                (
                    *(str(r[k]) for k in keys),
                    r["phase"],
                    f"{r['fit']:,} of {r['configurations']:,}",
                    "-" if r["capacity_bytes"] is None else f"{r['capacity_bytes'] / 1e9:g}",
                    where,
                )
            )
        return Table(
            title="memory: configurations that fit, and the smallest footprint that does not",
            header=(*keys, "phase", "fit", "capacity GB", "stops fitting at"),
            rows=tuple(rows),
            numeric=(False,) * len(keys) + (False, True, True, False),
        )

    def _layouts(self) -> Table | None:
        if self.layouts is None:
            return None
        shown = [k for k in LAYOUT if self.layouts[k].n_unique() > 1]
        rows = tuple(
            (
                r["phase"],
                *(str(r[k]) for k in shown),
                str(r["devices"]),
                f"{r['fit']:,} of {r['configurations']:,}",
                *(
                    ("-",) * 5
                    if r["tokens_per_s"] is None
                    else (
                        number(r["tokens_per_s"], 4),
                        number(r["tokens_per_s_per_device"], 4),
                        str(r["batch"]),
                        str(r["seq_len"]),
                        f"{r['memory_bytes'] / 1e9:.1f}",
                    )
                ),
            )
            for r in self.layouts.iter_rows(named=True)
        )
        return Table(
            title="layouts: configurations that fit in each device's memory, and the best that does "
            "(tokens/s of the system, and per device)",
            header=("phase", *shown, "devices", "fit", "tokens/s", "per device", "batch", "seq_len", "memory GB"),
            rows=rows,
            numeric=(False, *(True,) * (len(shown) + 7)),
        )

    def _best_layouts(self) -> list[str]:
        layouts = self.layouts
        if layouts is None:
            return []
        lines = []
        for (phase,), df in layouts.group_by("phase", maintain_order=True):
            fit = df.filter(pl.col("tokens_per_s").is_not_null())
            if not fit.height:
                lines.append(f"{phase}: no layout fits")
                continue

            def name(r: dict) -> str:
                return ", ".join(f"{k} {r[k]}" for k in LAYOUT if layouts[k].n_unique() > 1)

            fewest = fit.sort("devices", "tokens_per_s", descending=[False, True]).row(0, named=True)
            most = fit.sort("tokens_per_s", descending=True).row(0, named=True)
            each = fit.sort("tokens_per_s_per_device", descending=True).row(0, named=True)
            lines.append(
                f"{phase}: fewest devices that fit: {fewest['devices']} ({name(fewest)}); most tokens/s: "
                f"{name(most)} ({number(most['tokens_per_s'], 4)}); most tokens/s per device: {name(each)} "
                f"({number(each['tokens_per_s_per_device'], 4)})"
            )
        return ["", "best layout per phase", *lines]


def spec_line(spec: SweepSpec) -> str:
    """A spec in one line: names, phases and axis ranges."""

    def names(items: tuple) -> str:
        return ", ".join(item.name for item in items)

    axes = []
    for axis in AXES:
        values = getattr(spec, axis)
        if values:
            span = f"{values[0]}..{values[-1]} ({len(values)} values)" if len(values) > 1 else str(values[0])
            axes.append(f"{axis} {span}")
    head = f"{names(spec.models)} on {names(spec.hardware)} in {names(spec.dtypes)}; {', '.join(spec.phases)}; "
    return head + " × ".join(axes)


def _cell(value: object) -> str:
    return "-" if value is None else str(value)


def _span(row: dict) -> str:
    """A group's crossovers: ``228–235``, ``never``, or ``229 (1 of 3 never)``; ``*`` past the sweep."""
    if row["first"] is None:
        return "never"
    text = str(row["first"]) if row["first"] == row["last"] else f"{row['first']}–{row['last']}"
    if row["first"] > row["batch_max"]:
        text += " *"
    return text + (f" ({row['never']} of {row['ops']} never)" if row["never"] else "")


def _bounds(lf: pl.LazyFrame) -> pl.DataFrame:
    """Rows and bound shares per phase and group, in one streamed aggregation.

    A ``bound`` that is null or not one of :data:`rooflax.names.BOUNDS` counts as unknown.
    """
    dtype = lf.collect_schema().get("bound")
    if dtype is None or not (
        dtype.is_(pl.Null) or dtype.is_numeric() or dtype == pl.String or isinstance(dtype, pl.Enum | pl.Categorical)
    ):
        raise SpecError(f"bound: column of type {dtype} in the dataset; expected text: one of {', '.join(BOUNDS)}")
    bound = pl.col("bound").cast(pl.String)
    df = (
        lf.group_by("phase", "group")
        .agg(rows=pl.len(), **{name: (bound == name).sum() for name in BOUNDS})
        .collect(engine="streaming")
    )
    shares = {f"{name}_share": pl.col(name) / pl.col("rows") for name in BOUNDS}
    known = pl.sum_horizontal(*BOUNDS)
    return (
        df.with_columns(**shares, unknown_share=(pl.col("rows") - known) / pl.col("rows"))
        .sort("phase", "group")
        .select("phase", "group", "rows", *shares, "unknown_share")
    )


def _crossovers(spec: SweepSpec) -> pl.DataFrame:
    """Crossovers along batch at the sweep's median seq_len (verify: at least its largest spec_k) and hidden."""
    wanted = max(statistics.median_low(spec.seq_len), max(spec.spec_k or (0,)))
    seq_len = next(v for v in spec.seq_len if v >= wanted)
    keys: SpecKeys = {"seq_len": [seq_len]}
    if spec.hidden is not None:
        keys["hidden"] = [statistics.median_low(spec.hidden)]
    df = crossover(spec.with_keys(**keys), along="batch")
    layout = [k for k in LAYOUT if k in df.columns]  # a sweep of parallel layouts: crossovers per layout
    return (
        df.group_by(
            "model", "hardware", "dtype", *layout, "phase", "spec_k", "group", "seq_len", "hidden", maintain_order=True
        )
        .agg(
            first=pl.col("crossover").min(),
            last=pl.col("crossover").max(),
            never=pl.col("crossover").null_count(),
            ops=pl.len(),
            ridge=pl.col("ridge").first(),
        )
        .sort("model", "hardware", "dtype", *layout, "phase", "spec_k", "group", maintain_order=True)
        .with_columns(batch_max=pl.lit(spec.batch[-1]), group=pl.col("group").cast(pl.String))
        .with_columns(pl.col("model", "hardware", "dtype").cast(pl.String))
    )


def _summary_chunks(spec: SweepSpec) -> Iterator[pl.DataFrame]:
    """A summary sweep of ``spec``, chunk by chunk (flat memory)."""
    for chunk in engine.run(spec, summary=True):
        yield chunk_frame(chunk, spec, True).select(*_TOTALS, *_BAND)


def _best_worst(df: pl.DataFrame) -> pl.DataFrame:
    """Per phase, the best row (fitting first, then by tokens/s) and the worst (by tokens/s)."""
    best = df.sort(["fits_in_memory", "tokens_per_s"], descending=True).group_by("phase", maintain_order=True).first()
    worst = df.sort("tokens_per_s").group_by("phase", maintain_order=True).first()
    return pl.concat([best.with_columns(rank=pl.lit("best")), worst.with_columns(rank=pl.lit("worst"))])


def _misfits(df: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Per memory key: counts, and the smallest footprint that does not fit (candidates to combine)."""
    counts = df.group_by(_MEMORY_KEYS).agg(configurations=pl.len(), fit=pl.col("fits_in_memory").sum())
    smallest = (
        df.filter(~pl.col("fits_in_memory")).sort("memory_bytes").group_by(_MEMORY_KEYS, maintain_order=True).first()
    )
    return counts, smallest


def _layout_rows(df: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Per phase and layout: counts, and the fitting row of most tokens/s (candidates to combine)."""
    counts = df.group_by("phase", *LAYOUT).agg(configurations=pl.len(), fit=pl.col("fits_in_memory").sum())
    best = (
        df.filter("fits_in_memory")
        .sort("tokens_per_s", descending=True)
        .group_by("phase", *LAYOUT, maintain_order=True)
        .first()
    )
    return counts, best


def _totals(
    chunks: Iterable[pl.DataFrame], spec: SweepSpec | None
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame | None]:
    """Best and worst tokens/s per phase, memory per model × hardware × dtype × phase, and layouts per phase,
    reduced chunk by chunk."""
    tops, counts, smallest, layout_counts, layout_best = [], [], [], [], []
    for df in chunks:
        tops.append(_best_worst(df))
        c, s = _misfits(df)
        counts.append(c)
        smallest.append(s)
        c, s = _layout_rows(df)
        layout_counts.append(c)
        layout_best.append(s)
    top = _best_worst(pl.concat(tops).drop("rank"))
    order = [pl.col("phase"), pl.col("rank") == "worst"]
    band = [c for c in ("achieved_time_s", "achieved_time_lo_s", "achieved_time_hi_s") if c in top.columns]
    tokens = top.sort(order).select(
        "phase",
        "rank",
        *_CONFIG,
        "tokens_per_s",
        "achieved_tokens_per_s",
        *(band if len(band) == 3 else ()),
        "memory_bytes",
        "fits_in_memory",
    )
    count = pl.concat(counts).group_by(_MEMORY_KEYS).agg(pl.col("configurations", "fit").sum())
    least = _misfits(pl.concat(smallest))[1].select(
        *_MEMORY_KEYS, misfit_bytes="memory_bytes", batch="batch", seq_len="seq_len", hidden="hidden", spec_k="spec_k"
    )
    capacity = {name: hw.memory_bytes for name, hw in HARDWARE.items()}
    capacity.update({hw.name: hw.memory_bytes for hw in spec.hardware} if spec is not None else {})
    memory = (
        count.join(least, on=list(_MEMORY_KEYS), how="left")
        .with_columns(
            capacity_bytes=pl.col("hardware")
            .cast(pl.String)
            .replace_strict(capacity, default=None, return_dtype=pl.Float64)
        )
        .sort(*_MEMORY_KEYS)
    )
    per_layout = pl.concat(layout_counts).group_by("phase", *LAYOUT).agg(pl.col("configurations", "fit").sum())
    layouts = (
        None
        if per_layout.select(LAYOUT).n_unique() < 2
        else (
            per_layout.join(
                _layout_rows(pl.concat(layout_best))[1].select(
                    "phase", *LAYOUT, "batch", "seq_len", "tokens_per_s", "memory_bytes"
                ),
                on=["phase", *LAYOUT],
                how="left",
            )
            .with_columns(devices=pl.col("tp") * pl.col("pp") * pl.col("ep"))
            .with_columns(tokens_per_s_per_device=pl.col("tokens_per_s") / pl.col("devices"))
            .sort("phase", *LAYOUT)
            .select(
                "phase",
                *LAYOUT,
                "devices",
                "configurations",
                "fit",
                "batch",
                "seq_len",
                "tokens_per_s",
                "tokens_per_s_per_device",
                "memory_bytes",
            )
        )
    )
    return (
        tokens.with_columns(pl.col("model", "hardware", "dtype").cast(pl.String)),
        memory.with_columns(pl.col("model", "hardware", "dtype").cast(pl.String)),
        layouts,
    )


def _parts(parts: tuple[Path, ...], columns: list[str]) -> Iterator[pl.DataFrame]:
    """A summary dataset part by part (each at most one chunk of rows), ``columns`` only."""
    for part in parts:
        yield pl.read_parquet(part, columns=columns)


def describe(
    source: str | os.PathLike | pl.DataFrame | pl.LazyFrame, *, spec: SweepSpec | str | Path | None = None
) -> Report:
    """What a sweep found: bound shares, crossovers, best and worst tokens/s, where memory stops fitting.

    Args:
        source: a dataset folder or part file (read lazily, checked whole first), or a
            frame of :func:`rooflax.sweep` (long or summary).
        spec: for a frame, the spec it was swept from (a :class:`rooflax.SweepSpec` or a
            TOML path): it gives the crossovers, and for a long frame the model totals.
            A dataset carries its own spec.

    Returns:
        A :class:`Report`; ``str(report)`` is plain text.

    >>> import rooflax
    >>> report = describe(rooflax.sweep(phases=["decode"], batch=[1, 256], seq_len=[2048]))
    >>> report.bounds.filter(group="up/gate/down").get_column("compute_share").item()
    0.5

    Raises:
        SpecError: a bad source, or a damaged part of the dataset met while reading its rows
            (one line naming the part, as ``rooflax show`` says it).
    """
    if isinstance(source, str | os.PathLike) and not isinstance(source, bool):
        from rooflax.data.scan import reading

        with reading(source):
            return _describe(source, spec)
    return _describe(source, spec)


def _describe(source: str | os.PathLike | pl.DataFrame | pl.LazyFrame, spec: SweepSpec | str | Path | None) -> Report:
    notes: list[str] = []
    if isinstance(source, pl.DataFrame | pl.LazyFrame):
        lf, name, given = source.lazy(), "frame", spec
        if spec is not None:
            spec = resolve_spec(spec, {})
        kind = "summary" if "tokens_per_s" in lf.collect_schema().names() else "ops"
        rows = lf.select(pl.len()).collect().item()
        parts = None
        if given is None:
            notes.append("pass spec= for the crossovers" + (" and model totals" if kind == "ops" else ""))
    elif isinstance(source, str | os.PathLike) and not isinstance(source, bool):
        from rooflax.data.scan import check_dataset

        info = check_dataset(source)
        meta = info.metadata
        spec = SweepSpec.from_dict(meta["spec"])
        lf, name, kind, rows, parts = info.scan(), str(source), meta["kind"], info.rows, info.parts
    else:
        raise SpecError(f"source: expected a dataset path or a polars frame, got {type(source).__name__}")
    bounds = _bounds(lf) if kind == "ops" else None
    if kind == "summary":
        notes.append("summary frames have no per-op bound; sweep without --summary for the bound shares")
    crossovers = _crossovers(spec) if spec is not None else None
    tokens: pl.DataFrame | None
    memory: pl.DataFrame | None
    layouts: pl.DataFrame | None
    if kind == "summary":
        present = lf.collect_schema().names()
        columns = [*_TOTALS, *(name for name in _BAND if name in present)]
        chunks = _parts(parts, columns) if parts is not None else iter([lf.select(columns).collect()])
        tokens, memory, layouts = _totals(chunks, spec)
    elif spec is not None:
        tokens, memory, layouts = _totals(_summary_chunks(spec), spec)
    else:
        tokens = memory = layouts = None
    line = spec_line(spec) if spec is not None else ""
    return Report(
        source=name,
        kind=kind,
        rows=rows,
        spec=line,
        bounds=bounds,
        crossovers=crossovers,
        tokens=tokens,
        memory=memory,
        notes=tuple(notes),
        layouts=layouts,
    )
