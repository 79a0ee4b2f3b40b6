"""Numbers with SI prefixes, for chart labels, tables and messages; imports nothing of rooflax.

Every layer writes its numbers through :func:`si` (chart ticks and roof labels, progress
counts, disk sizes), so a prefix is chosen one way everywhere.
"""

from __future__ import annotations

import math

__all__ = ["si"]

#: SI prefixes, largest first, with their powers of ten.
_PREFIXES = (("P", 15), ("T", 12), ("G", 9), ("M", 6), ("k", 3), ("", 0), ("m", -3))


def si(
    value: float,
    spec: str = "g",
    *,
    unit: str = "",
    space: str = "",
    headroom: float = 1.0,
    lowest: str = "m",
    plain: str | None = None,
) -> str:
    """``value`` with an SI prefix: the largest, down to ``lowest``, whose power of ten times ``headroom`` it reaches.

    Args:
        value: the number.
        spec: the format of the scaled number (``g``: ``10G``; ``.1f``: ``12.3M``).
        unit: written after the prefix (``B/s``).
        space: between the number and the prefix.
        headroom: how many of a prefix's unit ``value`` needs for that prefix: 10 keeps at
            least two digits before the point (``2039GB/s``, not ``2.039TB/s``).
        lowest: the smallest prefix used; smaller values are written without one.
        plain: the format of a value written without a prefix (default ``spec``).

    Decade ticks, counts and rates:

    >>> si(1e10), si(1e-3), si(0)
    ('10G', '1m', '0')
    >>> si(12.34e6, ".1f", lowest="k", plain=".0f"), si(7, ".1f", lowest="k", plain=".0f")
    ('12.3M', '7')
    >>> si(2.039e12, ".4g", unit="B/s", headroom=10, lowest="k"), si(1.077e11, ".4g", unit="FLOP/s", space=" ",
    ...                                                                headroom=10, lowest="k")
    ('2039GB/s', '107.7 GFLOP/s')
    """
    if value > 0:
        for prefix, power in _PREFIXES:
            if math.log10(value / headroom) + 1e-9 >= power:
                return f"{value / 10**power:{spec}}{space}{prefix}{unit}"
            if prefix == lowest:
                break
    return f"{value:{plain or spec}}{space}{unit}"
