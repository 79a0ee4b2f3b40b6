"""The device's own ceilings: dense matmul FLOP/s per dtype and copy bandwidth."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from rooflax.validate.kernels import random_sets
from rooflax.validate.timing import time_call

__all__ = ["measure_bandwidth", "measure_matmul"]


def measure_matmul(dtype: str, n: int, *, repeats: int) -> float:
    """FLOP/s of an ``n × n × n`` product in ``dtype`` (``2n³`` FLOPs per call)."""
    buffers = random_sets(((n, n), (n, n)), dtype, 2, seed=1)
    fn = jax.jit(lambda a, b: a @ b)
    return 2 * n**3 / time_call(fn, buffers, repeats=repeats)


def measure_bandwidth(bytes_: int, *, repeats: int) -> float:
    """Bytes/s of a device-to-device copy of ``bytes_`` bytes (bytes read plus bytes written)."""
    n = bytes_ // 4
    buffers = [(jnp.arange(n, dtype=jnp.float32) + i,) for i in range(2)]
    fn = jax.jit(lambda x: x + 1.0)  # one read and one write per element; XLA cannot elide it
    return 2 * 4 * n / time_call(fn, buffers, repeats=repeats)
