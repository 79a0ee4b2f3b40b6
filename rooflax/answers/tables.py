"""Text for the CLI: tables (plain text anywhere, a rich table on a terminal), on any terminal encoding."""

from __future__ import annotations

import codecs
import sys
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from rooflax.data._atomic import output_file, write_output

if TYPE_CHECKING:  # the CLI's help and argument errors import this module without polars
    import polars as pl

__all__ = [
    "TABLE_SUFFIXES",
    "Table",
    "ascii_fallback",
    "hardware_table",
    "models_table",
    "ratio_band",
    "show",
    "table_path",
    "write_table",
]

#: File formats a table can be written in.
TABLE_SUFFIXES = (".parquet", ".csv")

#: ASCII for the characters rooflax's text uses, where a stream cannot encode them.
ASCII = {
    "×": "x",
    "·": "*",
    "−": "-",
    "–": "-",
    "—": "-",
    "≥": ">=",
    "≤": "<=",
    "≈": "~",
    "…": "...",
    "→": "->",
    "⌈": "ceil(",
    "⌉": ")",
    "⌊": "floor(",
    "⌋": ")",
    "Σ": "sum ",
    "∏": "prod ",
    "α": "alpha",
    "µ": "u",
    "²": "^2",
    "³": "^3",
    "§": "sec. ",
    "━": "-",
    "╸": "-",
    "’": "'",
    "“": '"',
    "”": '"',
}
_ERRORS = "rooflax-ascii"


def _replace(error: UnicodeError) -> tuple[str, int]:
    """A codec error handler: what :data:`ASCII` gives each character, else its NFKD form's ASCII, else ``?``."""
    if not isinstance(error, UnicodeEncodeError):
        raise error
    text = error.object[error.start : error.end]
    out = "".join(
        ASCII.get(c) or unicodedata.normalize("NFKD", c).encode("ascii", "ignore").decode() or "?" for c in text
    )
    return out, error.end


codecs.register_error(_ERRORS, _replace)


def ascii_fallback(stream: TextIO) -> None:
    """Let ``stream`` print any text: characters its encoding lacks (an ASCII locale, ``LC_ALL=C``)
    are written as :data:`ASCII` replacements instead of raising UnicodeEncodeError. A stream
    that encodes everything (UTF-8) is left as it is."""
    encoding = codecs.lookup(getattr(stream, "encoding", None) or "ascii").name
    if encoding.startswith("utf") or not hasattr(stream, "reconfigure"):
        return
    stream.reconfigure(errors=_ERRORS)


@dataclass(frozen=True, slots=True, kw_only=True)
class Table:
    """A table of strings under a title (none when empty); ``numeric`` columns are right-aligned."""

    title: str
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    numeric: tuple[bool, ...]

    def text(self) -> str:
        """The table as aligned plain text, its title (if any) on the first line."""
        widths = [max(len(cell) for cell in column) for column in zip(self.header, *self.rows, strict=True)]

        def line(cells: tuple[str, ...]) -> str:
            return "  ".join(
                c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, self.numeric, strict=True)
            ).rstrip()

        return "\n".join([*filter(None, [self.title]), line(self.header), *(line(row) for row in self.rows)])

    def markdown(self) -> str:
        """The table as a Markdown pipe table (every column left-aligned), its title (if any) on the first line."""
        widths = [max(len(cell) for cell in column) for column in zip(self.header, *self.rows, strict=True)]

        def line(cells: tuple[str, ...]) -> str:
            return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

        rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
        return "\n".join([*filter(None, [self.title]), line(self.header), rule, *(line(row) for row in self.rows)])

    @classmethod
    def of(cls, frame, title: str = "") -> Table:
        """A polars DataFrame as a Table: numbers as Python writes them (``53.1``, ``2.0``), nulls as ``null``,
        numeric columns right-aligned."""
        rows = tuple(
            tuple("null" if v is None else repr(v) if isinstance(v, float) else str(v) for v in row)
            for row in frame.iter_rows()
        )
        return cls(
            title=title,
            header=tuple(frame.columns),
            rows=rows,
            numeric=tuple(dtype.is_numeric() for dtype in frame.dtypes),
        )

    def rich(self):
        """The table as a ``rich.table.Table``."""
        from rich.table import Table as RichTable

        table = RichTable(title=self.title or None, title_justify="left", header_style="bold")
        for name, numeric in zip(self.header, self.numeric, strict=True):
            table.add_column(name, justify="right" if numeric else "left")
        for row in self.rows:
            table.add_row(*row)
        return table


def show(items: list[Table | str], file: TextIO | None = None) -> None:
    """Print tables and lines of text: rich tables on a terminal, plain text otherwise."""
    file = sys.stdout if file is None else file
    if file.isatty():
        from rich.console import Console

        console = Console(file=file, highlight=False)
        for item in items:
            console.print(item.rich() if isinstance(item, Table) else item, markup=False)
        return
    print("\n".join(item.text() if isinstance(item, Table) else item for item in items), file=file)


def ratio_band(
    numerator: tuple[pl.Expr, pl.Expr], denominator: tuple[pl.Expr, pl.Expr], name: str, *, one_profile: bool
) -> list[pl.Expr]:
    """The band of a ratio of two banded times, as ``name_lo`` and ``name_hi``.

    The ends are taken consistently with where the errors come from. Two times priced on
    one profile (speculation: the same GPU's fitted kernels) err together, as a summary
    frame's band takes every op's errors: the ratio at both times' fast ends and at both
    slow ends, from the smaller to the larger (a time over itself keeps exactly 1). Times
    priced on two profiles (two GPUs, each its own fit) err apart: the band runs from the
    numerator's fast end over the denominator's slow end to its slow end over the fast one,
    and so always holds the ratio itself.

    Args:
        numerator, denominator: each time's ``(low, high)`` ends.
        name: the ratio's column; the ends are ``name_lo`` and ``name_hi``.
        one_profile: both times come from one profile (errors correlated), else from two.

    >>> import polars as pl
    >>> f = pl.DataFrame({"a_lo": [2.0], "a_hi": [6.0], "b_lo": [1.0], "b_hi": [4.0]})
    >>> a, b = (pl.col("a_lo"), pl.col("a_hi")), (pl.col("b_lo"), pl.col("b_hi"))
    >>> f.select(ratio_band(a, b, "r", one_profile=True)).row(0)
    (1.5, 2.0)
    >>> f.select(ratio_band(a, b, "r", one_profile=False)).row(0)
    (0.5, 6.0)
    """
    import polars as pl

    if one_profile:
        fast, slow = numerator[0] / denominator[0], numerator[1] / denominator[1]
        return [pl.min_horizontal(fast, slow).alias(f"{name}_lo"), pl.max_horizontal(fast, slow).alias(f"{name}_hi")]
    return [(numerator[0] / denominator[1]).alias(f"{name}_lo"), (numerator[1] / denominator[0]).alias(f"{name}_hi")]


def number(value: float | None, digits: int = 3) -> str:
    """A float to ``digits`` significant digits, ``-`` for None."""
    return "-" if value is None else f"{value:.{digits}g}"


def table_path(path: str | Path, *, overwrite: bool = False, field: str = "path") -> Path:
    """``path`` as a table file to write (.parquet, .csv), or a one-line SpecError naming ``field``.

    Call it before the work that produces the table, so a bad name fails fast.
    """
    return output_file(path, field, suffixes=TABLE_SUFFIXES, overwrite=overwrite)


def write_table(frame, path: str | Path, *, overwrite: bool = False, field: str = "path") -> Path:
    """Write a polars frame to ``path``, parquet or CSV by its suffix; a reader never sees half a file.

    Args:
        frame: the table (a polars DataFrame).
        path: a .parquet or .csv file name.
        overwrite: replace an existing file (otherwise it is an error).
        field: how errors name the path (a CLI flag, say).
    """
    path = table_path(path, overwrite=overwrite, field=field)
    csv = path.suffix.lower() == ".csv"
    return write_output(path, lambda tmp: frame.write_csv(tmp) if csv else frame.write_parquet(tmp), field)


def hardware_table(presets: Iterable, dtypes: Iterable[str]) -> Table:
    """Accelerators (:class:`~rooflax.config.hardware.Hardware`): dense peak per dtype of ``dtypes`` (TFLOP/s),
    bandwidth (GB/s), memory (GB) and the fp16 ridge (FLOP/byte)."""
    dtypes = tuple(dtypes)
    header = ("name", "label", *(f"{d} TF/s" for d in dtypes), "GB/s", "GB", "ridge fp16")
    rows = []
    for hw in presets:
        peaks = dict(hw.peak_flops)
        rows.append(
            (
                hw.name,
                hw.label,
                *(f"{peaks[d] / 1e12:g}" if d in peaks else "-" for d in dtypes),
                f"{hw.bandwidth_bytes_per_s / 1e9:g}",
                f"{hw.memory_bytes / 1e9:g}",
                f"{hw.ridge('fp16'):.0f}" if "fp16" in peaks else "-",
            )
        )
    return Table(title="", header=header, rows=tuple(rows), numeric=(False, False) + (True,) * (len(header) - 2))


def models_table(presets: Iterable) -> Table:
    """Models (:class:`~rooflax.config.models.Model`) with their shapes and parameter counts."""
    header = ("name", "label", "hidden", "layers", "heads", "kv", "d", "inter", "vocab", "params")
    rows = tuple(
        (
            m.name,
            m.label,
            *map(str, (m.hidden, m.layers, m.heads, m.kv_heads, m.head_dim, m.intermediate, m.vocab)),
            f"{m.params / 1e9:.2f}B" if m.params >= 1e9 else f"{m.params / 1e6:.2f}M",
        )
        for m in presets
    )
    return Table(title="", header=header, rows=rows, numeric=(False, False) + (True,) * (len(header) - 2))
