"""Streaming sweeps to parquet datasets: part files, self-describing metadata, atomic, resumable.

A dataset is a folder of ``part-NNNNNN.parquet`` files and nothing else, so
``polars.scan_parquet("OUT/")`` reads it lazily. Every part carries, in its key-value
metadata, the rooflax version, the kind of frame, the whole spec with presets
expanded, and the model, hardware and dtype parameters of its rows
(:func:`dataset_metadata` reads them back).

While a sweep runs, parts go to ``OUT.partial/`` (each written as ``.NAME.tmp`` and
renamed when complete); the folder is renamed to ``OUT`` once every part is there. With
``resume=True`` an interrupted sweep continues from its finished parts, and the result
equals a clean run's because chunk boundaries depend only on the spec and chunk size.
"""

from __future__ import annotations

import json
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import polars as pl

from rooflax import engine
from rooflax._atomic import atomic_write
from rooflax._version import __version__
from rooflax.errors import SpecError, unknown_name
from rooflax.frames import chunk_frame, resolve_spec
from rooflax.progress import Progress
from rooflax.spec import SweepSpec

__all__ = ["dataset_metadata", "sweep_to_parquet"]

#: Parquet codecs a dataset can be written with.
COMPRESSIONS = ("lz4", "zstd", "snappy", "gzip", "brotli", "uncompressed")
_MANIFEST = ".rooflax-run.json"
_ROW_GROUP = 1 << 17  # rows per row group: statistics granular enough for scans to skip
_PREFIX = "rooflax."


def _part_name(index: int) -> str:
    return f"part-{index:06d}.parquet"


def _metadata(spec: SweepSpec, summary: bool, chunk: engine.Chunk, parts: int, chunk_size: int) -> dict[str, str]:
    task = chunk.task
    return {
        f"{_PREFIX}version": __version__,
        f"{_PREFIX}kind": "summary" if summary else "ops",
        f"{_PREFIX}spec": spec.to_json(),
        f"{_PREFIX}model": json.dumps(task.model.to_dict()),
        f"{_PREFIX}hardware": json.dumps(task.hardware.to_dict()),
        f"{_PREFIX}dtype": json.dumps(task.dtype.to_dict()),
        f"{_PREFIX}part": str(task.index),
        f"{_PREFIX}parts": str(parts),
        f"{_PREFIX}chunk_size": str(chunk_size),
    }


def dataset_metadata(path: str | Path) -> dict:
    """The rooflax metadata of a dataset folder or part file, JSON values decoded."""
    path = Path(path)
    if path.is_dir():
        parts = sorted(path.glob("part-*.parquet"))
        if not parts:
            raise SpecError(f"dataset: {str(path)!r} holds no part-*.parquet files")
        path = parts[0]
    if not path.exists():
        raise SpecError(f"dataset: {str(path)!r} does not exist")
    raw = pl.read_parquet_metadata(path)
    out = {}
    for key, value in raw.items():
        if key.startswith(_PREFIX):
            name = key[len(_PREFIX):]
            out[name] = json.loads(value) if name in ("spec", "model", "hardware", "dtype") else value
    if not out:
        raise SpecError(f"dataset: {str(path)!r} was not written by rooflax (no rooflax metadata)")
    return out


def _run_manifest(spec: SweepSpec, summary: bool, chunk_size: int) -> str:
    return json.dumps({"spec": spec.to_dict(), "summary": summary, "chunk_size": chunk_size,
                       "version": __version__}, sort_keys=True)


def sweep_to_parquet(spec: SweepSpec | str | Path | None = None, out: str | Path = "rooflax-out", *,
                     summary: bool = False, resume: bool = False, overwrite: bool = False,
                     chunk_size: int = engine.DEFAULT_CHUNK_SIZE, compression: str = "lz4",
                     statistics: bool = True, progress: bool = False, **keys) -> Path:
    """Stream a sweep to a parquet dataset folder; memory stays flat however large the grid.

    Args:
        spec: a :class:`SweepSpec`, a TOML path, or None for the reference sweep.
        out: the dataset folder to create.
        summary: write the summary frame instead of the long one.
        resume: continue an interrupted run of the same spec from ``OUT.partial/``.
        overwrite: replace an existing ``OUT`` (only once the new dataset is complete).
        chunk_size: most grid points per part file.
        compression: parquet codec (``lz4``, ``zstd``, ``snappy``, ``uncompressed``, ...).
        statistics: write min/max/null-count statistics per row group (lets scans skip
            row groups on filters; turning them off writes about 1.35× faster).
        progress: draw a progress line on standard error.
        **keys: the spec's TOML keys instead of ``spec``.

    Returns:
        The dataset folder.
    """
    spec = resolve_spec(spec, keys)
    chunk_size = engine.check_chunk_size(chunk_size)
    if compression not in COMPRESSIONS:
        raise unknown_name("compression", compression, COMPRESSIONS)
    out = Path(out)
    partial = out.with_name(out.name + ".partial")
    if out.exists() and not overwrite:
        raise SpecError(f"output: {str(out)!r} already exists; pass overwrite (--overwrite) to replace it")
    if out.exists() and not out.is_dir():
        raise SpecError(f"output: {str(out)!r} exists and is not a folder")
    manifest = _run_manifest(spec, summary, chunk_size)
    done: frozenset[int] = frozenset()
    if partial.exists():
        if not resume:
            raise SpecError(f"output: an interrupted sweep left {str(partial)!r}; pass resume (--resume) to "
                            "continue it, or delete that folder")
        previous = partial / _MANIFEST
        if not previous.exists() or previous.read_text() != manifest:
            raise SpecError(f"resume: {str(partial)!r} was written by a different spec, kind or chunk size; "
                            "delete it to start over")
        for stale in partial.glob(".*.tmp"):  # parts cut off mid-write
            stale.unlink()
        done = frozenset(int(p.stem.split("-")[1]) for p in partial.glob("part-*.parquet"))
    else:
        partial.mkdir(parents=True)
        (partial / _MANIFEST).write_text(manifest)

    tasks = engine.plan(spec, chunk_size)
    rows_per = {t.index: t.count * t.width(summary) for t in tasks}
    bar = Progress(sum(rows_per.values()), enabled=progress)
    bar.update(sum(rows_per[i] for i in done))
    stats = {"min": True, "max": True, "null_count": True, "distinct_count": False} if statistics else False

    def write(frame: pl.DataFrame, chunk: engine.Chunk) -> int:
        metadata = _metadata(spec, summary, chunk, len(tasks), chunk_size)
        atomic_write(partial / _part_name(chunk.task.index), lambda tmp: frame.write_parquet(
            tmp, compression=compression, statistics=stats, row_group_size=_ROW_GROUP, metadata=metadata))
        return chunk.rows

    # One part is written in the background while the next is framed and the one after
    # computes: at most three chunks are alive, whatever the size of the grid.
    with ThreadPoolExecutor(max_workers=1) as writer:
        pending = None
        for chunk in engine.run(spec, summary=summary, chunk_size=chunk_size, skip=done):
            frame = chunk_frame(chunk, spec, summary)
            if pending is not None:
                bar.update(pending.result())
            pending = writer.submit(write, frame, chunk)
        if pending is not None:
            bar.update(pending.result())
    bar.close()
    (partial / _MANIFEST).unlink()
    if out.exists():
        trash = out.with_name(out.name + ".old")
        os.replace(out, trash)
        os.replace(partial, out)
        shutil.rmtree(trash)
    else:
        os.replace(partial, out)
    return out
