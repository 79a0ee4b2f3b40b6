"""The real products behind each matmul-group op, and the device's own ceilings."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from rooflax.config.models import Model
from rooflax.cost.achieved import Gemm
from rooflax.errors import DeviceError, unknown_name

__all__ = [
    "DTYPES",
    "Kernel",
    "check_fits",
    "is_out_of_memory",
    "kernel_for",
    "memory_message",
    "needed_bytes",
    "random_sets",
    "run_checked",
]

#: dtype names validate can run, and their jnp types.
DTYPES = {"fp32": jnp.float32, "bf16": jnp.bfloat16, "fp16": jnp.float16}
#: Relative tolerance of a result against its float32 reference (of the largest value).
TOLERANCE = {"fp32": 1e-2, "bf16": 5e-2, "fp16": 2e-2}
TIMED_OPS = ("qkv_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "qk", "pv")


def jnp_dtype(name: str):
    """The jnp dtype for a validate dtype name, or a clear error."""
    if name not in DTYPES:
        raise unknown_name("--dtype (validate)", name, DTYPES)
    return DTYPES[name]


@dataclass(frozen=True, slots=True, kw_only=True)
class Kernel:
    """One op as a real product: its operand shapes and the function that computes it."""

    op: str
    shapes: tuple[tuple[int, ...], ...]
    equation: str  # einsum spec; "mk,kn->mn" for linear ops

    @property
    def operand_elements(self) -> int:
        """Elements in all operands together."""
        return sum(math.prod(s) for s in self.shapes)

    @property
    def output_shape(self) -> tuple[int, ...]:
        """The result's shape, read from the einsum spec."""
        inputs, output = self.equation.split("->")
        size = {
            c: n
            for spec, shape in zip(inputs.split(","), self.shapes, strict=True)
            for c, n in zip(spec, shape, strict=True)
        }
        return tuple(size[c] for c in output)

    @property
    def gemm(self) -> Gemm:
        """The product as the achieved-performance model sees it (``rooflax.ops``' ``gemms``).

        Linear ops ``[m, k] × [k, n]`` are one product; attention runs one product per
        sequence and KV head, the ``H/G`` query heads of a group stacked into M.

        >>> Kernel(op="qk", shapes=((2, 4, 3, 5, 64), (2, 4, 100, 64)), equation="bgrqd,bgtd->bgrqt").gemm
        Gemm(count=8, m=15, n=100, k=64)
        """
        inputs, output = self.equation.split("->")
        left, right = inputs.split(",")
        size = {
            c: n
            for spec, shape in zip((left, right), self.shapes, strict=True)
            for c, n in zip(spec, shape, strict=True)
        }
        batch = [c for c in output if c in left and c in right]
        rows = [c for c in output if c in left and c not in right]
        cols = [c for c in output if c in right and c not in left]
        inner = [c for c in left if c in right and c not in output]
        return Gemm(*(math.prod(size[c] for c in chars) for chars in (batch, rows, cols, inner)))

    def describe(self) -> str:
        return " × ".join("[" + ",".join(map(str, s)) + "]" for s in self.shapes)


def kernel_for(op: str, model: Model, *, batch: int, new: int, attended: int) -> Kernel:
    """The product for ``op`` of ``model`` with ``new`` query tokens attending ``attended``."""
    h, H, G, d, I = model.hidden, model.heads, model.kv_heads, model.head_dim, model.intermediate
    m, r = batch * new, H // G
    linear = {
        "qkv_proj": (h, (H + 2 * G) * d),
        "o_proj": (H * d, h),
        "gate_proj": (h, I),
        "up_proj": (h, I),
        "down_proj": (I, h),
    }
    if op in linear:
        k, n = linear[op]
        return Kernel(op=op, shapes=((m, k), (k, n)), equation="mk,kn->mn")
    if op == "qk":
        return Kernel(op=op, shapes=((batch, G, r, new, d), (batch, G, attended, d)), equation="bgrqd,bgtd->bgrqt")
    if op == "pv":
        return Kernel(
            op=op, shapes=((batch, G, r, new, attended), (batch, G, attended, d)), equation="bgrqt,bgtd->bgrqd"
        )
    raise unknown_name("op (validate)", op, TIMED_OPS)


@functools.lru_cache(maxsize=64)
def _compiled(equation: str):
    return jax.jit(lambda a, b: jnp.einsum(equation, a, b))


def _noise(shape: tuple[int, ...], seed) -> jax.Array:
    """float32 values spread evenly over [-1, 1): a multiply-xorshift hash of (element index, seed).

    Cheap to compile and to run, unlike ``jax.random`` (whose generator costs a long
    compile per shape); the values only have to be varied, not statistically random.
    """
    x = jax.lax.iota(jnp.uint32, math.prod(shape)) ^ (seed * jnp.uint32(0x9E3779B9))
    for shift, factor in ((16, 0x7FEB352D), (15, 0x846CA68B)):
        x = (x ^ (x >> shift)) * jnp.uint32(factor)
    x = x ^ (x >> 16)
    return ((x >> 8).astype(jnp.float32) * 2.0**-23 - 1.0).reshape(shape)


@functools.lru_cache(maxsize=64)
def _filler(shapes: tuple[tuple[int, ...], ...], dtype: str):
    """One jitted call making a full set of operands of ``shapes`` from a seed."""
    jdt = jnp_dtype(dtype)
    count = len(shapes)
    return jax.jit(lambda seed: tuple(_noise(shape, seed * count + i).astype(jdt) for i, shape in enumerate(shapes)))


def random_sets(shapes: tuple[tuple[int, ...], ...], dtype: str, copies: int, seed: int = 0) -> list[tuple]:
    """``copies`` different sets of arrays of ``shapes`` in ``dtype`` on the default device.

    Each set is made by one jitted call (compiled once per ``shapes`` and ``dtype``);
    values lie in [-1, 1) and differ between sets and seeds.
    """
    fill = _filler(tuple(map(tuple, shapes)), dtype)
    return [fill(np.uint32((seed * copies + i) % 2**32)) for i in range(copies)]


def run_checked(kernel: Kernel, dtype: str, buffers: list[tuple], sample: int = 64) -> tuple:
    """The jitted product, after checking one result against a float32 reference on a sample.

    Returns ``(fn, max_relative_error)``; raises DeviceError when the result is wrong,
    so a broken kernel cannot look fast.
    """
    fn = _compiled(kernel.equation)
    try:
        out = fn(*buffers[0])
        out.block_until_ready()
    except Exception as exc:  # XLA reports an unsupported dtype or an allocation failure here
        if is_out_of_memory(exc):
            raise
        raise DeviceError(
            f"--dtype: {kernel.op} in {dtype} failed on {jax.devices()[0].device_kind}: {str(exc).splitlines()[0]}"
        ) from None
    a, b = (np.asarray(x.astype(jnp.float32)) for x in buffers[0])
    if kernel.equation == "mk,kn->mn":
        rows = slice(0, min(sample, a.shape[0]))
        reference, got = a[rows] @ b, np.asarray(out[rows].astype(jnp.float32))
    else:  # first batch element, first KV head
        reference = np.einsum(kernel.equation, a[:1, :1], b[:1, :1])
        got = np.asarray(out[:1, :1].astype(jnp.float32))
    error = float(np.max(np.abs(got - reference)) / max(float(np.max(np.abs(reference))), 1e-30))
    if not error <= TOLERANCE[dtype]:
        raise DeviceError(
            f"validate: {kernel.op} {kernel.describe()} in {dtype} is wrong: relative error "
            f"{error:.2e} > {TOLERANCE[dtype]:.0e} against a float32 reference"
        )
    return fn, error


def needed_bytes(kernel: Kernel, dtype: str, copies: int) -> int:
    """Device bytes a timed kernel holds: ``copies`` operand sets and two results in flight."""
    itemsize = jnp.dtype(jnp_dtype(dtype)).itemsize
    return itemsize * (copies * kernel.operand_elements + 2 * math.prod(kernel.output_shape))


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether an exception from XLA is an allocation failure."""
    text = str(exc)
    return "RESOURCE_EXHAUSTED" in text or "out of memory" in text.lower() or isinstance(exc, MemoryError)


def _size(bytes_: float) -> str:
    return f"{bytes_ / 2**30:.1f} GiB" if bytes_ >= 2**30 else f"{bytes_ / 2**20:.1f} MiB"


def memory_message(kernel: Kernel, dtype: str, copies: int, memory_bytes: float, where: str, *, ran_out: bool) -> str:
    """What does not fit, how much it needs, how much the device has, and what to change."""
    verdict = "ran out of" if ran_out else "more than 80% of"
    sets = "operand set" if copies == 1 else "operand sets"
    return (
        f"validate: {where}{kernel.op} {kernel.describe()} in {dtype} needs "
        f"{_size(needed_bytes(kernel, dtype, copies))} ({copies} {sets} and results), {verdict} the device's "
        f"{_size(memory_bytes)}; time smaller points (a --spec with smaller batch or seq_len, or fewer "
        "--max-points) or rotate fewer buffers (--quick)"
    )


def check_fits(kernels: list[Kernel], dtype: str, copies: int, memory_bytes: float, where: str = "") -> None:
    """DeviceError when a kernel's operands (with their copies) and results would not fit in 80% of memory."""
    for kernel in kernels:
        if needed_bytes(kernel, dtype, copies) > 0.8 * memory_bytes:
            raise DeviceError(memory_message(kernel, dtype, copies, memory_bytes, where, ran_out=False))
