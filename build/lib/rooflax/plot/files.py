"""Saving charts: checked before work starts, written atomically."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from rooflax.data._atomic import output_file, write_output
from rooflax.errors import SpecError

__all__ = ["CHART_SUFFIXES", "chart_path", "save"]

#: File formats a chart can be saved in.
CHART_SUFFIXES = (".png", ".svg", ".pdf")


def chart_path(path: str | Path, *, overwrite: bool = False, field: str = "path") -> Path:
    """``path`` as a chart file to write (.png, .svg, .pdf), or a one-line SpecError naming ``field``.

    Call it before the work that produces the chart, so a bad name fails fast.
    """
    return output_file(path, field, suffixes=CHART_SUFFIXES, overwrite=overwrite)


def save(fig: Figure, path: str | Path, *, overwrite: bool = False, dpi: int = 150, field: str = "path") -> Path:
    """Save ``fig`` to ``path`` (format from the suffix); a reader never sees half a file.

    Args:
        fig: the chart.
        path: a .png, .svg or .pdf file name.
        overwrite: replace an existing file (otherwise it is an error).
        dpi: resolution of raster formats.
        field: how errors name the path (a CLI flag, say).
    """
    if not isinstance(fig, Figure):
        raise SpecError(f"{field}: expected a matplotlib Figure to save, got {type(fig).__name__}")
    path = chart_path(path, overwrite=overwrite, field=field)
    return write_output(path, lambda tmp: fig.savefig(tmp, dpi=dpi, format=path.suffix.lower().lstrip(".")), field)
