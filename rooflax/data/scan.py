"""Reading datasets: every part checked against the footers of the others before a row is read.

A dataset written by :func:`rooflax.sweep_to_parquet` is a folder of
``part-NNNNNN.parquet`` files. Every part records, in its parquet key-value metadata,
the rooflax version, the frame kind, the spec, the chunk size, how many parts the sweep
has, its own index and its row count. :func:`scan_dataset` reads only those footers and
refuses, naming the file, a dataset with a part missing, empty (0 bytes), truncated
(unreadable footer), foreign (another sweep's, or any other parquet file), holding the
wrong number of rows, or a folder with files that are not parts. Hidden files (a name
starting with ``.``) are ignored, as ``polars.scan_parquet`` ignores them.

Parquet pages carry no checksum that polars writes or reads, so a flipped bit in a part's
data pages passes every footer check and may decode to wrong numbers. Every part therefore
carries the SHA-256 of its own bytes under the key ``rooflax.sha256``: the writer encodes
the part in memory with 64 zeros as the value, hashes the whole file, and writes the digest
over the zeros (same length, so no byte moves). A reader hashes the file with those 64
digits read as zeros again (:func:`damage`). The sum travels with the part (a part copied
elsewhere is still checked) and the folder holds nothing but parts, so any parquet reader
still reads it. ``check_dataset(..., deep=True)`` checks every part (a dataset written
before rooflax recorded sums has every page decoded instead), and :func:`reading` turns a
polars error met while reading a damaged part into one line naming the part.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import polars as pl

from rooflax.errors import SpecError, boolean, close_matches

__all__ = ["DatasetInfo", "check_dataset", "dataset_metadata", "filter_where", "reading", "scan_dataset"]

#: Prefix of rooflax's keys in a part's key-value metadata.
PREFIX = "rooflax."
#: File name of part ``i``: ``part-{i:06d}.parquet``.
PART = re.compile(r"part-(\d{6})\.parquet")
#: Left by an unfinished sweep in ``OUT.partial/``: what was asked (spec, kind, chunk size).
#: (Also in ``OUT`` if a sweep was killed after its last rename, before removing it.)
MANIFEST = ".rooflax-run.json"
#: The key of a part's checksum; while the part is encoded, its value is :data:`UNSEALED`.
SHA256 = f"{PREFIX}sha256"
UNSEALED = json.dumps("0" * 64)
#: The checksum in a footer's raw bytes (thrift's compact encoding of the key-value pair).
_SEAL = re.compile(rb'rooflax\.sha256\x18\x42"([0-9a-f]{64})"')
_ZEROS = b"0" * 64
#: What to do about a damaged part.
_REDO = "re-run the sweep to write it again (a resumed run recomputes damaged parts)"
#: Metadata that every part of one sweep shares.
_IDENTITY = ("version", "kind", "spec", "chunk_size", "parts")


def _decoded(value: str) -> Any:
    """A metadata value: JSON text, or a bare string in parts written before rooflax stored JSON everywhere."""
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def part_name(index: int) -> str:
    """The file name of part ``index``."""
    return f"part-{index:06d}.parquet"


_NO_SUM = "no checksum is recorded in it"


def _seal_at(read: Callable[[int, int], bytes], size: int) -> int | None:
    """Where the checksum's 64 hex digits begin in a parquet file of ``size`` bytes (``read(offset,
    count)`` reads it), or None if its footer records none."""
    tail = read(size - 8, 8) if size >= 12 else b""
    if tail[4:] != b"PAR1":
        return None
    footer = int.from_bytes(tail[:4], "little")
    start = size - 8 - footer
    found = list(_SEAL.finditer(read(start, footer))) if footer > 0 and start >= 4 else []
    return start + found[-1].start(1) if found else None


def seal(part: memoryview) -> None:
    """Write a part's checksum over the :data:`UNSEALED` value its metadata was encoded with."""
    at = _seal_at(lambda offset, count: bytes(part[offset : offset + count]), len(part))
    if at is None or part[at : at + 64] != _ZEROS:
        raise AssertionError("the part was not encoded with an unsealed rooflax.sha256")
    part[at : at + 64] = hashlib.sha256(part).hexdigest().encode()


def _hash(digest: hashlib._Hash, f: BinaryIO, count: int) -> None:
    while count > 0 and (chunk := f.read(min(count, 1 << 20))):
        digest.update(chunk)
        count -= len(chunk)


def damage(part: Path) -> str | None:
    """Why the bytes of ``part`` are not those written (an emptied, cut or rotted part, or one without a
    checksum), or None when they match the checksum in its footer."""
    try:
        with part.open("rb") as f:

            def read(offset: int, count: int) -> bytes:
                f.seek(offset)
                return f.read(count)

            size = f.seek(0, os.SEEK_END)
            at = _seal_at(read, size)
            if at is None:
                return _NO_SUM if size else "it is empty (0 bytes)"
            digest, recorded = hashlib.sha256(), read(at, 64)
            f.seek(0)
            _hash(digest, f, at)
            digest.update(_ZEROS)
            f.seek(at + 64)
            _hash(digest, f, size - at - 64)
    except OSError as exc:
        return f"it cannot be read ({exc.strerror or exc})"
    if digest.hexdigest().encode() != recorded:
        return "its bytes differ from those written: their SHA-256 does not match the one recorded in it"
    return None


def sealed(part: Path) -> bool:
    """Whether ``part`` records a checksum (parts written before rooflax recorded them do not)."""
    return damage(part) != _NO_SUM


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
        raise SpecError(
            f"dataset: {str(path)!r} is not a readable parquet file (truncated or damaged?): {reason}"
        ) from None
    meta = {key[len(PREFIX) :]: value for key, value in raw.items() if key.startswith(PREFIX)}
    return meta or None


@dataclass(frozen=True, slots=True, kw_only=True)
class DatasetInfo:
    """A checked dataset: its part files in order, its row count and its rooflax metadata."""

    path: Path
    parts: tuple[Path, ...]  # in part order
    rows: int
    metadata: dict  # of the first part, JSON values decoded (see dataset_metadata)
    #: how far the rows were checked: "footers" (the default), "sha256" (deep: every part's
    #: bytes match the checksum written in it), or "decoded" (deep, on a dataset written
    #: without checksums: every page was decoded)
    checked: str = "footers"

    def scan(self, *, where: str | None = None, field: str = "where") -> pl.LazyFrame:
        """The rows of every part, lazily, in part order; only those ``where`` holds (see :func:`filter_where`)."""
        return filter_where(pl.scan_parquet(list(self.parts)), where, field=field)

    def hardware(self) -> dict:
        """The accelerators of the dataset's spec, as :class:`~rooflax.config.hardware.Hardware` by name."""
        from rooflax.config.hardware import Hardware

        return {h["name"]: Hardware(**h) for h in self.metadata["spec"]["hardware"]}

    def models(self) -> dict:
        """The models of the dataset's spec, as :class:`~rooflax.config.models.Model` by name."""
        from rooflax.config.models import Model

        return {m["name"]: Model(**m) for m in self.metadata["spec"]["models"]}


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
            raise SpecError(
                f"dataset: {str(entry)!r} is not a part of a rooflax dataset (a dataset folder holds "
                "only part-NNNNNN.parquet files)"
            )
        parts.append(entry)
    if not parts:
        raise SpecError(f"dataset: {str(folder)!r} holds no part-NNNNNN.parquet files; not a rooflax dataset")
    return parts


def _odd_one_out(files: list[Path], footers: list[dict[str, str]], *, folder: bool) -> None:
    """Refuse a part whose sweep (version, kind, spec, chunk size, part count) is not the dataset's.

    The dataset's sweep is the majority's; on a tie, the one whose part count is the number
    of part files; if still tied, both parts are named.
    """
    identity = [tuple(meta.get(key) for key in _IDENTITY) for meta in footers]
    counts = Counter(identity)
    candidates = [ident for ident, n in counts.items() if n == max(counts.values())]
    if len(candidates) > 1 and folder:  # every part file of the folder is here
        whole = [ident for ident in candidates if ident[_IDENTITY.index("parts")] == str(len(files))]
        candidates = whole or candidates
    common = candidates[0]
    for file, ident in zip(files, identity, strict=True):
        if ident != common:
            differs = next(key for key, a, b in zip(_IDENTITY, ident, common, strict=True) if a != b)
            if len(candidates) > 1:
                other = files[identity.index(common)]
                raise SpecError(
                    f"dataset: {str(other)!r} and {str(file)!r} belong to different sweeps (their "
                    f"{differs} differs) and nothing tells which is this dataset's; re-run the sweep"
                )
            raise SpecError(
                f"dataset: {str(file)!r} belongs to another sweep (its {differs} differs from the other parts')"
            )


def _check_indices(folder: Path, files: list[Path], footers: list[dict[str, str]]) -> None:
    """Every part index from 0 to parts − 1 present once, each in the file of its name."""
    parts = int(footers[0]["parts"])
    for file, meta in zip(files, footers, strict=True):
        recorded = int(meta["part"])
        if recorded != int(PART.fullmatch(file.name).group(1)):  # type: ignore[union-attr]  # listed by PART
            raise SpecError(f"dataset: {str(file)!r} holds part {recorded} of its sweep, not the part its name says")
    present = {int(meta["part"]) for meta in footers}
    missing = [i for i in range(parts) if i not in present]
    if missing:
        raise SpecError(
            f"dataset: {str(folder / part_name(missing[0]))!r} is missing ({len(present)} of {parts} parts present)"
        )
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


def _expected_schema(files: list[Path], footers: list[dict[str, str]]) -> Mapping[str, pl.DataType]:
    """The columns every part must hold: those of the footer's spec and kind, or the first part's."""
    from rooflax._version import __version__
    from rooflax.config.spec import SweepSpec
    from rooflax.data.frames import schemas

    meta = footers[0]
    if _decoded(meta["version"]) == __version__ and meta["kind"] in ("ops", "summary"):
        try:
            ops, summary = schemas(SweepSpec.from_dict(_decoded(meta["spec"])))
            return ops if meta["kind"] == "ops" else summary
        except (SpecError, TypeError, ValueError, KeyError):  # a spec this version cannot read: trust part 0
            pass
    return _schema(files[0])


def _schema(file: Path) -> dict[str, pl.DataType]:
    try:
        return pl.read_parquet_schema(file)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise SpecError(
            f"dataset: {str(file)!r} is not a readable parquet file (truncated or damaged?): "
            f"{str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}"
        ) from None


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


def _decode_error(file: Path) -> str | None:
    """Why the rows of ``file`` cannot be decoded, or None (reads one part at a time: memory stays bounded)."""
    try:
        pl.read_parquet(file)
    except (pl.exceptions.PolarsError, pl.exceptions.PanicException, OSError) as exc:
        text = str(exc).strip()
        return f"its data cannot be decoded: {text.splitlines()[0] if text else type(exc).__name__}"
    return None


def _check_bytes(files: list[Path]) -> str:
    """Every part's bytes against its checksum ("sha256"); without checksums, every page decoded ("decoded")."""
    if not any(sealed(file) for file in files):  # written before rooflax recorded checksums
        for file in files:
            if (why := _decode_error(file)) is not None:
                raise SpecError(f"dataset: {str(file)!r} is damaged ({why}); {_REDO}")
        return "decoded"
    for file in files:
        if (why := damage(file)) is not None:
            raise SpecError(f"dataset: {str(file)!r} is damaged ({why}); {_REDO}")
    return "sha256"


def check_dataset(path: str | os.PathLike, *, deep: bool = False) -> DatasetInfo:
    """Check a dataset (folder, or one part file) against its footers; read no rows unless ``deep``.

    Args:
        path: a dataset folder written by :func:`rooflax.sweep_to_parquet`, or one of its
            part files.
        deep: also compare every part's bytes with the SHA-256 recorded in it when it
            was written (a dataset written before rooflax recorded checksums has every page
            decoded instead, which finds damaged compressed pages but not every flipped
            bit); reads the whole dataset once.

    Returns:
        The part files in order, the row count, the metadata and how far they were checked.

    Raises:
        SpecError: one line naming the missing, empty, truncated, foreign or damaged file.
    """
    deep = boolean("deep", deep)
    path = _as_path(path)
    if not path.exists():
        raise SpecError(f"dataset: {str(path)!r} does not exist")
    # a sweep's folder is renamed from OUT.partial only once every part is there: a manifest left in OUT is
    # a finish cut off at its last step (the next sweep to OUT removes it), not an unfinished sweep
    if path.is_dir() and path.name.endswith(".partial") and (path / MANIFEST).exists():
        raise SpecError(
            f"dataset: {str(path)!r} is an unfinished sweep; run the same sweep with --resume "
            "(resume=True) to finish it"
        )
    files = _part_files(path) if path.is_dir() else [path]
    footers = []
    for file in files:
        meta = read_footer(file)
        if meta is None or not all(key in meta for key in (*_IDENTITY, "part")):
            raise SpecError(f"dataset: {str(file)!r} was not written by rooflax (no rooflax metadata)")
        footers.append(meta)
    _odd_one_out(files, footers, folder=path.is_dir())
    if path.is_dir():
        _check_indices(path, files, footers)
    _check_schemas(files, footers)
    rows = _check_rows(files, footers)
    checked = _check_bytes(files) if deep else "footers"
    metadata = {key: _decoded(value) for key, value in footers[0].items()}
    return DatasetInfo(path=path, parts=tuple(files), rows=rows, metadata=metadata, checked=checked)


@contextlib.contextmanager
def reading(path: str | os.PathLike) -> Iterator[None]:
    """Read the rows of dataset ``path`` in the body; a polars error that a damaged part caused
    becomes one line naming that part (any other error is raised as it was).

    Raises:
        SpecError: the damaged part, and how to find and repair every one.
    """
    try:
        yield
    except (pl.exceptions.PolarsError, pl.exceptions.PanicException):
        for file in check_dataset(path).parts:
            why = damage(file) if sealed(file) else _decode_error(file)
            if why is not None:
                raise SpecError(
                    f"dataset: {str(file)!r} is damaged ({why}); check every part with `rooflax check "
                    f"--deep {path!s}` and {_REDO}"
                ) from None
        raise


def scan_dataset(path: str | os.PathLike, *, where: str | None = None) -> pl.LazyFrame:
    """A dataset as a LazyFrame, once its parts pass :func:`check_dataset`.

    Use this instead of ``polars.scan_parquet(DIR)``, which silently reads fewer rows
    when a part is missing.

    Args:
        path: a dataset folder, or one part file.
        where: only the rows this SQL condition holds for (:func:`filter_where`), e.g.
            ``"phase = 'decode' AND batch >= 8"``.

    Raises:
        SpecError: one line naming the missing, empty, truncated or foreign file, or a bad ``where``.
    """
    return check_dataset(path).scan(where=where)


def dataset_metadata(path: str | os.PathLike) -> dict:
    """The rooflax metadata of a checked dataset folder or part file, JSON values decoded.

    Keys: ``version``, ``kind`` (``ops`` or ``summary``), ``spec`` (the whole spec,
    presets expanded: what resume and the identity checks compare), ``axes`` (each axis as
    the user gave it: a ``{start, stop, step | powers_of}`` table or a list),
    ``columns`` (per column, ``{"unit": ..., "scope": ...}``: ``flops`` is FLOP in one
    layer, ``lm_head`` rows once per model, ``time_s`` seconds, ...), ``command`` (the
    command line that made it), ``created`` (UTC, ISO 8601), ``model``, ``hardware``,
    ``dtype`` (of the first part's rows), ``part``, ``parts``, ``rows`` and ``sha256`` (of
    the first part: its checksum, see :func:`damage`) and ``chunk_size``; numbers are
    numbers. Datasets written by older versions lack ``axes``, ``columns``, ``command``,
    ``created`` and ``sha256``.

    Args:
        path: a dataset folder or one of its part files, written by rooflax.
    """
    return check_dataset(path).metadata


def filter_where(lf: pl.LazyFrame, where: str | None, *, field: str = "where") -> pl.LazyFrame:
    """``lf`` filtered by the SQL condition ``where`` (None: all rows), or a one-line SpecError naming ``field``.

    A name column (a polars Enum: ``phase``, ``op``, ...) compared with a value it never
    takes (``phase = 'decod'``, ``op IN ('qkv')``) is refused with the close matches among
    its values, whatever holds the rows (an in-memory frame matches nothing silently, a
    parquet scan fails on its statistics). The filter is then tried on one real row: polars
    checks a type against a column's (``phase = 5``) only when there is data.

    Args:
        lf: the rows (a LazyFrame of a dataset or of a frame).
        where: a SQL condition, e.g. ``"phase = 'decode' AND batch >= 8"``.
        field: how errors name the condition (a CLI flag, say).

    Raises:
        SpecError: an empty or invalid condition, or a name column compared with a value it never takes.
    """
    if where is None:
        return lf
    if not where.strip():
        raise SpecError(f"{field}: empty expression; give a SQL condition, e.g. \"phase = 'decode' AND batch >= 8\"")
    enums = {
        name: dtype.categories.to_list() for name, dtype in lf.collect_schema().items() if isinstance(dtype, pl.Enum)
    }

    def no_value(value: str, owners: list[str]) -> SpecError:
        values = enums[owners[0]] if owners else []
        hint = close_matches(value, values)
        did_you_mean = f"; did you mean {' or '.join(map(repr, hint))}?" if hint else ""
        message = (
            f"{value!r} is no value of {owners[0]}{did_you_mean} (allowed: {', '.join(values)})"
            if owners
            else f"{value!r} is no value of any of {', '.join(enums)}"
        )
        return SpecError(f"{field}: cannot apply {where!r}: {message}")

    column = rf"\b(?P<column>{'|'.join(map(re.escape, enums))})"
    literal = r"'((?:[^']|'')*)'"
    compared = (
        []
        if not enums
        else [
            (m["column"], [m["value"]])
            for m in re.finditer(rf"{column}\s*(?:=|==|!=|<>)\s*{literal.replace('(', '(?P<value>', 1)}", where)
        ]
    )
    compared += (
        []
        if not enums
        else [
            (m["column"], re.findall(literal, m["values"]))
            for m in re.finditer(rf"{column}\s+(?i:NOT\s+)?(?i:IN)\s*\((?P<values>[^)]*)\)", where)
        ]
    )
    for name, values in compared:
        for value in (v.replace("''", "'") for v in values):
            if value not in enums[name]:
                raise no_value(value, [name])
    try:
        expr = pl.sql_expr(where)
        lf.head(1).filter(expr).collect()
    except (pl.exceptions.PolarsError, ValueError) as exc:
        message = str(exc).strip().splitlines()[0]
        bad = re.search(r'to `enum` failed for value "([^"]*)"', message)
        if bad:
            raise no_value(bad[1], [name for name, values in enums.items() if close_matches(bad[1], values)]) from None
        if "expected String type, got: enum" in message:
            message += (
                "; name columns (model, hardware, dtype, phase, op, group, bound) are enums: compare them "
                "with = or IN, or cast for string functions, e.g. CAST(op AS VARCHAR) LIKE '%proj'"
            )
        raise SpecError(f"{field}: cannot apply {where!r}: {message}") from None
    return lf.filter(expr)
