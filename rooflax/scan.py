"""Reading datasets: every part checked against the footers of the others before a row is read.

A dataset written by :func:`rooflax.sweep_to_parquet` is a folder of
``part-NNNNNN.parquet`` files. Every part records, in its parquet key-value metadata,
the rooflax version, the frame kind, the spec, the chunk size, how many parts the sweep
has, its own index and its row count. :func:`scan_dataset` reads only those footers and
refuses, naming the file, a dataset with a part missing, empty (0 bytes), truncated
(unreadable footer), foreign (another sweep's, or any other parquet file), holding the
wrong number of rows, or a folder with files that are not parts. Hidden files (a name
starting with ``.``) are ignored, as ``polars.scan_parquet`` ignores them.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from rooflax.errors import SpecError

__all__ = ["DatasetInfo", "check_dataset", "dataset_metadata", "scan_dataset"]

#: Prefix of rooflax's keys in a part's key-value metadata.
PREFIX = "rooflax."
#: File name of part ``i``: ``part-{i:06d}.parquet``.
PART = re.compile(r"part-(\d{6})\.parquet")
#: Left by an unfinished sweep in ``OUT.partial/``: what was asked (spec, kind, chunk size).
#: (Also in ``OUT`` if a sweep was killed after its last rename, before removing it.)
MANIFEST = ".rooflax-run.json"
#: Metadata that every part of one sweep shares.
_IDENTITY = ("version", "kind", "spec", "chunk_size", "parts")


def _decoded(value: str) -> object:
    """A metadata value: JSON text, or a bare string in parts written before rooflax stored JSON everywhere."""
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def part_name(index: int) -> str:
    """The file name of part ``index``."""
    return f"part-{index:06d}.parquet"


def read_footer(path: Path) -> dict[str, str] | None:
    """The rooflax metadata of a parquet file (prefix removed), None if it has none.

    Raises:
        SpecError: the file is empty or not a readable parquet file (truncated, damaged,
            or another format).
    """
    if path.stat().st_size == 0:
        raise SpecError(f"dataset: {str(path)!r} is empty (0 bytes)")
    try:
        raw = pl.read_parquet_metadata(path)
    except (pl.exceptions.PolarsError, OSError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SpecError(f"dataset: {str(path)!r} is not a readable parquet file (truncated or damaged?): "
                        f"{reason}") from None
    meta = {key[len(PREFIX):]: value for key, value in raw.items() if key.startswith(PREFIX)}
    return meta or None


@dataclass(frozen=True, slots=True)
class DatasetInfo:
    """A checked dataset: its part files in order, its row count and its rooflax metadata."""

    path: Path
    parts: tuple[Path, ...]  # in part order
    rows: int
    metadata: dict  # of the first part, JSON values decoded (see dataset_metadata)

    def scan(self) -> pl.LazyFrame:
        """The rows of every part, lazily, in part order."""
        return pl.scan_parquet(list(self.parts))


def _as_path(path: object) -> Path:
    if isinstance(path, bool) or not isinstance(path, str | os.PathLike) or not os.fspath(path):
        raise SpecError(f"dataset: expected a dataset folder or part file path, got {path!r}")
    return Path(path)


def _part_files(folder: Path) -> list[Path]:
    """The part files of a dataset folder, refusing anything else in it."""
    parts = []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            continue
        if not PART.fullmatch(entry.name) or not entry.is_file():
            raise SpecError(f"dataset: {str(entry)!r} is not a part of a rooflax dataset (a dataset folder holds "
                            "only part-NNNNNN.parquet files)")
        parts.append(entry)
    if not parts:
        raise SpecError(f"dataset: {str(folder)!r} holds no part-NNNNNN.parquet files; not a rooflax dataset")
    return parts


def _odd_one_out(files: list[Path], footers: list[dict[str, str]]) -> None:
    """Refuse a part whose sweep (version, kind, spec, chunk size, part count) is not the majority's."""
    identity = [tuple(meta.get(key) for key in _IDENTITY) for meta in footers]
    common, _ = Counter(identity).most_common(1)[0]
    for file, ident in zip(files, identity, strict=True):
        if ident != common:
            differs = next(key for key, a, b in zip(_IDENTITY, ident, common, strict=True) if a != b)
            raise SpecError(f"dataset: {str(file)!r} belongs to another sweep (its {differs} differs from the "
                            "other parts')")


def _check_indices(folder: Path, files: list[Path], footers: list[dict[str, str]]) -> None:
    """Every part index from 0 to parts − 1 present once, each in the file of its name."""
    parts = int(footers[0]["parts"])
    for file, meta in zip(files, footers, strict=True):
        recorded = int(meta["part"])
        if recorded != int(PART.fullmatch(file.name).group(1)):
            raise SpecError(f"dataset: {str(file)!r} holds part {recorded} of its sweep, not the part its name says")
    present = {int(meta["part"]) for meta in footers}
    missing = [i for i in range(parts) if i not in present]
    if missing:
        raise SpecError(f"dataset: {str(folder / part_name(missing[0]))!r} is missing ({len(present)} of {parts} "
                        "parts present)")
    extra = sorted(present - set(range(parts)))
    if extra:
        raise SpecError(f"dataset: {str(folder / part_name(extra[0]))!r} is beyond the sweep's {parts} parts")


def _part_rows(file: Path) -> int:
    return pl.scan_parquet(file).select(pl.len()).collect().item()


def _check_rows(files: list[Path], footers: list[dict[str, str]]) -> int:
    """The total row count; refuse a part whose rows differ from its footer's count, or with none."""
    total = pl.scan_parquet(files).select(pl.len()).collect().item()  # one pass over the footers
    if all("rows" in meta for meta in footers) and total == sum(int(meta["rows"]) for meta in footers):
        return total
    for file, meta in zip(files, footers, strict=True):  # name the part that is off
        rows = _part_rows(file)
        if rows == 0 or ("rows" in meta and rows != int(meta["rows"])):
            expected = meta.get("rows", "some")
            raise SpecError(f"dataset: {str(file)!r} holds {rows:,} rows; its sweep wrote {expected}")
    return total


def _expected_schema(files: list[Path], footers: list[dict[str, str]]) -> pl.Schema:
    """The columns every part must hold: those of the footer's spec and kind, or the first part's."""
    from rooflax._version import __version__
    from rooflax.frames import schemas
    from rooflax.spec import SweepSpec

    meta = footers[0]
    if _decoded(meta["version"]) == __version__ and meta["kind"] in ("ops", "summary"):
        try:
            ops, summary = schemas(SweepSpec.from_dict(_decoded(meta["spec"])))
            return ops if meta["kind"] == "ops" else summary
        except (SpecError, TypeError, ValueError, KeyError):  # a spec this version cannot read: trust part 0
            pass
    return _schema(files[0])


def _schema(file: Path) -> pl.Schema:
    try:
        return pl.read_parquet_schema(file)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise SpecError(f"dataset: {str(file)!r} is not a readable parquet file (truncated or damaged?): "
                        f"{str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}") from None


def _check_schemas(files: list[Path], footers: list[dict[str, str]]) -> None:
    """Refuse a part whose columns (names, order, types) are not its sweep's."""
    expected = _expected_schema(files, footers)
    for file in files:
        schema = _schema(file)
        if schema == expected:
            continue
        missing = [name for name in expected if name not in schema]
        extra = [name for name in schema if name not in expected]
        retyped = [name for name in expected if name in schema and schema[name] != expected[name]]
        if missing:
            why = f"lacks column {missing[0]!r}"
        elif extra:
            why = f"holds column {extra[0]!r}, which its sweep does not write"
        elif retyped:
            name = retyped[0]
            why = f"holds column {name!r} as {schema[name]}; its sweep writes {expected[name]}"
        else:
            why = f"holds its columns in another order ({', '.join(schema)})"
        raise SpecError(f"dataset: {str(file)!r} {why} (rewritten after the sweep?); re-run the sweep")


def check_dataset(path: str | os.PathLike) -> DatasetInfo:
    """Check a dataset (folder, or one part file) against its footers; read no rows.

    Args:
        path: a dataset folder written by :func:`rooflax.sweep_to_parquet`, or one of its
            part files.

    Returns:
        The part files in order, the row count and the metadata.

    Raises:
        SpecError: one line naming the missing, empty, truncated or foreign file.
    """
    path = _as_path(path)
    if not path.exists():
        raise SpecError(f"dataset: {str(path)!r} does not exist")
    # a sweep's folder is renamed from OUT.partial only once every part is there: a manifest left in OUT is
    # a finish cut off at its last step (the next sweep to OUT removes it), not an unfinished sweep
    if path.is_dir() and path.name.endswith(".partial") and (path / MANIFEST).exists():
        raise SpecError(f"dataset: {str(path)!r} is an unfinished sweep; run the same sweep with --resume "
                        "(resume=True) to finish it")
    files = _part_files(path) if path.is_dir() else [path]
    footers = []
    for file in files:
        meta = read_footer(file)
        if meta is None or not all(key in meta for key in (*_IDENTITY, "part")):
            raise SpecError(f"dataset: {str(file)!r} was not written by rooflax (no rooflax metadata)")
        footers.append(meta)
    _odd_one_out(files, footers)
    if path.is_dir():
        _check_indices(path, files, footers)
    _check_schemas(files, footers)
    rows = _check_rows(files, footers)
    metadata = {key: _decoded(value) for key, value in footers[0].items()}
    return DatasetInfo(path, tuple(files), rows, metadata)


def scan_dataset(path: str | os.PathLike) -> pl.LazyFrame:
    """A dataset as a LazyFrame, once its parts pass :func:`check_dataset`.

    Use this instead of ``polars.scan_parquet(DIR)``, which silently reads fewer rows
    when a part is missing.

    Args:
        path: a dataset folder, or one part file.

    Raises:
        SpecError: one line naming the missing, empty, truncated or foreign file.
    """
    return check_dataset(path).scan()


def dataset_metadata(path: str | os.PathLike) -> dict:
    """The rooflax metadata of a checked dataset folder or part file, JSON values decoded.

    Keys: ``version``, ``kind`` (``ops`` or ``summary``), ``spec`` (the whole spec,
    presets expanded: what resume and the identity checks compare), ``axes`` (each axis as
    the user gave it: a ``{start, stop, step | powers_of}`` table or a list),
    ``columns`` (per column, ``{"unit": ..., "scope": ...}``: ``flops`` is FLOP in one
    layer, ``lm_head`` rows once per model, ``time_s`` seconds, ...), ``command`` (the
    command line that made it), ``created`` (UTC, ISO 8601), ``model``, ``hardware``,
    ``dtype`` (of the first part's rows), ``part``, ``parts``, ``rows`` (of the first part)
    and ``chunk_size``; numbers are numbers. Datasets written by older versions lack
    ``axes``, ``columns``, ``command`` and ``created``.
    """
    return check_dataset(path).metadata
