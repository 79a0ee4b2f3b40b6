"""The one error family of rooflax, and the helpers that word its messages."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["DeviceError", "RooflaxError", "SpecError"]


class RooflaxError(ValueError):
    """Base of every error rooflax raises for bad input or an unusable environment."""


class SpecError(RooflaxError):
    """A value in a spec, a preset file, a keyword argument or a flag is not allowed."""


class DeviceError(RooflaxError):
    """The device cannot run what was asked (dtype, memory, missing accelerator)."""


def unknown_name(field: str, given: object, allowed: Iterable[str], what: str = "name") -> SpecError:
    """An error for a name (or key, ``what``) that is not among ``allowed``, with close matches."""
    allowed = sorted(allowed)
    hint = difflib.get_close_matches(str(given), allowed, n=3, cutoff=0.5)
    did_you_mean = f"; did you mean {' or '.join(repr(h) for h in hint)}?" if hint else ""
    return SpecError(
        f"{field}: unknown {what} {given!r}{did_you_mean} (allowed: {', '.join(allowed)})"
    )


def positive_int(field: str, value: object) -> int:
    """Return ``value`` as an int if it is a positive integer, else raise SpecError."""
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer() and value > 0:
            return int(value)
        raise SpecError(f"{field}: expected a positive integer, got {value!r}")
    if value <= 0:
        raise SpecError(f"{field}: expected a positive integer, got {value!r}")
    return value


def positive_float(field: str, value: object) -> float:
    """Return ``value`` as a float if it is a positive finite number, else raise."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SpecError(f"{field}: expected a positive number, got {value!r}")
    if not value > 0 or value == float("inf"):
        raise SpecError(f"{field}: expected a positive number, got {value!r}")
    return float(value)


def check_keys(where: str, table: dict, required: Iterable[str], optional: Iterable[str]) -> None:
    """Reject unknown keys (with close matches) and missing required keys of a table."""
    required, optional = tuple(required), tuple(optional)
    allowed = required + optional
    for key in table:
        if key not in allowed:
            raise unknown_name(where, key, allowed, what="key")
    missing = [key for key in required if key not in table]
    if missing:
        raise SpecError(f"{where}: missing required key {missing[0]!r} (required: {', '.join(required)})")
