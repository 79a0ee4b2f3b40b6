"""Sweeps in the test process on a chosen number of its CPU devices (conftest.py makes four)."""

from __future__ import annotations

import functools

import jax

from rooflax.engine import vectorized as engine

_RUN, _DISPATCH = engine.run, engine._dispatch  # the engine's own, whatever a test has patched


def on_devices(monkeypatch, n: int) -> list[int]:
    """Make every later sweep of the test (in memory or streamed) shard over the first ``n`` local devices,
    through the engine's own ``devices`` argument. Returns a list that receives, per chunk computed, the
    number of devices its output lies on (read from the arrays' sharding)."""
    devices = tuple(jax.local_devices()[:n])
    assert len(devices) == n, jax.local_devices()
    spread: list[int] = []

    def dispatch(*args):
        out = _DISPATCH(*args)
        spread.append(len(out["flops"].sharding.device_set))
        return out

    monkeypatch.setattr(engine, "run", functools.partial(_RUN, devices=devices))
    monkeypatch.setattr(engine, "_dispatch", dispatch)
    return spread
