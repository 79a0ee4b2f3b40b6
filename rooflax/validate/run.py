"""``validate``: time the sweep's matrix products on this device and compare with the roof."""

from __future__ import annotations

import datetime
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import polars as pl

from rooflax._version import __version__
from rooflax.calibration.fit import fit_hardware
from rooflax.calibration.measurements import validation_measurements
from rooflax.config.hardware import Hardware
from rooflax.config.models import Model, get_model
from rooflax.config.spec import SweepSpec
from rooflax.cost.achieved import quantized_flops
from rooflax.cost.ops import new_tokens
from rooflax.engine.evaluate import evaluate
from rooflax.errors import DeviceError, SpecError, boolean, positive_int
from rooflax.names import LAYOUT, PHASES
from rooflax.validate.ceilings import measure_bandwidth, measure_matmul
from rooflax.validate.device import DeviceInfo, detect_device
from rooflax.validate.kernels import (
    DTYPES,
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

__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_POINTS",
    "Validation",
    "calibrate",
    "points_from_spec",
    "spec_dtype",
    "spread_points",
    "validate",
]

#: (phase, batch, seq_len, spec_k) timed when no spec is given: decode across batch and context, then
#: prefill across length and batch, so any spread of two or more (``--max-points``) spans both phases
#: and every op group gets enough points for its own fitted terms.
DEFAULT_POINTS = (
    ("decode", 1, 1024, None),
    ("decode", 16, 1024, None),
    ("decode", 128, 1024, None),
    ("decode", 16, 4096, None),
    ("prefill", 1, 256, None),
    ("prefill", 1, 1024, None),
    ("prefill", 4, 1024, None),
    ("prefill", 1, 4096, None),
)
#: Models timed when none is given: the reference model on an accelerator, a small one on the CPU.
DEFAULT_MODEL = {"accelerator": "llama-13b", "cpu": "toy-llama"}
#: Quantization fields of a profile measured on the CPU: XLA's CPU products have no fixed tile
#: grid or multiprocessor waves, so 1×1×1 tiles on one unit (no quantization) are written.
CPU_QUANTIZATION = {"sm_count": 1, "tile_m": 1, "tile_n": 1, "tile_k": 1}


@dataclass(frozen=True, slots=True, kw_only=True)
class Validation:
    """What a validation run found."""

    frame: pl.DataFrame  # one row per point and op, measured beside predicted
    profile: Hardware  # the measured ceilings with default achieved-performance terms
    calibrated: Hardware  # the measured ceilings with terms fitted to the frame (calibrate: fit_hardware)
    device: DeviceInfo
    dtype: str
    timer_ratio: float  # time of twice the work over time of the work (about 2 when timing is sound)


def spread_points(points: Sequence, max_points: int) -> tuple:
    """At most ``max_points`` of ``points``, evenly spread (the first kept, and the last if two or more).

    ``points`` may be any sequence (a ``range`` of a grid's point indices): only the chosen ones are read.
    """
    if isinstance(max_points, bool) or not isinstance(max_points, int | np.integer) or max_points < 1:
        raise SpecError(f"--max-points: expected a positive integer, got {max_points!r}")
    if not isinstance(points, Sequence):
        points = tuple(points)
    if len(points) <= max_points:
        return tuple(points)
    step = (len(points) - 1) / max(max_points - 1, 1)
    return tuple(points[round(i * step)] for i in range(max_points))


def points_from_spec(spec: SweepSpec, max_points: int) -> tuple[Model, tuple]:
    """Up to ``max_points`` points of a spec's grid (evenly spread), for its first model.

    validate times dense products on one device, so a mixture-of-experts model or a
    parallel layout (``tp``, ``pp`` or ``ep`` other than 1) is refused with a one-line SpecError.
    """
    if spec.models[0].experts:
        raise SpecError(
            f"--spec: model {spec.models[0].name!r} is a mixture of experts; validate times dense "
            "single-device products for now, so give a spec of a dense model"
        )
    for axis in LAYOUT:
        if getattr(spec, axis) != (1,):
            raise SpecError(
                f"--spec: {axis} = {list(getattr(spec, axis))}; validate times single-device products "
                f"for now, so give a spec with {axis} = 1 (or none)"
            )
    steps = [(phase, k, first, len(spec.batch) * (len(spec.seq_len) - first)) for phase, k, first in spec.steps()]

    def point(index: int) -> tuple:  # the grid's index-th point, in (step, batch, seq_len) order
        for phase, k, first, count in steps:
            if index < count:
                b, s = divmod(index, len(spec.seq_len) - first)
                return phase, spec.batch[b], spec.seq_len[first + s], k
            index -= count
        raise IndexError(index)

    model = spec.models[0]
    hidden = spec.hidden_for(model)[0]
    chosen = spread_points(range(sum(count for *_, count in steps)), max_points)  # never the whole grid
    return model.at_hidden(hidden), tuple(point(i) for i in chosen)


def spec_dtype(spec: SweepSpec, given: str | None) -> tuple[str | None, str | None]:
    """The dtype to time for ``spec`` when ``--dtype`` is ``given`` (None: not given), and a note or None.

    Without ``--dtype`` the spec's dtype is timed when validate can run it (fp32, bf16,
    fp16) and the spec has one; otherwise the device's default is, and the note says so.
    A ``--dtype`` that is not the spec's is timed, and the note says so.
    """
    names = [d.name for d in spec.dtypes]
    if given is not None:
        return given, (
            None if given in names else f"dtype: the spec sweeps {', '.join(names)}; timing {given} as --dtype asks"
        )
    if len(names) == 1 and names[0] in DTYPES:
        return names[0], None
    why = f"several ({', '.join(names)})" if len(names) > 1 else f"{names[0]}, which validate cannot run"
    return None, (
        f"dtype: the spec sweeps {why}; timing the device's default instead (choose with --dtype {', '.join(DTYPES)})"
    )


def _timer_check(dtype: str, n: int, repeats: int) -> float:
    """Time ``x @ w`` and ``(x @ w) @ w2``: the second does twice the work."""
    (operands,) = random_sets(((n, n),) * 3, dtype, 1, seed=2)
    one = time_call(jax.jit(lambda a, b, c: a @ b), [operands], repeats=repeats)
    two = time_call(jax.jit(lambda a, b, c: (a @ b) @ c), [operands], repeats=repeats)
    return two / one


def validate(
    *,
    model: Model | None = None,
    points: tuple | None = None,
    dtype: str | None = None,
    repeats: int | None = None,
    require_accelerator: bool = False,
    quick: bool = False,
    matmul_n: int | None = None,
    copy_bytes: int | None = None,
    rotate_bytes: int | None = None,
    skip_unfit: bool = False,
    progress: Callable[[str], None] | None = None,
) -> Validation:
    """Measure the device's ceilings, time every matmul-group op at each point, fit the achieved terms.

    The frame holds, per point and op: the counts, ``spent_flops`` (FLOPs with tile and
    wave quantization at the profile's fields), the measured time and ``measured_flops``,
    the ideal times at the measured ceilings (``predicted_time_s``) and at the datasheet
    (``datasheet_time_s``), the achieved-model time before calibration
    (``predicted_achieved_time_s``: at the datasheet preset, or at the measured profile's
    default terms when the device has none) and after (``calibrated_time_s``, in-sample).

    Args:
        model: the model whose shapes to run (default :data:`DEFAULT_MODEL`: Llama-13B on an
            accelerator, Toy Llama on the CPU).
        points: ``(phase, batch, seq_len, spec_k)`` tuples (default :data:`DEFAULT_POINTS`).
        dtype: ``fp32``, ``bf16`` or ``fp16`` (default bf16 on an accelerator, fp32 on the CPU).
        repeats: timed samples per shape, median taken (default 10 on an accelerator, 3 on the CPU).
        require_accelerator: DeviceError when the default device is the CPU.
        quick: a smoke run in seconds: small ceiling measurements (a 256³ matmul, a
            4 MiB copy), 1 MiB of rotated operands, 2 repeats. The figures are rough.
        matmul_n, copy_bytes: sizes of the ceiling measurements (defaults by platform).
        rotate_bytes: operand bytes to rotate through per shape, so caches cannot hold
            them (default 256 MiB, well past any last-level cache).
        skip_unfit: skip (and report through ``progress``) the points whose products would not fit
            in device memory, instead of stopping with a DeviceError before timing them.
        progress: called with a line of text as work proceeds.
    """
    quick, skip_unfit = boolean("quick", quick), boolean("skip_unfit", skip_unfit)
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
    model = get_model(DEFAULT_MODEL["accelerator" if accelerator else "cpu"]) if model is None else model
    points = DEFAULT_POINTS if points is None else tuple(points)
    if not points:
        raise SpecError("points: expected at least one (phase, batch, seq_len, spec_k), got none")
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
        peak_flops=((dtype, peak),),
        bandwidth_bytes_per_s=bandwidth,
        memory_bytes=info.memory_bytes,
        **_quantization(info),
        source=f"rooflax validate {__version__} on {info.kind}, {datetime.date.today().isoformat()}: "
        f"{matmul_n}³ {dtype} matmul, {copy_bytes} B copy, median of {repeats}",
    )
    datasheet_hw = info.preset if info.preset is not None and dtype in info.preset.dtypes else None
    itemsize = jnp.dtype(jnp_dtype(dtype)).itemsize
    rows = []
    for index, (phase, batch, seq_len, spec_k) in enumerate(points):
        new = new_tokens(PHASES.index(phase), seq_len, spec_k)
        shape = {"phase": phase, "batch": batch, "seq_len": seq_len, "spec_k": spec_k}
        predicted = evaluate(model=model, hardware=profile, dtype=dtype, **shape).ops
        datasheet = (
            None if datasheet_hw is None else evaluate(model=model, hardware=datasheet_hw, dtype=dtype, **shape).ops
        )
        kernels = [kernel_for(op, model, batch=batch, new=new, attended=seq_len) for op in TIMED_OPS]
        where = f"{phase} B={batch} S={seq_len}{'' if spec_k is None else f' K={spec_k}'}: "
        plan = [(k, max(1, min(256, math.ceil(rotate_bytes / (itemsize * k.operand_elements))))) for k in kernels]
        try:
            for kernel, copies in plan:
                check_fits([kernel], dtype, copies, info.memory_bytes, where)
        except DeviceError as exc:
            if not skip_unfit:
                raise
            say(f"skipped: {exc}")
            continue
        for kernel, copies in plan:
            try:
                buffers = random_sets(kernel.shapes, dtype, copies, seed=index)
                fn, error = run_checked(kernel, dtype, buffers)
                seconds = time_call(fn, buffers, repeats=repeats)
            except Exception as exc:
                if not is_out_of_memory(exc):
                    raise
                raise DeviceError(
                    memory_message(kernel, dtype, copies, info.memory_bytes, where, ran_out=True)
                ) from None
            del buffers
            p = predicted[kernel.op]
            sheet = None if datasheet is None else datasheet[kernel.op]
            rows.append(
                {
                    "device": info.kind,
                    "hardware": info.preset.name if info.preset else None,
                    "dtype": dtype,
                    "model": model.name,
                    **shape,
                    "op": kernel.op,
                    "group": p.group,
                    "shape": kernel.describe(),
                    "flops": float(p.flops),
                    "bytes": float(p.bytes),
                    "intensity": float(p.intensity),
                    "spent_flops": float(
                        quantized_flops(
                            kernel.gemm,
                            sm_count=profile.sm_count,
                            tile_m=profile.tile_m,
                            tile_n=profile.tile_n,
                            tile_k=profile.tile_k,
                        )
                    ),
                    "measured_time_s": seconds,
                    "measured_flops": p.flops / seconds,
                    "measured_bytes_per_s": p.bytes / seconds,
                    "predicted_time_s": float(p.time_s),
                    "efficiency": float(p.time_s) / seconds,
                    "datasheet_time_s": None if sheet is None else float(sheet.time_s),
                    "datasheet_efficiency": None if sheet is None else float(sheet.time_s) / seconds,
                    "predicted_achieved_time_s": float((p if sheet is None else sheet).achieved_time_s),
                    "max_rel_error": error,
                }
            )
            say(
                f"[{len(rows)}/{len(points) * len(kernels)}] {phase} B={batch} S={seq_len} {kernel.op:<9} "
                f"{kernel.describe():<28} {seconds * 1e3:9.3f} ms  {float(p.time_s) / seconds:6.1%} of roof"
            )
    frame = pl.DataFrame(
        rows,
        schema_overrides={
            "hardware": pl.String,
            "spec_k": pl.Int64,
            "datasheet_time_s": pl.Float64,
            "datasheet_efficiency": pl.Float64,
        },
    )
    try:
        calibrated = calibrate(frame, profile)
    except SpecError as exc:  # too few timed ops to fit: the profile keeps its default terms
        say(f"calibration skipped: {exc}")
        calibrated = profile
    at = {}  # the calibrated profile's achieved time of every op at each point (the model itself, not its name)
    for phase, batch, seq_len, spec_k in frame.select("phase", "batch", "seq_len", "spec_k").unique().iter_rows():
        shape = {"phase": phase, "batch": batch, "seq_len": seq_len, "spec_k": spec_k}
        at[phase, batch, seq_len, spec_k] = evaluate(model=model, hardware=calibrated, dtype=dtype, **shape).ops
    calibrated_s = [
        float(at[phase, batch, seq_len, spec_k][op].achieved_time_s)
        for phase, batch, seq_len, spec_k, op in frame.select("phase", "batch", "seq_len", "spec_k", "op").iter_rows()
    ]
    frame = frame.with_columns(pl.Series("calibrated_time_s", calibrated_s, pl.Float64))
    return Validation(
        frame=frame, profile=profile, calibrated=calibrated, device=info, dtype=dtype, timer_ratio=timer_ratio
    )


def _quantization(info: DeviceInfo) -> dict[str, Any]:
    """Tile and multiprocessor fields of a measured profile: the preset's, the device's SM count, or none (CPU)."""
    if info.preset is not None:
        return {key: getattr(info.preset, key) for key in CPU_QUANTIZATION}
    if not info.is_accelerator:
        return dict(CPU_QUANTIZATION)
    cores = getattr(info.device, "core_count", None)  # multiprocessors, where the runtime reports them
    return {"sm_count": cores} if isinstance(cores, int) and cores > 0 else {}


def calibrate(frame: pl.DataFrame, profile: Hardware) -> Hardware:
    """``profile`` with the achieved terms fitted to a validation frame: what ``rooflax validate --profile`` writes.

    The fit is ``rooflax calibrate``'s (:func:`rooflax.calibration.fit.fit_hardware`) on the
    frame's timed ops: the linear ops fit the product groups' terms, ``qk`` and ``pv`` the
    attention terms of their phase (each family with at least
    :data:`~rooflax.calibration.fit.MIN_FIT_ROWS` timed ops; the others keep the profile's
    terms), with the error band of the fit's residuals. The fit caps every efficiency at 1,
    so the ceilings are first raised to the fastest rates the timed ops reached where they beat
    the ceiling kernels (on the CPU, multi-threaded decode matvecs read memory many times
    faster than XLA's one-thread copy; :func:`rooflax.validate.cli.raised_ceilings` says so).
    The profile's tile and SM fields stay, so a sweep with the profile predicts the fit's times.

    Args:
        frame: a validation frame (:func:`validate`: ``model``, ``phase``, ``batch``,
            ``seq_len``, ``spec_k``, ``op``, ``dtype``, ``measured_time_s``, ...).
        profile: the measured profile the frame was timed against.

    Raises:
        SpecError: no family has enough timed ops to fit.
    """
    seconds = frame.get_column("measured_time_s")
    spent = pl.max_horizontal("flops", "spent_flops")
    rates = frame.select((spent / seconds).max().alias("flops"), (pl.col("bytes") / seconds).max().alias("bytes"))
    fastest = replace(
        profile,
        peak_flops=tuple((dtype, max(peak, rates["flops"].item())) for dtype, peak in profile.peak_flops),
        bandwidth_bytes_per_s=max(profile.bandwidth_bytes_per_s, rates["bytes"].item()),
    )
    fitted = fit_hardware(validation_measurements(frame, profile.name), fastest)
    groups = [group for group, _ in fitted.group_terms]
    groups += [f"{group} in {phase}" for phase, terms in fitted.phase_terms for group, _ in terms]
    return replace(
        fitted,
        label=f"{profile.label.removesuffix(' (measured)')} (measured, calibrated)",
        source=f"{profile.source}; achieved terms fitted by rooflax.calibration.fit_hardware to {frame.height} "
        f"timed ops (per group: {', '.join(groups)})",
    )
