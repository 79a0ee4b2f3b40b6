"""The engine's guarantees: device-independent chunks, exact counts, bounded chunks, shared compiles."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import jax
import polars as pl
import pytest
from polars.testing import assert_frame_equal

import rooflax
from rooflax.cost.shape import Shape
from rooflax.engine import vectorized as engine

KEYS = dict(phases=["prefill", "decode", "verify"], batch=[1, 2, 4, 8], seq_len=[16, 64, 256], spec_k=[16, 32])

# A child process on N forced host devices: stream KEYS to OUT, dying like a kill after `die_after` parts
# when that is given (polars' writer is wrapped, so rooflax's own code runs unchanged up to the kill).
CHILD = """
import json, os, sys
import jax, polars as pl, rooflax
out, devices, keys, chunk_size, die_after, resume = sys.argv[1:]
assert len(jax.local_devices()) == int(devices), jax.local_devices()
if die_after != "-":
    import rooflax.data.dataset
    real, written = rooflax.data.dataset.atomic_write, []
    def write_then_die(path, write):  # killed as it starts to save a part
        if len(written) == int(die_after):
            os._exit(9)
        written.append(1)
        return real(path, write)
    rooflax.data.dataset.atomic_write = write_then_die
rooflax.sweep_to_parquet(None, out, chunk_size=int(chunk_size), resume=resume == "1", **json.loads(keys))
"""


def _child(out: Path, devices: int, chunk_size: int, die_after: int | None = None, resume: bool = False) -> int:
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}", "JAX_PLATFORMS": "cpu"}
    args = [str(out), str(devices), json.dumps(KEYS), str(chunk_size), "-" if die_after is None else str(die_after),
            "1" if resume else "0"]
    done = subprocess.run([sys.executable, "-c", CHILD, *args], env=env, cwd=Path(__file__).parent,
                          capture_output=True, text=True)
    assert done.returncode in (0, 9), done.stderr
    return done.returncode


def test_resume_on_another_device_count_equals_a_clean_run(tmp_path):
    out = tmp_path / "ds"
    assert _child(out, devices=1, chunk_size=5, die_after=4) == 9  # killed after four parts on one device
    assert not out.exists() and len(list((tmp_path / "ds.partial").glob("part-*.parquet"))) == 4
    assert _child(out, devices=3, chunk_size=5, resume=True) == 0  # finished on three
    got = pl.read_parquet(out)
    clean = rooflax.sweep(**KEYS, chunk_size=5)  # rows come in the same order with the same chunks
    assert got.height == clean.height == rooflax.parse_spec(**KEYS).rows()
    assert_frame_equal(got, clean, check_exact=True, categorical_as_str=True)


def _rel(got: float, exact: int) -> Fraction:
    return abs(Fraction(got) - exact) / exact


@pytest.mark.parametrize("batch", [2**52, 2**53])
def test_counts_stay_exact_up_to_two_to_the_53(batch):
    model = rooflax.get_model("llama-13b")
    h, d, heads, kv, vocab = model.hidden, model.head_dim, model.heads, model.kv_heads, model.vocab
    df = rooflax.sweep(phases=["decode", "verify"], batch=[batch], seq_len=[4096], spec_k=[16, 4096])
    for phase, k in (("decode", None), ("verify", 16), ("verify", 4096)):
        tokens = batch * (k or 1)  # exact Python integers: M = B·Q, and the LM head's B·K
        want = {"lm_head": 2 * tokens * h * vocab, "qkv_proj": 2 * tokens * h * (heads + 2 * kv) * d}
        point = rooflax.evaluate(phase=phase, batch=batch, seq_len=4096, spec_k=k)
        rows = df.filter(pl.col("phase") == phase, pl.col("spec_k").eq_missing(k))
        for op, exact in want.items():
            assert point["ops"][op]["flops"] == exact, op
            got = rows.filter(op=op).get_column("flops").item()
            assert _rel(got, exact) <= 1e-6, (phase, k, op, got, exact)


def test_chunk_size_is_bounded(tmp_path):
    too_big = engine.MAX_CHUNK_SIZE + 1
    message = rf"^chunk_size: expected an integer from 1 to {engine.MAX_CHUNK_SIZE}.*, got {too_big}$"
    with pytest.raises(rooflax.SpecError, match=message):
        rooflax.sweep(batch=[1], seq_len=[8], chunk_size=too_big)
    with pytest.raises(rooflax.SpecError, match=message):
        rooflax.sweep_to_parquet(None, tmp_path / "ds", batch=[1], seq_len=[8], chunk_size=too_big)
    with pytest.raises(rooflax.SpecError, match="chunk_size: expected an integer from 1 to"):
        rooflax.sweep(batch=[1], seq_len=[8], chunk_size=0)
    assert not list(tmp_path.iterdir())  # nothing written
    assert rooflax.sweep(batch=[1], seq_len=[8], chunk_size=engine.MAX_CHUNK_SIZE).height == 2 * 15


def _functions(keys: dict) -> dict:
    """The jitted functions a sweep of ``keys`` runs, with their compile-cache sizes."""
    spec = rooflax.parse_spec(**keys)
    tasks = engine.plan(spec, engine.DEFAULT_CHUNK_SIZE)
    fns = {engine.compiled_for(t, False, tuple(jax.local_devices())) for t in tasks}
    return {fn: fn._cache_size() for fn in fns}


def test_nearby_axis_lengths_share_one_compiled_function():
    keys = dict(model="llama-7b", phases=["decode"], batch=[1, 2, 3], seq_len=[8, 16, 24])
    rooflax.sweep(**keys)
    before = _functions(keys)
    for more in ({"batch": [1, 2, 3, 4]}, {"seq_len": [8, 16, 24, 32, 40]}, {"batch": [5, 6]}):
        rooflax.sweep(**{**keys, **more})
        assert _functions({**keys, **more}) == before, more  # same functions, no new cache entry


def test_the_shape_is_one_pytree_with_static_structure():
    model, dtype = rooflax.get_model("llama-2-70b"), rooflax.get_dtype("w4a16")
    shape = Shape.of(model, dtype, phase="verify", batch=8, seq_len=512, spec_k=16, causal=True)
    # B S phase K h H G d I V L w a k, then experts, experts per token, shared experts, expert width, routing
    # experts, tp pp ep, tree
    numbers = (8, 512, 2, 16, 8192, 64, 8, 128, 28672, 32000, 80, 0.5, 2, 2, 0, 0, 0, 0, 0, 1, 1, 1, 0)
    assert tuple(jax.tree.leaves(shape)) == numbers
    other = Shape.of(model, dtype, phase="verify", batch=8, seq_len=512, spec_k=16, fused_attention=True)
    assert jax.tree.structure(shape) != jax.tree.structure(other)  # structural choices are static, not leaves
    doubled = jax.tree.map(lambda x: 2 * x, shape)
    assert (doubled.batch, doubled.heads, doubled.causal, doubled.gated_mlp) == (16, 128, True, True)


def test_a_summary_of_one_hidden_size_returns_its_constant_columns_once_and_equals_the_gathered_tables():
    """A step of one hidden size computes from the shape's scalars, and its summary chunks hold hidden and
    weight_bytes as one value; its rows equal bit for bit those of the same points gathered from a table of
    hidden sizes (the path of a swept hidden axis). The long frames' shared path is checked against main's
    frames bit for bit (reference, trees, layouts, MoE)."""
    keys = dict(model="llama-13b", phases=["prefill", "decode"], batch=[1, 3, 64], seq_len=[8, 200, 4096], tp=[2])
    one = rooflax.parse_spec(**keys, hidden=[5120])
    constant = {name for chunk in engine.run(one, summary=True) for name, value in chunk.columns.items()
                if value.ndim == 0}
    assert constant == set(engine.POINT_CONSTANT) == {"hidden", "weight_bytes"}
    shared = rooflax.sweep(one, summary=True)
    gathered = rooflax.sweep(**keys, hidden=[4096, 5120, 6656], summary=True).filter(hidden=5120)
    order = ["phase", "batch", "seq_len"]
    assert_frame_equal(shared.sort(order), gathered.sort(order), check_exact=True)
