"""The output folder of a sweep: path checks, the writer's lock, and the final swap.

Parts are written to ``OUT.partial/`` while this process holds an exclusive ``flock`` on
``OUT.partial/.rooflax.lock``, so a second sweep (or a ``--resume``) to the same output
stops with a clear error instead of writing over the first. When every part is there,
an existing ``OUT`` (replaced with ``overwrite``) is marked and renamed ``OUT.old``,
``OUT.partial`` is renamed ``OUT``, and ``OUT.old`` is deleted. A process killed between
those renames leaves a marked ``OUT.old`` that the next sweep to ``OUT`` puts back (when
``OUT`` is missing) or deletes (when ``OUT`` is there). Only folders holding nothing but
rooflax parts (and rooflax's own hidden files) are ever replaced or deleted.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from rooflax.errors import SpecError
from rooflax.scan import MANIFEST, PART, read_footer

__all__ = ["check_output", "clear_partial", "disk_error", "finalize", "lock_partial", "recover_swap", "replaceable",
           "siblings"]

LOCK = ".rooflax.lock"
#: Written into ``OUT`` just before it is renamed ``OUT.old``: proves the trash is ours.
REPLACED = ".rooflax-replaced"
_OURS = (MANIFEST, LOCK, REPLACED)
#: Suffixes of single files: a dataset is a folder, so an output named like one is a mistake.
_FILE_SUFFIXES = (".csv", ".tsv", ".parquet", ".pq", ".json", ".jsonl", ".ndjson", ".arrow", ".feather", ".ipc",
                  ".xlsx", ".txt", ".toml", ".png", ".svg", ".pdf")


def siblings(out: Path) -> tuple[Path, Path]:
    """``OUT.partial`` and ``OUT.old``."""
    return out.with_name(out.name + ".partial"), out.with_name(out.name + ".old")


def check_output(out: object) -> Path:
    """The output folder as a Path, refusing what cannot be a new dataset folder."""
    if isinstance(out, bool) or not isinstance(out, str | os.PathLike):
        raise SpecError(f"output: expected a dataset folder path, got {out!r}")
    text = os.fspath(out)
    if not text.strip():
        raise SpecError("output: empty path; give the dataset folder to write, e.g. -o out/sweep")
    path = Path(text)
    if path.name in ("", ".", ".."):
        raise SpecError(f"output: {text!r} is not a name for a new dataset folder; give one, e.g. -o out/sweep")
    if path.suffix.lower() in _FILE_SUFFIXES:
        raise SpecError(f"output: {text!r} looks like a {path.suffix} file name; a dataset is a folder of parquet "
                        f"parts, name it without a suffix (e.g. {str(path.with_suffix(''))!r})")
    for parent in path.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise SpecError(f"output: {str(parent)!r} is a file, so no folder {text!r} can be made in it")
            break
    if path.exists() and not path.is_dir():
        raise SpecError(f"output: {text!r} exists and is not a folder")
    return path


def replaceable(folder: Path, *, partial: bool = False) -> None:
    """Refuse unless ``folder`` holds only rooflax parts (perhaps damaged) and rooflax's own files."""
    for entry in folder.iterdir():
        name = entry.name
        ours = name in _OURS or (partial and name.startswith(".part-") and name.endswith(".tmp"))
        if ours or (PART.fullmatch(name) and entry.is_file() and _damaged_or_ours(entry)):
            continue
        raise SpecError(f"output: {str(folder)!r} holds {name!r}, which rooflax did not write; refusing to replace "
                        "or delete it (move it away, or choose another output)")


def _damaged_or_ours(part: Path) -> bool:
    try:
        return read_footer(part) is not None
    except SpecError:  # an empty or truncated part of an interrupted or damaged sweep
        return True


def recover_swap(out: Path, *, overwrite: bool) -> None:
    """Undo or finish a final swap that a killed process left half done (a marked ``OUT.old``).

    Refuses to ``overwrite`` while a folder ``OUT.old`` that rooflax did not leave is in the way.
    """
    _, old = siblings(out)
    if (old / REPLACED).exists():
        if out.exists():
            replaceable(old)
            shutil.rmtree(old)
        else:
            os.replace(old, out)
            (out / REPLACED).unlink()
    elif overwrite and out.exists() and old.exists():
        raise SpecError(f"output: {str(old)!r} is in the way of replacing {str(out)!r} and rooflax did not leave "
                        "it; move it away")


@contextlib.contextmanager
def lock_partial(out: Path) -> Iterator[bool]:
    """Create or open ``OUT.partial`` and hold its lock; yields whether this call created it.

    A folder this call created is removed again if the body fails before writing a part.
    """
    partial, _ = siblings(out)
    try:
        partial.mkdir(parents=True)
        created = True
    except FileExistsError:
        created = False
    except OSError as exc:
        raise SpecError(f"output: cannot create {str(partial)!r}: {exc.strerror or exc}") from None
    try:
        fd = os.open(partial / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        if created:
            shutil.rmtree(partial, ignore_errors=True)
        raise SpecError(f"output: cannot write in {str(partial)!r}: {exc.strerror or exc}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SpecError(f"output: another sweep is writing to {str(out)!r} (it holds the lock in "
                            f"{str(partial)!r}); wait for it to finish or stop it") from None
        try:
            yield created
        except BaseException:
            if created and partial.exists() and not any(partial.glob("part-*.parquet")):
                shutil.rmtree(partial, ignore_errors=True)
            raise
    finally:
        os.close(fd)


def clear_partial(partial: Path) -> None:
    """Empty an interrupted sweep's ``OUT.partial`` (keeping the lock file) to start over."""
    replaceable(partial, partial=True)
    for entry in partial.iterdir():
        if entry.name != LOCK:
            entry.unlink()


def finalize(out: Path) -> None:
    """Swap the finished ``OUT.partial`` in as ``OUT``, replacing an existing ``OUT``."""
    partial, old = siblings(out)
    if out.exists():
        (out / REPLACED).touch()
        os.replace(out, old)
    os.replace(partial, out)
    for name in (MANIFEST, LOCK):
        (out / name).unlink(missing_ok=True)
    if old.exists():
        shutil.rmtree(old)


def disk_error(exc: OSError, partial: Path, doing: str) -> SpecError:
    """A one-line error for a failed write into ``partial``; finished parts stay for resume."""
    keep = f"finished parts are kept in {str(partial)!r}; run the same command with --resume (resume=True)"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return SpecError(f"output: the disk holding {str(partial)!r} is full ({exc.strerror}) writing {doing}; "
                         f"free some space, then: {keep}")
    return SpecError(f"output: cannot write {doing} in {str(partial)!r} ({exc.strerror or exc}); {keep}")
