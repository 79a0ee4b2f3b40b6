"""The real products behind each matmul-group op, and the device's own ceilings."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from rooflax.errors import DeviceError, unknown_name
from rooflax.models import Model

__all__ = ["DTYPES", "Kernel", "kernel_for", "run_checked"]

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


@dataclass(frozen=True, slots=True)
class Kernel:
    """One op as a real product: its operand shapes and the function that computes it."""

    op: str
    shapes: tuple[tuple[int, ...], ...]
    equation: str  # einsum spec; "mk,kn->mn" for linear ops

    @property
    def operand_elements(self) -> int:
        """Elements in all operands together."""
        return sum(int(np.prod(s)) for s in self.shapes)

    def describe(self) -> str:
        return " × ".join("[" + ",".join(map(str, s)) + "]" for s in self.shapes)


def kernel_for(op: str, model: Model, *, batch: int, new: int, attended: int) -> Kernel:
    """The product for ``op`` of ``model`` with ``new`` query tokens attending ``attended``."""
    h, H, G, d, I = model.hidden, model.heads, model.kv_heads, model.head_dim, model.intermediate
    m, r = batch * new, H // G
    linear = {"qkv_proj": (h, (H + 2 * G) * d), "o_proj": (H * d, h), "gate_proj": (h, I), "up_proj": (h, I),
              "down_proj": (I, h)}
    if op in linear:
        k, n = linear[op]
        return Kernel(op, ((m, k), (k, n)), "mk,kn->mn")
    if op == "qk":
        return Kernel(op, ((batch, G, r, new, d), (batch, G, attended, d)), "bgrqd,bgtd->bgrqt")
    if op == "pv":
        return Kernel(op, ((batch, G, r, new, attended), (batch, G, attended, d)), "bgrqt,bgtd->bgrqd")
    raise unknown_name("op (validate)", op, TIMED_OPS)


@functools.lru_cache(maxsize=64)
def _compiled(equation: str):
    return jax.jit(lambda a, b: jnp.einsum(equation, a, b))


def make_buffers(kernel: Kernel, dtype: str, copies: int, seed: int = 0) -> list[tuple]:
    """``copies`` sets of random operands in ``dtype`` on the default device."""
    jdt = jnp_dtype(dtype)
    key = jax.random.PRNGKey(seed)
    out = []
    for _ in range(copies):
        arrays = []
        for shape in kernel.shapes:
            key, sub = jax.random.split(key)
            arrays.append(jax.random.normal(sub, shape, jnp.float32).astype(jdt))
        out.append(tuple(arrays))
    return out


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
        raise DeviceError(f"--dtype: {kernel.op} in {dtype} failed on {jax.devices()[0].device_kind}: "
                          f"{str(exc).splitlines()[0]}") from None
    a, b = (np.asarray(x.astype(jnp.float32)) for x in buffers[0])
    if kernel.equation == "mk,kn->mn":
        rows = slice(0, min(sample, a.shape[0]))
        reference, got = a[rows] @ b, np.asarray(out[rows].astype(jnp.float32))
    else:  # first batch element, first KV head
        reference = np.einsum(kernel.equation, a[:1, :1], b[:1, :1])
        got = np.asarray(out[:1, :1].astype(jnp.float32))
    error = float(np.max(np.abs(got - reference)) / max(float(np.max(np.abs(reference))), 1e-30))
    if not error <= TOLERANCE[dtype]:
        raise DeviceError(f"validate: {kernel.op} {kernel.describe()} in {dtype} is wrong: relative error "
                          f"{error:.2e} > {TOLERANCE[dtype]:.0e} against a float32 reference")
    return fn, error


def check_fits(kernels: list[Kernel], dtype: str, copies: int, memory_bytes: float) -> None:
    """DeviceError when the operands (with their copies) and results would not fit."""
    itemsize = jnp.dtype(jnp_dtype(dtype)).itemsize
    for kernel in kernels:
        largest = max(int(np.prod(s)) for s in kernel.shapes)
        needed = itemsize * (copies * kernel.operand_elements + 2 * largest)
        if needed > 0.8 * memory_bytes:
            raise DeviceError(f"validate: {kernel.op} {kernel.describe()} in {dtype} needs {needed / 2**30:.1f} GiB, "
                              f"more than 80% of the device's {memory_bytes / 2**30:.1f} GiB; choose smaller points")
