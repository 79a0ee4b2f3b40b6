"""The output folder of a sweep: path checks, the writer's lock, and the final swap.

Three names belong to a sweep to ``OUT``: ``OUT`` (the dataset), ``OUT.partial`` (the
parts of the run under way or interrupted, with its run manifest) and ``OUT.old`` (a
replaced dataset, while it is deleted). So an output may not itself be named ``*.partial``
or ``*.old``, and neither ``OUT`` nor ``OUT.partial`` may be a symbolic link (nor an
``OUT.old`` in the way of a replacement): rooflax renames and deletes these folders, and
would act on the link instead of the folder it names (give the real path). Only folders
holding nothing but rooflax parts (and rooflax's own hidden files) are ever replaced or
deleted; an ``OUT.partial`` without a run manifest was not left by
rooflax and is never used or emptied, and an ``OUT.old`` is deleted only when rooflax
marked it (its marker names the folder's inode, so a copy is not marked) or it is empty
(nothing to lose: a deletion killed after its marker went).

Parts are written to ``OUT.partial/`` while this process holds an exclusive ``flock`` on
``OUT.partial/.rooflax.lock``, so a second sweep (or a ``--resume``) to the same output
stops with a clear error instead of writing over the first. Everything that decides
what the swap may do is checked before any work and again under the lock (a dataset
that appeared meanwhile is never replaced without ``overwrite``), and once more just
before the swap. The swap, in order:

1. every part (as it is written: :func:`rooflax.data._atomic.atomic_write`), then ``OUT.partial``
   itself, are flushed to disk (fsync);
2. an existing ``OUT`` (replaced with ``overwrite``) is marked and renamed ``OUT.old``;
3. ``OUT.partial`` is renamed ``OUT`` (and the parent folder flushed);
4. ``OUT.old`` is deleted, its marker last;
5. the run manifest, then the lock file, are removed from ``OUT``.

A process killed in between leaves one of these, which the next sweep to ``OUT`` (under
the lock) recognises: before 2, a complete ``OUT.partial`` that ``--resume`` finishes
without computing anything; after 2, a marked ``OUT.old`` and no ``OUT``: it is put back;
after 3, an ``OUT`` still holding the manifest and lock: a complete dataset (readers take
it as one, as the folder is no longer named ``.partial``) whose steps 4 and 5 are done
then (``--resume`` of the same run just does those); during 4, an ``OUT.old`` still marked
(or empty): it is deleted.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from rooflax.data.scan import MANIFEST, PART, read_footer
from rooflax.errors import SpecError

__all__ = [
    "check_output",
    "check_swap",
    "clear_partial",
    "disk_error",
    "finalize",
    "finish_leftover",
    "leftover_manifest",
    "lock_partial",
    "recover",
    "replaceable",
    "siblings",
]

LOCK = ".rooflax.lock"
#: Written into ``OUT`` just before it is renamed ``OUT.old``: proves the trash is ours.
REPLACED = ".rooflax-replaced"
_OURS = (MANIFEST, LOCK, REPLACED)
#: Suffixes of single files: a dataset is a folder, so an output named like one is a mistake.
_FILE_SUFFIXES = (
    ".csv",
    ".tsv",
    ".parquet",
    ".pq",
    ".json",
    ".jsonl",
    ".ndjson",
    ".arrow",
    ".feather",
    ".ipc",
    ".xlsx",
    ".txt",
    ".toml",
    ".png",
    ".svg",
    ".pdf",
)
#: The names of rooflax's own sibling folders: an output named so would be taken for one.
_SIBLING_SUFFIXES = (".partial", ".old")
#: How often to take the lock again when the folder it was in was just renamed away.
_LOCK_TRIES = 5


def siblings(out: Path) -> tuple[Path, Path]:
    """``OUT.partial`` and ``OUT.old``."""
    return out.with_name(out.name + ".partial"), out.with_name(out.name + ".old")


def _not_a_folder(path: Path) -> str | None:
    """What ``path`` is when it exists but is not a real folder ("a symbolic link to ...", "a file"), else None."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(mode):
        return f"a symbolic link (to {os.readlink(path)!r})"
    return None if stat.S_ISDIR(mode) else "a file"


def check_output(out: object) -> Path:
    """The output folder as a Path, refusing what cannot be a new dataset folder.

    Refuses a name of rooflax's own sibling folders (``*.partial``, ``*.old``), an
    ``OUT`` or ``OUT.partial`` that is a symbolic link (dangling or not) or a file.
    """
    if isinstance(out, bool) or not isinstance(out, str | os.PathLike):
        raise SpecError(f"output: expected a dataset folder path, got {out!r}")
    text = os.fspath(out)
    if not text.strip():
        raise SpecError("output: empty path; give the dataset folder to write, e.g. -o out/sweep")
    path = Path(text)
    if path.name in ("", ".", ".."):
        raise SpecError(f"output: {text!r} is not a name for a new dataset folder; give one, e.g. -o out/sweep")
    if path.suffix.lower() in _FILE_SUFFIXES:
        raise SpecError(
            f"output: {text!r} looks like a {path.suffix} file name; a dataset is a folder of parquet "
            f"parts, name it without a suffix (e.g. {str(path.with_suffix(''))!r})"
        )
    if path.suffix in _SIBLING_SUFFIXES:
        raise SpecError(
            f"output: {text!r} ends in {path.suffix!r}, which rooflax keeps for its own folders beside "
            "a dataset (OUT.partial: an unfinished sweep, OUT.old: a replaced dataset); name it "
            f"otherwise (e.g. {str(path.with_suffix(''))!r})"
        )
    for parent in path.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise SpecError(f"output: {str(parent)!r} is a file, so no folder {text!r} can be made in it")
            break
    what = _not_a_folder(path)
    if what is not None and what != "a file":
        real = os.path.realpath(path)
        hint = f" (-o {real!r})" if real != os.path.abspath(path) else ""
        raise SpecError(
            f"output: {text!r} is {what}; rooflax renames and replaces the dataset folder itself, so "
            f"give the real path of the folder to write{hint}"
        )
    if what is not None:
        raise SpecError(f"output: {text!r} exists and is not a folder")
    partial, _ = siblings(path)
    if (what := _not_a_folder(partial)) is not None:
        raise SpecError(
            f"output: {str(partial)!r} is {what}, where rooflax keeps the unfinished parts of a sweep to "
            f"{text!r}; move it away"
        )
    return path


def replaceable(folder: Path, *, partial: bool = False) -> None:
    """Refuse unless ``folder`` holds only rooflax parts (perhaps damaged) and rooflax's own files."""
    for entry in folder.iterdir():
        name = entry.name
        ours = name in _OURS or (partial and name.startswith(".part-") and name.endswith(".tmp"))
        if ours or (PART.fullmatch(name) and _not_a_folder(entry) == "a file" and _damaged_or_ours(entry)):
            continue
        raise SpecError(
            f"output: {str(folder)!r} holds {name!r}, which rooflax did not write; refusing to replace "
            "or delete it (move it away, or choose another output)"
        )


def _damaged_or_ours(part: Path) -> bool:
    try:
        return read_footer(part) is not None
    except SpecError:  # an empty or truncated part of an interrupted or damaged sweep
        return True


def _identity(folder: Path) -> str:
    """The marker of a replaced ``folder``: its inode number, which a rename keeps and a copy does not (the device
    number is left out: on a network filesystem each machine sees its own)."""
    return str(folder.stat().st_ino)


def _marked(old: Path) -> bool:
    """Whether ``old`` is a replaced dataset rooflax left: a real folder holding a marker that names it."""
    if _not_a_folder(old) is not None or not old.exists():
        return False
    try:
        return (old / REPLACED).read_text() == _identity(old)
    except (OSError, UnicodeDecodeError):
        return False


def _removable(old: Path) -> bool:
    """Whether ``old`` may be deleted: marked, or an empty real folder (a deletion killed after the marker went)."""
    return _marked(old) or (old.exists() and _not_a_folder(old) is None and not any(old.iterdir()))


def _delete_marked(old: Path) -> None:
    """Delete a removable ``OUT.old``: parts, then the marker, then the folder, so a kill half-way leaves it marked."""
    replaceable(old)
    for entry in old.iterdir():
        if entry.name != REPLACED:
            entry.unlink(missing_ok=True)
    (old / REPLACED).unlink(missing_ok=True)
    old.rmdir()


def check_swap(out: Path, *, overwrite: bool) -> None:
    """Refuse what the final swap must not do: replace an ``OUT`` without ``overwrite``, replace a folder holding
    files rooflax did not write, or rename ``OUT`` onto an ``OUT.old`` rooflax did not leave."""
    what = _not_a_folder(out)
    if what is not None:  # became one after check_output
        raise SpecError(f"output: {str(out)!r} is {what}, not a dataset folder rooflax can replace")
    if not out.exists():
        return
    if not overwrite:
        raise SpecError(f"output: {str(out)!r} already exists; pass overwrite (--overwrite) to replace it")
    replaceable(out)
    _, old = siblings(out)
    if os.path.lexists(old) and not _removable(old):
        kind = f" ({what})" if (what := _not_a_folder(old)) else ""
        raise SpecError(
            f"output: {str(old)!r}{kind} is in the way of replacing {str(out)!r} and rooflax did not "
            "leave it; move it away"
        )


def _lock(path: Path) -> int | None:
    """An fd holding an exclusive lock on ``path``, None if another process holds it; raises FileNotFoundError."""
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def leftover_manifest(out: Path) -> str | None:
    """The run manifest still in ``OUT`` when a swap was killed after renaming ``OUT.partial``, else None."""
    if _not_a_folder(out) is not None:
        return None
    try:
        return (out / MANIFEST).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def finish_leftover(out: Path) -> None:
    """Do the last steps of a swap killed after ``OUT.partial`` became ``OUT``: delete the marked ``OUT.old``, remove
    the manifest and lock from ``OUT``.

    Raises SpecError when the process that renamed it still runs (it holds the lock).
    """
    if _not_a_folder(out) is not None or not any((out / name).exists() for name in (MANIFEST, LOCK)):
        return
    try:
        fd = _lock(out / LOCK)
    except FileNotFoundError:  # the manifest alone: whoever renamed it removed the lock file after it
        fd = -1
    if fd is None:
        raise SpecError(f"output: another sweep is finishing {str(out)!r} (it holds the lock in it); wait for it")
    try:
        _, old = siblings(out)
        if _removable(old):  # marked, or emptied by a deletion killed after its marker went
            _delete_marked(old)
        (out / MANIFEST).unlink(missing_ok=True)
        (out / LOCK).unlink(missing_ok=True)
    finally:
        if fd >= 0:
            os.close(fd)


def recover(out: Path) -> None:
    """Finish or undo a final swap that a killed process left half done (call under the lock of ``OUT.partial``)."""
    finish_leftover(out)
    _, old = siblings(out)
    if _marked(old):
        if out.exists():
            _delete_marked(old)
        else:
            os.replace(old, out)
    if out.exists() and _not_a_folder(out) is None:  # a marker left by a kill before its folder was renamed
        (out / REPLACED).unlink(missing_ok=True)


def _same_file(fd: int, path: Path) -> bool:
    try:
        here, there = os.fstat(fd), path.stat()
    except FileNotFoundError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


@contextlib.contextmanager
def lock_partial(out: Path) -> Iterator[bool]:
    """Create or open ``OUT.partial`` and hold its lock; yields whether this call created it.

    The lock is the one in the folder now named ``OUT.partial``: a lock taken on a folder
    another sweep renamed to ``OUT`` meanwhile is let go and taken again. A folder this
    call created is removed again if the body fails before writing a part.
    """
    partial, _ = siblings(out)
    for _ in range(_LOCK_TRIES):
        try:
            partial.mkdir(parents=True)
            created = True
        except FileExistsError:
            created = False
        except OSError as exc:
            raise SpecError(f"output: cannot create {str(partial)!r}: {exc.strerror or exc}") from None
        try:
            fd = os.open(partial / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        except FileNotFoundError:
            continue  # renamed away by a sweep finishing: make a fresh one
        except OSError as exc:
            if created:
                _remove_unused(partial)
            raise SpecError(f"output: cannot write in {str(partial)!r}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise SpecError(
                f"output: another sweep is writing to {str(out)!r} (it holds the lock in "
                f"{str(partial)!r}); wait for it to finish or stop it"
            ) from None
        if _same_file(fd, partial / LOCK):
            break
        os.close(fd)  # that folder was renamed to OUT while this process waited: take the new one's lock
    else:
        raise SpecError(f"output: other sweeps to {str(out)!r} kept finishing while this one started; run it again")
    try:
        try:
            yield created
        except BaseException:
            if created:
                _remove_unused(partial)
            raise
    finally:
        os.close(fd)


def _remove_unused(partial: Path) -> None:
    """Remove an ``OUT.partial`` this process made, unless a part was written into it."""
    if partial.exists() and not any(partial.glob("part-*.parquet")):
        for entry in partial.iterdir():
            entry.unlink(missing_ok=True)
        partial.rmdir()


def clear_partial(partial: Path) -> None:
    """Empty an interrupted sweep's ``OUT.partial`` (keeping the lock file) to start over."""
    replaceable(partial, partial=True)
    for entry in partial.iterdir():
        if entry.name != LOCK:
            entry.unlink()


def _fsync(path: Path) -> None:
    """Flush a file, or a folder's entries, to disk (a filesystem that cannot sync a folder is let be)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as exc:
        if not path.is_dir() or exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


def finalize(out: Path, *, overwrite: bool) -> None:
    """Swap the finished ``OUT.partial`` in as ``OUT``, replacing an existing ``OUT`` only with ``overwrite``.

    Raises:
        SpecError: a dataset appeared at ``OUT`` while the sweep ran (without ``overwrite``),
            or something else is in the way; the parts stay in ``OUT.partial`` for ``--resume``.
        OSError: the disk failed; the parts stay in ``OUT.partial``.
    """
    partial, old = siblings(out)
    _fsync(partial)  # the parts are flushed as they are written (atomic_write); this makes their names durable
    try:
        check_swap(out, overwrite=overwrite)
    except SpecError as exc:
        raise SpecError(
            f"{exc} (found as this sweep finished; its parts are kept in {str(partial)!r}, so the same "
            "command with --resume finishes it once that is resolved)"
        ) from None
    replaced = out.exists()
    if replaced:
        if os.path.lexists(old):  # check_swap made sure rooflax may delete it
            _delete_marked(old)
        (out / REPLACED).write_text(_identity(out))
        os.replace(out, old)
    os.replace(partial, out)
    _fsync(out.parent)
    if replaced:
        _delete_marked(old)
    for name in (MANIFEST, LOCK):
        (out / name).unlink(missing_ok=True)


def disk_error(exc: OSError, partial: Path, doing: str) -> SpecError:
    """A one-line error for a failed write into ``partial``; finished parts stay for resume."""
    keep = f"finished parts are kept in {str(partial)!r}; run the same command with --resume (resume=True)"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return SpecError(
            f"output: the disk holding {str(partial)!r} is full ({exc.strerror}) writing {doing}; "
            f"free some space, then: {keep}"
        )
    return SpecError(f"output: cannot write {doing} in {str(partial)!r} ({exc.strerror or exc}); {keep}")
