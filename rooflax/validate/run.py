"""``validate``: time the sweep's matrix products on this device and compare with the roof."""

from __future__ import annotations

import datetime
import math
from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import polars as pl

from rooflax._version import __version__
from rooflax.errors import DeviceError, SpecError, positive_int
from rooflax.hardware import Hardware
from rooflax.models import Model, get_model
from rooflax.ops import PHASES, new_tokens
from rooflax.point import evaluate
from rooflax.spec import SweepSpec
from rooflax.validate.ceilings import measure_bandwidth, measure_matmul
from rooflax.validate.device import DeviceInfo, detect_device
from rooflax.validate.kernels import (
    TIMED_OPS,
    check_fits,
    is_out_of_memory,
    jnp_dtype,
    kernel_for,
    memory_message,
    random_sets,
    run_checked,
)
from rooflax.validate.timing import time_call

__all__ = ["DEFAULT_POINTS", "Validation", "points_from_spec", "spread_points", "validate"]

#: (phase, batch, seq_len, spec_k) timed when no spec is given: decode across batch, and prefill.
DEFAULT_POINTS = (("decode", 1, 1024, None), ("decode", 16, 1024, None), ("decode", 128, 1024, None),
                  ("prefill", 1, 256, None), ("prefill", 1, 1024, None))


@dataclass(frozen=True, slots=True)
class Validation:
    """What a validation run found."""

    frame: pl.DataFrame  # one row per point and op, measured beside predicted
    profile: Hardware  # the measured ceilings, usable by sweeps
    device: DeviceInfo
    dtype: str
    timer_ratio: float  # time of twice the work over time of the work (about 2 when timing is sound)


def spread_points(points: tuple, max_points: int) -> tuple:
    """At most ``max_points`` of ``points``, evenly spread (the first kept, and the last if two or more)."""
    if isinstance(max_points, bool) or not isinstance(max_points, int | np.integer) or max_points < 1:
        raise SpecError(f"--max-points: expected a positive integer, got {max_points!r}")
    points = tuple(points)
    if len(points) <= max_points:
        return points
    step = (len(points) - 1) / max(max_points - 1, 1)
    return tuple(points[round(i * step)] for i in range(max_points))


def points_from_spec(spec: SweepSpec, max_points: int) -> tuple[Model, tuple]:
    """Up to ``max_points`` points of a spec's grid (evenly spread), for its first model."""
    points = [(phase, b, s, k) for phase, k, first in spec.steps() for b in spec.batch for s in spec.seq_len[first:]]
    model = spec.models[0]
    hidden = spec.hidden_for(model)[0]
    return model.at_hidden(hidden), spread_points(tuple(points), max_points)


def _timer_check(dtype: str, n: int, repeats: int) -> float:
    """Time ``x @ w`` and ``(x @ w) @ w2``: the second does twice the work."""
    (operands,) = random_sets(((n, n),) * 3, dtype, 1, seed=2)
    one = time_call(jax.jit(lambda a, b, c: a @ b), [operands], repeats=repeats)
    two = time_call(jax.jit(lambda a, b, c: (a @ b) @ c), [operands], repeats=repeats)
    return two / one


def validate(*, model: Model | None = None, points: tuple | None = None, dtype: str | None = None,
             repeats: int | None = None, require_accelerator: bool = False, quick: bool = False,
             matmul_n: int | None = None, copy_bytes: int | None = None, rotate_bytes: int | None = None,
             progress: Callable[[str], None] | None = None) -> Validation:
    """Measure the device's ceilings and time every matmul-group op at each point.

    Args:
        model: the model whose shapes to run (default Llama-13B).
        points: ``(phase, batch, seq_len, spec_k)`` tuples (default :data:`DEFAULT_POINTS`).
        dtype: ``fp32``, ``bf16`` or ``fp16`` (default bf16 on an accelerator, fp32 on the CPU).
        repeats: timed samples per shape, median taken (default 10 on an accelerator, 3 on the CPU).
        require_accelerator: DeviceError when the default device is the CPU.
        quick: a smoke run in seconds: small ceiling measurements (a 256³ matmul, a
            4 MiB copy), 1 MiB of rotated operands, 2 repeats. The figures are rough.
        matmul_n, copy_bytes: sizes of the ceiling measurements (defaults by platform).
        rotate_bytes: operand bytes to rotate through per shape, so caches cannot hold
            them (default 256 MiB, well past any last-level cache).
        progress: called with a line of text as work proceeds.
    """
    info = detect_device(require_accelerator=require_accelerator)
    accelerator = info.is_accelerator
    dtype = dtype or ("bf16" if accelerator else "fp32")
    jnp_dtype(dtype)
    if repeats is None:
        repeats = 2 if quick else (10 if accelerator else 3)
    repeats = positive_int("--repeats", repeats)
    matmul_n = matmul_n or (256 if quick else 8192 if accelerator else 1024)
    copy_bytes = copy_bytes or (2**22 if quick else 2**30 if accelerator else 2**28)
    rotate_bytes = rotate_bytes or (2**20 if quick else 2**28)
    model = get_model("llama-13b") if model is None else model
    points = DEFAULT_POINTS if points is None else points
    say = progress or (lambda _line: None)

    say(f"device: {info.kind} ({info.platform}); preset: {info.preset.name if info.preset else 'none'}")
    peak = measure_matmul(dtype, matmul_n, repeats=repeats)
    bandwidth = measure_bandwidth(copy_bytes, repeats=repeats)
    say(f"ceilings: {peak / 1e12:.3g} TFLOP/s {dtype} matmul, {bandwidth / 1e9:.4g} GB/s copy")
    timer_ratio = _timer_check(dtype, max(matmul_n // 2, 64), repeats)
    say(f"timer check: twice the work took {timer_ratio:.2f}× the time")
    profile = Hardware(
        name=f"{info.preset.name if info.preset else info.platform}-measured",
        label=f"{info.kind} (measured)",
        peak_flops={dtype: peak}, bandwidth_bytes_per_s=bandwidth, memory_bytes=info.memory_bytes,
        source=f"rooflax validate {__version__} on {info.kind}, {datetime.date.today().isoformat()}: "
               f"{matmul_n}³ {dtype} matmul, {copy_bytes} B copy, median of {repeats}",
    )
    itemsize = jnp.dtype(jnp_dtype(dtype)).itemsize
    rows = []
    for index, (phase, batch, seq_len, spec_k) in enumerate(points):
        new = new_tokens(PHASES.index(phase), seq_len, spec_k)
        predicted = evaluate(model=model, hardware=profile, dtype=dtype, phase=phase, batch=batch, seq_len=seq_len,
                             spec_k=spec_k)["ops"]
        datasheet = None
        if info.preset is not None and dtype in info.preset.dtypes:
            datasheet = evaluate(model=model, hardware=info.preset, dtype=dtype, phase=phase, batch=batch,
                                 seq_len=seq_len, spec_k=spec_k)["ops"]
        kernels = [kernel_for(op, model, batch=batch, new=new, attended=seq_len) for op in TIMED_OPS]
        where = f"{phase} B={batch} S={seq_len}{'' if spec_k is None else f' K={spec_k}'}: "
        for kernel in kernels:
            set_bytes = itemsize * kernel.operand_elements
            copies = max(1, min(256, math.ceil(rotate_bytes / set_bytes)))
            check_fits([kernel], dtype, copies, info.memory_bytes, where)
            try:
                buffers = random_sets(kernel.shapes, dtype, copies, seed=index)
                fn, error = run_checked(kernel, dtype, buffers)
                seconds = time_call(fn, buffers, repeats=repeats)
            except Exception as exc:
                if not is_out_of_memory(exc):
                    raise
                raise DeviceError(memory_message(kernel, dtype, copies, info.memory_bytes, where,
                                                 ran_out=True)) from None
            del buffers
            p = predicted[kernel.op]
            rows.append({
                "device": info.kind, "hardware": info.preset.name if info.preset else None, "dtype": dtype,
                "model": model.name, "phase": phase, "batch": batch, "seq_len": seq_len, "spec_k": spec_k,
                "op": kernel.op, "group": p["group"], "shape": kernel.describe(), "flops": float(p["flops"]),
                "bytes": float(p["bytes"]), "intensity": float(p["intensity"]), "measured_time_s": seconds,
                "achieved_flops": p["flops"] / seconds, "achieved_bytes_per_s": p["bytes"] / seconds,
                "predicted_time_s": float(p["time_s"]), "efficiency": float(p["time_s"]) / seconds,
                "datasheet_time_s": None if datasheet is None else float(datasheet[kernel.op]["time_s"]),
                "datasheet_efficiency": None if datasheet is None else float(datasheet[kernel.op]["time_s"]) / seconds,
                "max_rel_error": error,
            })
            say(f"[{len(rows)}/{len(points) * len(kernels)}] {phase} B={batch} S={seq_len} {kernel.op:<9} "
                f"{kernel.describe():<28} {seconds * 1e3:9.3f} ms  {float(p['time_s']) / seconds:6.1%} of roof")
    frame = pl.DataFrame(rows, schema_overrides={"hardware": pl.String, "spec_k": pl.Int64,
                                                 "datasheet_time_s": pl.Float64, "datasheet_efficiency": pl.Float64})
    return Validation(frame, profile, info, dtype, timer_ratio)
