"""Exporting a dataset to CSV or NDJSON, for tools that do not read parquet.

The dataset is checked whole first, every part's bytes against the checksum recorded when
it was written (``check_dataset(..., deep=True)``), so a damaged part is never exported.
Polars then streams the rows to the file (``sink_csv`` / ``sink_ndjson``), so memory stays
flat however large the dataset; the file is written under a hidden temporary name and
renamed when complete.
"""

from __future__ import annotations

import os

from rooflax.data._atomic import output_file, write_output
from rooflax.data.scan import check_dataset, reading
from rooflax.errors import boolean

__all__ = ["FORMATS", "export_dataset"]

#: File suffixes :func:`export_dataset` writes.
FORMATS = (".csv", ".ndjson")


def export_dataset(dataset: str | os.PathLike, out: str | os.PathLike, *, overwrite: bool = False) -> int:
    """Write every row of a dataset to a ``.csv`` or ``.ndjson`` file, streamed.

    Args:
        dataset: a dataset folder or part file written by rooflax (checked whole first, its
            parts' bytes against their checksums).
        out: the file to write; its suffix picks the format.
        overwrite: replace ``out`` if it exists.

    Returns:
        The number of rows written.

    Raises:
        SpecError: an incomplete or damaged dataset, an unknown suffix, an existing ``out``
            without ``overwrite``, or a write that fails (a full or read-only disk);
            nothing is written then.
    """
    path = output_file(out, "output", suffixes=FORMATS, overwrite=boolean("overwrite", overwrite))
    info = check_dataset(dataset, deep=True)
    lf = info.scan()
    with reading(dataset):
        if path.suffix.lower() == ".csv":
            write_output(path, lambda tmp: lf.sink_csv(tmp), "output")
        else:
            write_output(path, lambda tmp: lf.sink_ndjson(tmp), "output")
    return info.rows
