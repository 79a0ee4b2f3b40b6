"""Names and limits shared by the layers and the command line; imports nothing.

The command line reads them to describe its flags, so ``rooflax --help`` needs no JAX or
polars.
"""

__all__ = ["COMPRESSIONS", "DEFAULT_CHUNK_SIZE", "DEFAULT_SUMMARY_CHUNK_SIZE", "MAX_CHUNK_SIZE"]

#: Grid points per chunk of a long sweep unless told otherwise: about half a million op
#: rows, 60 MB of frame. Smaller chunks stream with flatter memory (a 10^8-row sweep peaks
#: within 1.2× of a 10^7-row one) and run as fast (benchmarks/bench_scale.py).
DEFAULT_CHUNK_SIZE = 1 << 15
#: Grid points (= rows) per chunk of a summary sweep unless told otherwise: 17 MB of frame.
DEFAULT_SUMMARY_CHUNK_SIZE = 1 << 17
#: Most grid points per chunk. A point of the long frame is up to 16 op rows of about
#: 80 B of frame plus the engine's output, about 1.5 KB in all (one chunk of 2**20
#: points peaks at 1.5 GiB RSS); a stream keeps up to three chunks alive, so at the
#: bound a sweep stays under about 5 GB whatever the grid. Chunks past the default run
#: no faster.
MAX_CHUNK_SIZE = 1 << 20
#: Parquet codecs a dataset can be written with.
COMPRESSIONS = ("lz4", "zstd", "snappy", "gzip", "brotli", "uncompressed")
