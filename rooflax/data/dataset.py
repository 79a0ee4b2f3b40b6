"""Streaming sweeps to parquet datasets: part files, self-describing metadata, atomic, resumable.

A dataset is a folder of ``part-NNNNNN.parquet`` files and nothing else; read it with
:func:`rooflax.scan_dataset`, which checks the parts against their footers first. Every
part carries, in its key-value metadata, the rooflax version, the kind of frame, the
whole spec with presets expanded, the model, hardware and dtype parameters of its rows,
its index, the part count and its row count (:func:`rooflax.dataset_metadata` reads them
back).

While a sweep runs, parts go to ``OUT.partial/`` under an exclusive lock: each is encoded in
memory, sealed with the SHA-256 of its bytes (:mod:`rooflax.scan` tells how), written as
``.NAME.tmp`` and renamed when complete. Once every part is there, the parts and the
folder are flushed to disk and the folder is renamed to ``OUT`` (``rooflax._output`` tells
how, and how a killed run is recovered). With ``resume=True`` an interrupted sweep
continues from its finished parts, once each matches its checksum (a damaged one is
computed again, a line says which), and the result equals a clean run's because chunk
boundaries depend only on the spec and chunk size.

With ``distributed`` (or ``coordinator``, ``num_processes`` and ``process_id``), many
processes write one dataset, each its own chunks; process 0 holds the lock, decides the
run's metadata (command, creation time) for every part, and renames the folder
(:mod:`rooflax.distributed` tells how).

Before the first part is written, the sweep measures the bytes per row of the first
part in the chosen codec, estimates the dataset's size and writing time, and refuses to
start when the disk lacks room.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import io
import json
import math
import os
import shlex
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Unpack

import polars as pl

from rooflax._version import __version__
from rooflax.config._files import read_text
from rooflax.config.spec import SpecKeys, SweepSpec
from rooflax.data import _output
from rooflax.data._atomic import atomic_write
from rooflax.data.frames import chunk_frame, column_units, resolve_spec
from rooflax.data.progress import Progress, format_duration, si
from rooflax.data.scan import MANIFEST, PART, PREFIX, SHA256, UNSEALED, damage, dataset_metadata, part_name, seal
from rooflax.engine import vectorized as engine
from rooflax.engine.distributed import Cluster, connect, run_sweep
from rooflax.errors import SpecError, boolean, unknown_name
from rooflax.names import COMPRESSIONS

__all__ = ["dataset_metadata", "sweep_to_parquet"]

_ROW_GROUP = 1 << 17  # rows per row group: statistics granular enough for scans to skip


def _run_metadata(spec: SweepSpec, summary: bool, chunk_size: int, command: str | None) -> dict[str, str]:
    """The metadata every part of this run shares, each value JSON text (numbers as JSON numbers)."""
    made = {
        "version": __version__,
        "kind": "summary" if summary else "ops",
        "chunk_size": chunk_size,
        "axes": spec.axes_as_given(),
        "columns": column_units(summary),
        "command": shlex.join(sys.argv) if command is None else command,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    return {f"{PREFIX}spec": spec.to_json(), **{PREFIX + key: json.dumps(value) for key, value in made.items()}}


def _metadata(run: dict[str, str], chunk: engine.Chunk, parts: int) -> dict[str, str]:
    """One part's metadata: the run's, then its own rows' model, hardware and dtype, index and row count, and
    room for its checksum (:func:`rooflax.data.scan.seal`)."""
    task = chunk.task
    own = {
        "model": task.model.to_dict(),
        "hardware": task.hardware.to_dict(),
        "dtype": task.dtype.to_dict(),
        "part": task.index,
        "parts": parts,
        "rows": chunk.rows,
    }
    return {**run, **{PREFIX + key: json.dumps(value) for key, value in own.items()}, SHA256: UNSEALED}


def _run_manifest(spec: SweepSpec, summary: bool, chunk_size: int) -> str:
    """What makes a run's rows: resume continues only a run whose manifest is this one's.

    Not where its model or hardware files were found (a spec given by another path, or
    resumed from another folder, is the same run), nor labels and descriptions, which no
    row holds; "rows" says how a part orders its rows (a partial written in another order
    is never resumed).
    """
    made = spec.to_dict()
    made.pop("description")
    for key in ("models", "hardware"):
        made[key] = [{k: v for k, v in item.items() if k not in ("label", "source")} for item in made[key]]
    return json.dumps(
        {"spec": made, "summary": summary, "chunk_size": chunk_size, "version": __version__, "rows": "op-major"},
        sort_keys=True,
    )


def _interrupted_chunk_size(out: Path, spec: SweepSpec, summary: bool) -> int | None:
    """The chunk size an interrupted run of the same sweep used (resume without one given), else None."""
    for previous in (_output.siblings(out)[0] / MANIFEST, out / MANIFEST):  # in OUT: a finish cut off at the end
        try:
            text = previous.read_text(encoding="utf-8")
            chunk_size = json.loads(text).get("chunk_size")
        except (OSError, ValueError, AttributeError):
            continue  # no readable manifest: resume reports what is wrong
        # the same run is the one manifest rule: only its chunk size may be taken over
        return chunk_size if isinstance(chunk_size, int) and text == _run_manifest(spec, summary, chunk_size) else None
    return None


def _interrupted(partial: Path) -> set[str]:
    """The names in an interrupted run's ``OUT.partial`` but its lock; refuses a folder rooflax did not leave."""
    _output.replaceable(partial, partial=True)
    names = {p.name for p in partial.iterdir()} - {_output.LOCK}
    if names and MANIFEST not in names:  # never rooflax's interrupted run: its manifest comes before any part
        raise SpecError(
            f"output: {str(partial)!r} holds no rooflax run manifest, so it is not an interrupted sweep "
            "(a dataset written there under that name?); rooflax will neither use nor delete it: move or "
            "rename it"
        )
    return names


def _intact_parts(partial: Path, say: Callable[[str], None]) -> frozenset[int]:
    """The parts in ``partial`` that match their checksums; the others (emptied, cut, rotted, without a
    checksum) are removed, a line said for each: they are computed again."""
    kept = set()
    for part in sorted(p for p in partial.iterdir() if PART.fullmatch(p.name)):
        if (why := damage(part)) is None:
            kept.add(int(PART.fullmatch(part.name).group(1)))  # type: ignore[union-attr]  # listed by PART
        else:
            say(f"resume: {str(part)!r} is damaged ({why}); computing it again")
            part.unlink()
    return frozenset(kept)


def _reuse_partial(
    partial: Path, manifest: str, *, resume: bool, overwrite: bool, say: Callable[[str], None]
) -> frozenset[int]:
    """The finished, intact parts of an interrupted run to keep (resume), or none (overwrite starts over)."""
    names = _interrupted(partial)
    if not any(PART.fullmatch(name) for name in names):  # nothing finished: nothing to keep
        _output.clear_partial(partial)
        return frozenset()
    if resume:
        if read_text(partial / MANIFEST, "resume", "a rooflax run manifest") != manifest:
            raise SpecError(
                f"resume: {str(partial)!r} was written by a different spec, kind, chunk size or "
                "rooflax version; "
                "pass overwrite (--overwrite, without --resume) to start over"
            )
        for stale in partial.glob(".*.tmp"):  # parts cut off mid-write
            stale.unlink()
        return _intact_parts(partial, say)
    if overwrite:
        _output.clear_partial(partial)
        return frozenset()
    raise SpecError(
        f"output: an interrupted sweep left {str(partial)!r}; pass resume (--resume) to continue it, "
        "or overwrite (--overwrite) to start over"
    )


def _write_part(
    frame: pl.DataFrame, target: io.BytesIO, compression: str, statistics: bool, metadata: dict[str, str]
) -> None:
    stats = {"min": True, "max": True, "null_count": True, "distinct_count": False} if statistics else False
    frame.write_parquet(
        target,
        compression=compression,  # type: ignore[arg-type]  # one of COMPRESSIONS (checked)
        statistics=stats,
        row_group_size=_ROW_GROUP,
        metadata=metadata,
    )


def _check_room(
    partial: Path,
    *,
    left: int,
    parts: int,
    need: int,
    per_row: float,
    sample_rows: int,
    sample_s: float,
    compression: str,
    bar: Progress,
    processes: int = 1,
) -> None:
    """Say how large the sweep is (from the first part); refuse when its disk lacks room."""
    seconds = sample_s / sample_rows * left / processes
    free = shutil.disk_usage(partial).free
    duration = f"{seconds:.1f} s" if seconds < 60 else format_duration(seconds)
    bar.print(
        f"sweep: {left:,} rows in {parts:,} parts, about {si(need)}B on disk ({compression}, "
        f"{per_row:.1f} B/row) and {duration} to write"
        + (f" on {processes} processes" if processes > 1 else "")
        + f"; {si(free)}B free"
    )
    if need > free:
        raise SpecError(
            f"output: the sweep needs about {si(need)}B ({left:,} rows at {per_row:.1f} B/row in "
            f"{compression}) but the disk holding {str(partial)!r} has {si(free)}B free; free some "
            "space, write elsewhere (-o) or pick a smaller codec (--compression zstd)"
        )


def _claimed(
    out: Path, manifest: str, run: dict[str, str], *, resume: bool, overwrite: bool, say: Callable[[str], None]
) -> AbstractContextManager[tuple[frozenset[int], str]]:
    """Check ``out``, lock its ``OUT.partial`` and write the manifest; gives the parts kept from an
    interrupted run and the run's metadata as JSON text (a resumed run keeps its command and time)."""

    @contextlib.contextmanager
    def claim() -> Iterator[tuple[frozenset[int], str]]:
        partial, _ = _output.siblings(out)
        _output.check_swap(out, overwrite=overwrite)  # early, and again under the lock: OUT may appear meanwhile
        if partial.exists():
            _interrupted(partial)  # before the lock file is made in it
        with _output.lock_partial(out) as created:
            _output.recover(out)
            _output.check_swap(out, overwrite=overwrite)
            done = (
                frozenset()
                if created
                else _reuse_partial(partial, manifest, resume=resume, overwrite=overwrite, say=say)
            )
            try:
                (partial / MANIFEST).write_text(manifest)
            except OSError as exc:
                raise _output.disk_error(exc, partial, MANIFEST) from None
            kept = dict(run)
            if done:  # a resumed run is the same run: its parts keep the metadata that started it
                first = pl.read_parquet_metadata(partial / part_name(min(done)))
                kept.update({key: first[key] for key in run if key in first})
            yield done, json.dumps(kept)

    return claim()


def _finish(out: Path, parts: int, *, overwrite: bool) -> None:
    """Rename the finished ``OUT.partial`` to ``OUT``, once sure every part is there."""
    partial, _ = _output.siblings(out)
    missing = next((i for i in range(parts) if not (partial / part_name(i)).exists()), None)
    if missing is not None:  # a process wrote to another folder than the others: never rename half a dataset
        raise SpecError(
            f"output: {str(partial / part_name(missing))!r} is missing after every process finished; "
            "every process must write to one folder on a shared filesystem"
        )
    try:
        _output.finalize(out, overwrite=overwrite)
    except OSError as exc:
        raise _output.disk_error(exc, partial, f"the finished dataset to {str(out)!r}") from None


def sweep_to_parquet(
    spec: SweepSpec | str | Path | None = None,
    out: str | Path = "rooflax-out",
    *,
    summary: bool = False,
    resume: bool = False,
    overwrite: bool = False,
    chunk_size: int | None = None,
    compression: str = "lz4",
    statistics: bool = True,
    progress: bool = False,
    command: str | None = None,
    distributed: bool = False,
    coordinator: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    **keys: Unpack[SpecKeys],
) -> Path:
    """Stream a sweep to a parquet dataset folder; memory stays flat however large the grid.

    Args:
        spec: a :class:`SweepSpec`, a TOML path, or None for the reference sweep.
        out: the dataset folder to create (no file suffix such as ``.csv``: it is a folder;
            not named ``*.partial`` or ``*.old``, rooflax's folders beside it; not a
            symbolic link).
        summary: write the summary frame instead of the long one.
        resume: continue an interrupted run of the same spec from ``OUT.partial/`` (a run
            whose final rename was done but not its cleanup is only tidied).
        overwrite: replace an existing ``OUT`` dataset (only once the new one is complete),
            and start over from a leftover ``OUT.partial/`` unless ``resume``. A folder
            holding files rooflax did not write is never replaced, nor an ``OUT.partial``
            without rooflax's run manifest, nor an ``OUT.old`` rooflax did not mark.
        chunk_size: most grid points per part file (None: with ``resume``, the interrupted
            run's; else :data:`rooflax.engine.vectorized.DEFAULT_CHUNK_SIZE`, or
            :data:`~rooflax.engine.vectorized.DEFAULT_SUMMARY_CHUNK_SIZE` for a summary).
        compression: parquet codec (``lz4``, ``zstd``, ``snappy``, ``uncompressed``, ...).
        statistics: write min/max/null-count statistics per row group (lets scans skip
            row groups on filters; turning them off writes about 1.35× faster).
        progress: on standard error, say how large the sweep is before it starts, then
            draw a progress line (for a million rows or more); process 0 only.
        command: the command line recorded in the metadata (default: this process's
            ``sys.argv``; process 0's in a multi-process run).
        distributed: one sweep over many processes, every one making this same call:
            each computes its share of the chunks into ``out`` on a shared filesystem
            (:mod:`rooflax.distributed`). Alone, it detects the cluster (SLURM, Open MPI).
        coordinator: ``HOST:PORT`` of process 0, for JAX's distributed runtime.
        num_processes: processes in the run (with ``coordinator`` and ``process_id``).
        process_id: this process, from 0 to ``num_processes − 1``.
        **keys: the spec's TOML keys instead of ``spec``.

    Returns:
        The dataset folder (on every process, once the dataset is complete).

    Raises:
        SpecError: bad arguments, an unusable output folder, another sweep writing to the
            same output, or a disk without room (before the first part is written, from
            the estimate; or when a write fails, keeping the finished parts for ``resume``);
            in a multi-process run, on every process, the first error of any.
    """
    summary, resume, overwrite, statistics, progress = (
        boolean(name, value)
        for name, value in (
            ("summary", summary),
            ("resume", resume),
            ("overwrite", overwrite),
            ("statistics", statistics),
            ("progress", progress),
        )
    )
    spec = resolve_spec(spec, keys)
    if compression not in COMPRESSIONS:
        raise unknown_name("compression", compression, COMPRESSIONS)
    out = _output.check_output(out)
    if chunk_size is None and resume:
        chunk_size = _interrupted_chunk_size(out, spec, summary)
    chunk_size = engine.check_chunk_size(chunk_size, summary)
    cluster = connect(
        distributed=distributed, coordinator=coordinator, num_processes=num_processes, process_id=process_id
    )
    manifest = _run_manifest(spec, summary, chunk_size)
    if resume and _output.leftover_manifest(out) == manifest:  # this run's finish was cut off after its rename
        if cluster is None:
            _output.finish_leftover(out)
        return out  # (many processes only read it: the next sweep to OUT tidies it)
    claim = _claimed(
        out,
        manifest,
        _run_metadata(spec, summary, chunk_size, command),
        resume=resume,
        overwrite=overwrite,
        say=lambda line: print(line, file=sys.stderr) if progress else None,
    )
    parts = engine.chunk_count(spec, chunk_size)  # the chunks are planned as they are computed
    options: dict[str, Any] = {
        "summary": summary,
        "chunk_size": chunk_size,
        "compression": compression,
        "statistics": statistics,
    }
    if cluster is None:
        with claim as (done, run):
            _stream(spec, out, parts, done, json.loads(run), progress=progress, **options)
            _finish(out, parts, overwrite=overwrite)
        return out
    asked = json.dumps(
        {
            **json.loads(manifest),
            "compression": compression,
            "statistics": statistics,
            "resume": resume,
            "overwrite": overwrite,
        },
        sort_keys=True,
    )
    run_sweep(
        cluster,
        _output.siblings(out)[0],
        asked=asked,
        claim=lambda: claim,
        stream=lambda done, run: _stream(
            spec, out, parts, done, json.loads(run), cluster=cluster, progress=progress and cluster.leader, **options
        ),
        finish=lambda: _finish(out, parts, overwrite=overwrite),
    )
    return out


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class _Skipped:
    """The chunks this process does not compute: those an interrupted run finished, and the other processes'."""

    done: frozenset[int]
    cluster: Cluster | None

    def __contains__(self, index: object) -> bool:
        return index in self.done or (
            self.cluster is not None and isinstance(index, int) and not self.cluster.mine(index)
        )


def _share_rows(spec: SweepSpec, chunk_size: int, summary: bool, cluster: Cluster, done: frozenset[int]) -> int:
    """Rows of this process's chunks not yet done, counted block by block (chunk ``i`` is process
    ``i mod processes``'s, :meth:`Cluster.mine`), without listing the chunks."""
    n, me = cluster.num_processes, cluster.process_id
    rows = 0
    for block in engine.blocks(spec, chunk_size):
        full, last = block.rows(chunk_size, summary)
        end = block.first + block.chunks
        count = (end - me + n - 1) // n - (block.first - me + n - 1) // n
        rows += count * full + (last - full) * cluster.mine(end - 1)
    finished = engine.chunk_rows(spec, chunk_size, summary, done)
    return rows - sum(r for i, r in zip(sorted(done), finished, strict=True) if cluster.mine(i))


def _disk_need(spec: SweepSpec, chunk_size: int, summary: bool, done: frozenset[int], part_bytes) -> int:
    """Bytes the parts not yet done take on disk, ``part_bytes(rows)`` each."""
    need = 0
    for block in engine.blocks(spec, chunk_size):
        full, last = block.rows(chunk_size, summary)
        need += (block.chunks - 1) * part_bytes(full) + part_bytes(last)
    return need - sum(part_bytes(rows) for rows in engine.chunk_rows(spec, chunk_size, summary, done))


def _stream(
    spec: SweepSpec,
    out: Path,
    parts: int,
    done: frozenset[int],
    run: dict[str, str],
    *,
    summary: bool,
    chunk_size: int,
    compression: str,
    statistics: bool,
    progress: bool,
    cluster: Cluster | None = None,
) -> None:
    """Compute and write every part not in ``done`` (in a multi-process run: this process's share).

    Nothing here lists the chunks: rows and sizes are counted block by block, and the
    engine plans each chunk as it computes it, so a sweep of any size starts at once.
    """
    partial, _ = _output.siblings(out)
    skip = _Skipped(done=done, cluster=cluster)
    total = spec.configurations() if summary else spec.rows()
    left = total - sum(engine.chunk_rows(spec, chunk_size, summary, done))
    mine = left if cluster is None else _share_rows(spec, chunk_size, summary, cluster, done)
    processes = 1 if cluster is None else cluster.num_processes
    # one process draws its own share; alone, it counts the parts kept from an interrupted run as done
    bar = Progress(mine, enabled=progress) if cluster else Progress(total, done=total - left, enabled=progress)

    def encode(frame: pl.DataFrame, chunk: engine.Chunk, frame_s: float | None) -> tuple[engine.Chunk, io.BytesIO]:
        start, encoded = time.perf_counter(), io.BytesIO()
        _write_part(frame, encoded, compression, statistics, _metadata(run, chunk, parts))
        if frame_s is not None:  # the first part of this run: nothing is on disk yet
            sample_s = max(frame_s, time.perf_counter() - start)
            size = encoded.seek(-8, io.SEEK_END) + 8
            # what a part takes whatever its rows: the magic bytes and the footer (schema, metadata, statistics)
            fixed = 12 + int.from_bytes(encoded.read(4), "little")
            per_row = max(size - fixed, 0) / chunk.rows
            block = os.statvfs(partial).f_bsize  # a file takes whole blocks on disk

            def part_bytes(rows: int) -> int:
                return -(-math.ceil(fixed + per_row * rows) // block) * block

            _check_room(
                partial,
                left=left,
                parts=parts - len(done),
                need=_disk_need(spec, chunk_size, summary, done, part_bytes),
                per_row=per_row,
                sample_rows=chunk.rows,
                sample_s=sample_s,
                compression=compression,
                bar=bar,
                processes=processes,
            )
        return chunk, encoded

    def save(encoding: Future[tuple[engine.Chunk, io.BytesIO]]) -> int:
        chunk, encoded = encoding.result()
        seal(encoded.getbuffer())
        name = part_name(chunk.task.index)
        try:
            atomic_write(partial / name, lambda tmp: tmp.write_bytes(encoded.getbuffer()))
        except OSError as exc:
            raise _output.disk_error(exc, partial, name) from None
        return chunk.rows

    # In the background, a part is sealed (hashed) and saved while the next is encoded; here
    # the one after is framed while the next chunk computes. The first part is saved before
    # any other is encoded (it sizes the sweep); a part is handed on only once the one before
    # is encoded: at most three chunks and one encoded part are alive, whatever the grid.
    with bar, ThreadPoolExecutor(max_workers=1) as encoder, ThreadPoolExecutor(max_workers=1) as saver:
        pending: collections.deque[tuple[Future, Future[int]]] = collections.deque()  # (encoding, saving)
        sized = False
        for chunk in engine.run(spec, summary=summary, chunk_size=chunk_size, skip=skip):
            if cluster is not None:
                cluster.check_others()  # another process failed: stop here, keeping the finished parts
            start = time.perf_counter()
            frame = chunk_frame(chunk, spec, summary)
            first = not sized and not pending and (cluster is None or cluster.leader)
            frame_s = time.perf_counter() - start if first else None
            if pending:
                pending[-1][0].result()
            while len(pending) > (1 if sized else 0):
                bar.update(pending.popleft()[1].result())
                sized = True
            encoding = encoder.submit(encode, frame, chunk, frame_s)
            pending.append((encoding, saver.submit(save, encoding)))
        while pending:
            bar.update(pending.popleft()[1].result())
