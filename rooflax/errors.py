"""The one error family of rooflax, and the helpers that word its messages."""

from __future__ import annotations

import difflib
import math
import numbers
from collections.abc import Iterable

import numpy as np

__all__ = [
    "MAX_INT",
    "DeviceError",
    "RooflaxError",
    "SpecError",
    "boolean",
    "close_matches",
    "positive_float",
    "positive_int",
]


class RooflaxError(ValueError):
    """Base of every error rooflax raises for bad input or an unusable environment."""


class SpecError(RooflaxError):
    """A value in a spec, a preset file, a keyword argument or a flag is not allowed."""


class DeviceError(RooflaxError):
    """The device cannot run what was asked (dtype, memory, missing accelerator)."""


def _shared_start(a: str, b: str) -> int:
    """How many leading characters ``a`` and ``b`` share."""
    return next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))


def close_matches(given: object, allowed: Iterable[str]) -> list[str]:
    """The names of ``allowed`` a mistyped ``given`` most likely meant, at least the 3 closest.

    First every name ``given`` begins (``a100`` → each ``a100-*`` preset), else the few
    names sharing its longest prefix when that is over half of it (``h100-80gb`` → the
    ``h100-*`` presets), then the closest spellings (difflib).

    >>> close_matches("a100", ["a40", "a100-40gb-sxm", "a100-80gb-pcie", "h200"])
    ['a100-40gb-sxm', 'a100-80gb-pcie', 'a40']
    >>> close_matches("medusa-vicuna-8b", ["medusa-vicuna-7b", "medusa-vicuna-13b", "medusa-vicuna-33b"])[0]
    'medusa-vicuna-7b'

    """
    allowed, text = sorted(allowed), str(given).lower()
    shared = {name: _shared_start(text, name.lower()) for name in allowed}
    longest = max(shared.values(), default=0)
    prefixed = [name for name in allowed if text and shared[name] == longest]
    if longest < len(text) and (2 * longest <= len(text) or len(prefixed) > 4):
        prefixed = []  # no name begins with it, and the common start is short or shared by many
    spelled = difflib.get_close_matches(str(given), allowed, n=3, cutoff=0.5)
    prefixed.sort(key=lambda name: spelled.index(name) if name in spelled else len(spelled))  # closest first
    return (prefixed + [name for name in spelled if name not in prefixed])[: max(3, len(prefixed))]


def unknown_name(field: str, given: object, allowed: Iterable[str], what: str = "name") -> SpecError:
    """An error for a name (or key, ``what``) that is not among ``allowed``, with close matches."""
    allowed = sorted(allowed)
    hint = close_matches(given, allowed)
    did_you_mean = f"; did you mean {' or '.join(repr(h) for h in hint)}?" if hint else ""
    return SpecError(f"{field}: unknown {what} {given!r}{did_you_mean} (allowed: {', '.join(allowed)})")


#: Largest integer rooflax accepts for a count (an axis value or a model size): 2**53, the
#: last integer float64 holds exactly, so counts computed from it stay within the 1e-6 contract.
MAX_INT = 2**53


def positive_int(field: str, value: object) -> int:
    """Return ``value`` as an int if it is a positive integer ≤ :data:`MAX_INT`, else raise SpecError.

    Python and numpy integers are accepted, and floats with an integer value (TOML and
    JSON write ``4096.0`` or ``1e3``); booleans are not numbers here.

    >>> positive_int("batch", np.int64(8)), positive_int("batch", 64.0)
    (8, 64)
    """
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        number = int(value)
    elif isinstance(value, numbers.Real) and not isinstance(value, bool) and float(value).is_integer():
        number = int(float(value))
    else:
        raise SpecError(f"{field}: expected a positive integer, got {value!r}")
    if number <= 0:
        raise SpecError(f"{field}: expected a positive integer, got {value!r}")
    if number > MAX_INT:
        raise SpecError(
            f"{field}: {value!r} is too large; expected a positive integer ≤ 2**53 = {MAX_INT} "
            "(the largest count float64 holds exactly)"
        )
    return number


def positive_float(field: str, value: object) -> float:
    """Return ``value`` as a float if it is a positive finite number (Python or numpy), else raise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 < float(value) < math.inf:
        raise SpecError(f"{field}: expected a positive finite number, got {value!r}")
    return float(value)


def boolean(field: str, value: object) -> bool:
    """Return ``value`` if it is a boolean (Python or numpy), else raise SpecError.

    Strings such as ``"false"`` are refused: they would read as True.
    """
    if not isinstance(value, bool | np.bool_):
        raise SpecError(f"{field}: expected true or false, got {value!r}")
    return bool(value)


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
