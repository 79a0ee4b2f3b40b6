"""The engine's guarantees: device-independent chunks, exact counts, bounded chunks, shared compiles."""

from __future__ import annotations

from fractions import Fraction

import jax
import polars as pl
import pytest
from compiles import compilations
from devices import on_devices
from interrupt import interrupt_after
from polars.testing import assert_frame_equal

import rooflax
from rooflax.cost.shape import Shape
from rooflax.engine import vectorized as engine

KEYS = dict(phases=["prefill", "decode", "verify"], batch=[1, 2, 4, 8], seq_len=[16, 64, 256], spec_k=[16, 32])


@pytest.mark.slow
def test_resume_on_another_device_count_equals_a_clean_run(tmp_path, monkeypatch):
    out = tmp_path / "ds"
    on_devices(monkeypatch, 1)
    clean = rooflax.sweep(**KEYS, chunk_size=5)  # rows come in the same order with the same chunks
    framed = interrupt_after(monkeypatch, 4)  # a Ctrl-C after four parts on one device
    with pytest.raises(KeyboardInterrupt):
        rooflax.sweep_to_parquet(None, out, chunk_size=5, **KEYS)
    assert not out.exists() and len(list((tmp_path / "ds.partial").glob("part-*.parquet"))) == len(framed) == 4
    monkeypatch.undo()
    spread = on_devices(monkeypatch, 3)  # finished on three
    rooflax.sweep_to_parquet(None, out, chunk_size=5, resume=True, **KEYS)
    parts = rooflax.check_dataset(out).parts
    assert len(spread) == len(parts) - 4 and set(spread) == {3}  # only the missing parts, each on three devices
    got = pl.read_parquet(out)
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
            assert point.ops[op].flops == exact, op
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
    fns = {engine.compiled_for(t, False, tuple(jax.local_devices()[:1])) for t in tasks}  # conftest: one device
    return {fn: fn._cache_size() for fn in fns}


def test_nearby_axis_lengths_share_one_compiled_function():
    keys = dict(model="llama-7b", phases=["decode"], batch=[1, 2, 3], seq_len=[8, 16, 24])
    rooflax.sweep(**keys)
    before = _functions(keys)
    for more in ({"batch": [1, 2, 3, 4]}, {"seq_len": [8, 16, 24, 32, 40]}, {"batch": [5, 6]}):
        with compilations() as compiled:
            rooflax.sweep(**{**keys, **more})
        assert compiled == [], more  # nothing traced or compiled again
        assert _functions({**keys, **more}) == before, more  # same functions, no new cache entry


def test_the_shape_is_one_pytree_with_static_structure():
    model, dtype = rooflax.get_model("llama-2-70b"), rooflax.get_dtype("w4a16")
    shape = Shape.of(model, dtype, phase="verify", batch=8, seq_len=512, spec_k=16, causal=True)
    # B S phase K h H G d I V L w a k, then experts, experts per token, shared experts, expert width, routing
    # experts, tp pp ep, tree, shared experts' width, window, layers of each kind, of each kind per stage, the
    # five latent-attention widths
    numbers = (8, 512, 2, 16, 8192, 64, 8, 128, 28672, 32000, 80, 0.5, 2, 2, 0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 0, 80, 80)
    numbers += (0, 0, 0, 0, 0)
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
    constant = {
        name for chunk in engine.run(one, summary=True) for name, value in chunk.columns.items() if value.ndim == 0
    }
    assert constant == set(engine.POINT_CONSTANT) == {"hidden", "weight_bytes"}
    shared = rooflax.sweep(one, summary=True)
    gathered = rooflax.sweep(**keys, hidden=[4096, 5120, 6656], summary=True).filter(hidden=5120)
    order = ["phase", "batch", "seq_len"]
    assert_frame_equal(shared.sort(order), gathered.sort(order), check_exact=True)


def test_a_roof_without_a_band_leaves_it_out_and_changes_nothing_else():
    """A summary on a copy of the A40 with its band terms dropped computes no band (the chunks carry no band
    output) and its band columns are null; every other column equals the banded sweep's bit for bit."""
    keys = dict(phases=["prefill", "decode"], batch=[1, 8], seq_len=[128, 2048])
    a40 = rooflax.get_hardware("a40")
    bare = rooflax.parse_spec(**keys, hardware=[a40.without_band()])
    assert all(engine.BAND_OUTPUT not in chunk.columns for chunk in engine.run(bare, summary=True))
    banded, plain = rooflax.sweep(summary=True, **keys), rooflax.sweep(bare, summary=True)
    band = ["achieved_time_lo_s", "achieved_time_hi_s"]
    assert banded.select(band).null_count().row(0) == (0, 0)
    assert plain.select(band).null_count().row(0) == (plain.height, plain.height) == (8, 8)
    assert_frame_equal(banded.drop("hardware", *band), plain.drop("hardware", *band), check_exact=True)
