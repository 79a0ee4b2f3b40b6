"""Reading the text files rooflax is given (specs, model and hardware files), with one-line errors."""

from __future__ import annotations

import errno
from pathlib import Path

from rooflax.errors import SpecError

__all__ = ["read_text"]


def read_text(path: str | Path, what: str, expected: str) -> str:
    """The UTF-8 text of ``path``, or a one-line SpecError naming the file and what it was read as.

    Args:
        path: the file to read.
        what: the field the path was given as, first in the message (``spec``, ``model file``).
        expected: what the file should be, ending the message (``a TOML sweep spec``).

    Raises:
        SpecError: the file is missing, a directory, a symlink loop, unreadable, or not UTF-8.
    """
    shown = repr(str(path))
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        problem = "does not exist"
    except IsADirectoryError:
        problem = "is a directory"
    except PermissionError:
        problem = "cannot be read (permission denied)"
    except UnicodeDecodeError as exc:
        problem = f"is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start})"
    except OSError as exc:
        problem = "is a symlink loop" if exc.errno == errno.ELOOP else f"cannot be read ({exc.strerror})"
    raise SpecError(f"{what}: {shown} {problem}; expected {expected}")
