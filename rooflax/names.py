"""The shared vocabulary: names and limits the layers and the command line agree on; imports nothing.

Phases, op groups, dtypes with a peak, bounds, and the key columns of every frame are
spelled here once; the modules that do work (the cost model, the engine, the frames, the
answers, the charts) import them from this leaf, so no two of them import each other for
a name. The command line reads them to describe its flags, so ``rooflax --help`` needs no
JAX or polars.

>>> KEY_COLUMNS[:3], LAYOUT
(('model', 'hardware', 'dtype'), ('tp', 'pp', 'ep'))
"""

__all__ = [
    "ATTENTION_KINDS",
    "AXES",
    "BOUNDS",
    "CELL",
    "COMPRESSIONS",
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_SUMMARY_CHUNK_SIZE",
    "ENTITIES",
    "FACETS",
    "GRID",
    "GROUPS",
    "KEY_COLUMNS",
    "LAYER_KINDS",
    "LAYOUT",
    "MAX_CHUNK_SIZE",
    "MLA_DECODE",
    "MLP_KINDS",
    "PEAK_DTYPES",
    "PEAK_NEEDS",
    "PHASES",
    "SWEEP_AXES",
    "TERM_GROUPS",
]

#: Phases, in frame order (a shape holds the index). ``prefill`` is "init" on charts, ``decode`` is "ar".
PHASES = ("prefill", "decode", "verify")
#: Op groups, in frame order: the three chart groups, then the rest.
GROUPS = ("qkv mlp", "up/gate/down", "qk/pv", "elementwise", "lm_head", "comm")
#: The groups a profile's achieved terms are given for: the op groups, then ``moe``, the routed experts'
#: fused kernel (``expert_*`` ops, charted in their op groups), which takes ``up/gate/down``'s terms unless fitted.
TERM_GROUPS = (*GROUPS, "moe")
#: The dtypes an accelerator's peak can be given for (a dtype policy's ``compute``). The two 4-bit
#: floats are peaks of their own because the block scale is part of what the tensor cores run:
#: Blackwell runs both, AMD's CDNA 4 the OCP MX one only.
PEAK_DTYPES = ("fp32", "tf32", "fp16", "bf16", "fp8", "int8", "nvfp4", "mxfp4")
#: The hardware each peak dtype needs, as a refusal names it (``dtype: nvfp4 needs ...``).
PEAK_NEEDS = {
    "fp32": "FP32 matrix arithmetic",
    "tf32": "TF32 tensor cores",
    "fp16": "FP16 tensor cores",
    "bf16": "BF16 tensor cores",
    "fp8": "FP8 tensor cores",
    "int8": "INT8 tensor cores",
    "nvfp4": "FP4 tensor cores with NVFP4 block scales (e4m3 per 16)",
    "mxfp4": "FP4 tensor cores with MX block scales (e8m0 per 32)",
}
#: How multi-head latent attention runs decode and verify (prefill always up-projects): ``naive`` up-projects
#: the cached latent to keys and values, ``absorbed`` folds the up-projections into the query and the output
#: and attends in the latent space (:mod:`rooflax.cost.ops`). The first is the default.
MLA_DECODE = ("absorbed", "naive")
#: The ``bound`` enum: an op row's ``bound`` is an index into it.
BOUNDS = ("memory", "compute", "network")

#: How a layer attends: ``full`` (every earlier token) or ``sliding`` (the last ``sliding_window`` tokens).
ATTENTION_KINDS = ("full", "sliding")
#: A layer's MLP: ``dense``, or ``moe`` (routed experts, with the shared ones if the model has them).
MLP_KINDS = ("dense", "moe")
#: Layer kinds, ``attention/mlp``, in frame order: the long frame's ``layer`` enum (null on once-per-model rows).
LAYER_KINDS = tuple(f"{attention}/{mlp}" for attention in ATTENTION_KINDS for mlp in MLP_KINDS)

#: Categorical key columns: the presets (or files) a sweep crosses.
ENTITIES = ("model", "hardware", "dtype")
#: Grid coordinates of a point.
GRID = ("batch", "seq_len", "hidden")
#: Parallel layout degrees (1: none); rows are per device.
LAYOUT = ("tp", "pp", "ep")
#: A grid cell: every key column but the step (``spec_k``, ``phase``).
CELL = (*ENTITIES, *GRID, *LAYOUT)
#: The key columns of every frame, in frame order: sort by them where row order matters.
KEY_COLUMNS = (*CELL, "spec_k", "phase")
#: The numeric axes a chart colours points by or joins them along.
AXES = (*GRID, "spec_k")
#: The axes of a sweep spec (its ``[axes]`` table).
SWEEP_AXES = (*AXES, *LAYOUT)
#: Columns a roofline chart can draw one panel per value of.
FACETS = ("phase", "group", "hardware", "dtype", "model", *LAYOUT)

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
