"""Writing files so that a reader never sees half of one."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

__all__ = ["atomic_write", "output_file", "outside_datasets"]


def atomic_write(path: Path, write: Callable[[Path], object]) -> Path:
    """Call ``write`` on a hidden temporary name beside ``path``, then rename it to ``path``.

    The temporary file is removed if ``write`` fails; a process killed mid-write leaves
    only a ``.NAME.tmp`` file, never a partial ``path``.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def output_file(path: str | Path, field: str, *, suffixes: tuple[str, ...], overwrite: bool) -> Path:
    """``path`` as a file rooflax may write, checked before any work is done.

    Raises SpecError (one line, naming ``field``) for an empty name, a suffix not in
    ``suffixes``, a folder, a parent that is a file, or an existing file when
    ``overwrite`` is false.
    """
    from rooflax.errors import SpecError, boolean

    overwrite = boolean("overwrite", overwrite)
    allowed = ", ".join(suffixes)
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
    return path


def _dataset_folder(folder: Path) -> bool:
    """Whether ``folder`` is (or is being written as) a rooflax dataset: a sweep's ``OUT.partial``, or part 0."""
    from rooflax.scan import MANIFEST, part_name

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
        raise SpecError(f"{field}: {str(path)!r} is inside the rooflax dataset folder {str(inside)!r}, which "
                        "may hold only its parts; write it outside that folder")
