"""Writing files so that a reader never sees half of one, and a killed writer leaves nothing behind for long."""

from __future__ import annotations

import errno
import fcntl
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = ["atomic_write", "output_file", "outside_datasets", "write_output"]


def temporary_name(path: Path) -> Path:
    """The hidden name ``path`` is written under before it is renamed into place: ``.NAME.tmp``."""
    return path.with_name(f".{path.name}.tmp")


def atomic_write(path: Path, write: Callable[[Path], object]) -> Path:
    """Call ``write`` on a hidden temporary name beside ``path``, then rename it to ``path``.

    The temporary file (:func:`temporary_name`) is locked while it is written and removed
    if ``write`` fails. A process killed mid-write leaves it, never a partial ``path``; the
    next write of ``path`` finds it unlocked (its writer is gone) and writes over it, so a
    leftover lives only until then. One that is still locked belongs to another live
    writer of ``path``: that is refused (SpecError) rather than written over. The file is
    flushed to disk (fsync) before the rename, so after a crash ``path`` is whole or absent.
    """
    from rooflax.errors import SpecError

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(path)
    fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SpecError(
                f"output: another process is writing {str(path)!r} (it holds {str(tmp)!r}); wait for "
                "it to finish or stop it"
            ) from None
        try:
            write(tmp)
            sync = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(sync)
            finally:
                os.close(sync)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    finally:
        os.close(fd)
    return path


def _io_failure(exc: BaseException) -> str | None:
    """Why a write failed, when ``exc`` is an I/O error (polars wraps its parquet writer's in ComputeError)."""
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    if isinstance(exc, OSError):
        full = exc.errno in (errno.ENOSPC, errno.EDQUOT) or "os error 28" in text
        reason = exc.strerror or text
    elif type(exc).__name__ == "ComputeError" and "IO error" in text:
        full, reason = "os error 28" in text, text.split("IO error: ")[-1]
    else:
        return None
    return f"the disk is full: {reason}" if full else reason


def write_output(path: Path, write: Callable[[Path], object], field: str) -> Path:
    """:func:`atomic_write` for a file the user asked for: a failed write (a full or read-only
    disk, a file too large) is a one-line SpecError naming ``field``, and nothing is left."""
    from rooflax.errors import SpecError

    try:
        return atomic_write(path, write)
    except Exception as exc:
        reason = _io_failure(exc)
        if reason is None:
            raise
        raise SpecError(f"{field}: cannot write {str(path)!r} ({reason}); nothing was written") from None


def _check_writable(path: Path, field: str) -> None:
    """Refuse ``path`` when its folder (or the nearest one that exists) takes no new file."""
    from rooflax.errors import SpecError

    folder = next(p for p in Path(os.path.abspath(path)).parents if p.exists())
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".probe", dir=folder)
    except OSError as exc:
        raise SpecError(
            f"{field}: cannot write {str(path)!r}: {str(folder)!r} takes no new file ({exc.strerror or exc})"
        ) from None
    os.close(fd)
    os.unlink(probe)


def output_file(path: str | os.PathLike[str], field: str, *, suffixes: tuple[str, ...], overwrite: bool) -> Path:
    """``path`` as a file rooflax may write, checked before any work is done.

    Raises SpecError (one line, naming ``field``) for a value that is no path, an empty
    name, a suffix not in ``suffixes``, a folder, a parent that is a file, an existing file
    when ``overwrite`` is false, or a folder that takes no new file (read-only, no permission).
    """
    from rooflax.errors import SpecError, boolean

    overwrite = boolean("overwrite", overwrite)
    allowed = ", ".join(suffixes)
    if isinstance(path, bool) or not isinstance(path, str | os.PathLike):
        raise SpecError(f"{field}: expected a file path ending in {allowed}, got {path!r}")
    if not str(path).strip():
        raise SpecError(f"{field}: the file name is empty; give one ending in {allowed}")
    path = Path(path)
    if path.is_dir():
        raise SpecError(f"{field}: {str(path)!r} is a folder; give a file name ending in {allowed}")
    if path.suffix.lower() not in suffixes:
        raise SpecError(f"{field}: {str(path)!r} has format {path.suffix or '(none)'!r}; allowed: {allowed}")
    parent = next((p for p in path.parents if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise SpecError(f"{field}: cannot write {str(path)!r}: {str(parent)!r} is a file, not a folder")
    if path.exists() and not overwrite:
        raise SpecError(f"{field}: {str(path)!r} already exists; pass overwrite (--overwrite) to replace it")
    outside_datasets(path, field)
    _check_writable(path, field)
    return path


def _dataset_folder(folder: Path) -> bool:
    """Whether ``folder`` is (or is being written as) a rooflax dataset: a sweep's ``OUT.partial``, or part 0."""
    from rooflax.data.scan import MANIFEST, part_name

    return folder.name.endswith(".partial") or (folder / part_name(0)).is_file() or (folder / MANIFEST).is_file()


def outside_datasets(path: Path, field: str, *, dataset: Path | None = None) -> None:
    """Refuse a file ``path`` inside a rooflax dataset folder or any ``*.partial`` folder.

    A dataset folder holds only its parts, so a file written into it would make the dataset
    fail ``check``. ``dataset`` names a dataset about to be written (a sweep's output): the
    file may not be inside it or its ``.partial`` either.

    Raises:
        SpecError: one line naming ``field`` and the dataset folder.
    """
    from rooflax.errors import SpecError

    target = Path(os.path.abspath(path))
    inside = next((p for p in target.parents if _dataset_folder(p)), None)
    if inside is None and dataset is not None:
        own = Path(os.path.abspath(dataset))
        inside = next((p for p in (own, own.with_name(own.name + ".partial")) if p in target.parents), None)
    if inside is not None:
        raise SpecError(
            f"{field}: {str(path)!r} is inside the rooflax dataset folder {str(inside)!r}, which "
            "may hold only its parts; write it outside that folder"
        )
