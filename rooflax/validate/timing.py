"""Timing device work honestly: warm-up, synchronization, buffer rotation, medians."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence

__all__ = ["time_call"]


def time_call(
    fn: Callable,
    buffers: Sequence[tuple],
    *,
    repeats: int,
    warmup: int = 2,
    min_batch_s: float = 2e-3,
    max_inner: int = 64,
    clock: Callable[[], float] = time.perf_counter,
) -> float:
    """Median seconds per call of ``fn(*args)``, rotating ``args`` through ``buffers``.

    Each call's output is waited on (``block_until_ready``). Calls shorter than
    ``min_batch_s`` are timed in batches of back-to-back calls (one wait at the end, time
    divided by the batch) so that launch and timer overheads do not dominate; the batch
    size is chosen once, after warm-up. Rotating among several input buffers keeps
    on-chip caches from serving a small shape's operands from the previous call.

    Args:
        fn: a jitted function returning one array.
        buffers: argument tuples to rotate through.
        repeats: timed samples; the median is returned.
        warmup: untimed calls first (compilation, allocation).
        clock: the time source (injectable for tests).
    """
    n = len(buffers)
    for i in range(warmup):
        fn(*buffers[i % n]).block_until_ready()
    start = clock()
    fn(*buffers[0]).block_until_ready()
    single = clock() - start
    inner = 1 if single >= min_batch_s else min(max_inner, max(1, int(min_batch_s / max(single, 1e-9))))
    samples = []
    call = 0
    for _ in range(repeats):
        start = clock()
        for _ in range(inner):  # inner ≥ 1: out is set
            out = fn(*buffers[call % n])
            call += 1
        out.block_until_ready()
        samples.append((clock() - start) / inner)
    return statistics.median(samples)
