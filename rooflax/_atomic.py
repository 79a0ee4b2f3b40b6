"""Writing files so that a reader never sees half of one."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

__all__ = ["atomic_write"]


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
