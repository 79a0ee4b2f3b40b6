"""What JAX traces and compiles inside a block, captured from ``jax.log_compiles`` (as optax's test_utils does)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import jax


@contextlib.contextmanager
def compilations() -> Iterator[list[str]]:
    """Collect the messages JAX logs while the block runs each time it traces or compiles a jitted function."""
    seen: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    logger, handler = logging.getLogger("jax"), Capture(logging.WARNING)
    logger.addHandler(handler)
    try:
        with jax.log_compiles(True):
            yield seen
    finally:
        logger.removeHandler(handler)
