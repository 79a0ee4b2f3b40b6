"""Hypothesis properties: the jitted, vmapped engine against the integer reference."""

from __future__ import annotations

from fractions import Fraction

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reference import reference_costs

import rooflax
from rooflax.cost.roofline import is_compute_bound

HW = rooflax.get_hardware("a40")
# (gated_mlp, fused_attention, causal): each flag both ways and every pair of values of any two
# flags, in four combinations. They are static (one compiled function each), so drawing them from
# this set instead of freely keeps the tests about the arithmetic, not about compiling.
FLAGS = ((True, False, False), (True, True, True), (False, False, True), (False, True, False))


@st.composite
def sweeps(draw):
    gated_mlp, fused_attention, causal = draw(st.sampled_from(FLAGS))
    head_dim = draw(st.sampled_from([16, 64, 128]))
    kv_heads = draw(st.integers(1, 8))
    heads = kv_heads * draw(st.integers(1, 8))
    model = rooflax.Model(
        name="rand",
        hidden=heads * head_dim,
        layers=draw(st.integers(1, 96)),
        heads=heads,
        kv_heads=kv_heads,
        head_dim=head_dim,
        intermediate=draw(st.integers(1, 60_000)),
        vocab=draw(st.integers(1, 200_000)),
        gated_mlp=gated_mlp,
    )
    phases = draw(st.lists(st.sampled_from(["prefill", "decode", "verify"]), min_size=1, max_size=3, unique=True))
    seq_len = draw(st.lists(st.integers(1, 70_000), min_size=1, max_size=3, unique=True))
    keys = dict(
        model=model,
        hardware="a40",
        dtype=draw(st.sampled_from(["fp16", "fp32", "int8", "w4a16"])),
        phases=phases,
        batch=draw(st.lists(st.integers(1, 4096), min_size=1, max_size=3, unique=True)),
        seq_len=seq_len,
        fused_attention=fused_attention,
        causal=causal,
    )
    if "verify" in phases:
        keys["spec_k"] = draw(st.lists(st.integers(1, max(seq_len)), min_size=1, max_size=2, unique=True))
    return keys


def _rel(a, b):
    return abs(float(a) - float(b)) / max(abs(float(b)), 1e-300)


@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sweeps())
def test_engine_equals_integer_reference(keys):
    df = rooflax.sweep(**keys)
    model, dt = keys["model"], rooflax.get_dtype(keys["dtype"])
    peak, bw = HW.peak(dt.compute), HW.bandwidth_bytes_per_s
    expected_rows = 0
    for phase in keys["phases"]:
        for k in keys.get("spec_k", [None]) if phase == "verify" else [None]:
            for b in keys["batch"]:
                for s in keys["seq_len"]:
                    if k is not None and s < k:
                        continue
                    ref = reference_costs(
                        B=b,
                        S=s,
                        phase=phase,
                        K=k,
                        h=model.hidden,
                        H=model.heads,
                        G=model.kv_heads,
                        d=model.head_dim,
                        I=model.intermediate,
                        V=model.vocab,
                        w=dt.weight_bytes,
                        a=dt.act_bytes,
                        k=dt.kv_bytes,
                        causal=keys["causal"],
                        fused=keys["fused_attention"],
                        gated=model.gated_mlp,
                    )
                    rows = (
                        df.filter(phase=phase, batch=b, seq_len=s, spec_k=k)
                        if k
                        else df.filter(pl.col("phase") == phase, batch=b, seq_len=s)
                    )
                    assert sorted(rows.get_column("op").cast(pl.String)) == sorted(ref)
                    expected_rows += len(ref)
                    for row in rows.iter_rows(named=True):
                        f, by = ref[row["op"]]
                        assert _rel(row["flops"], f) <= 1e-12 and _rel(row["bytes"], by) <= 1e-12
                        assert _rel(row["intensity"], Fraction(f) / by) <= 1e-6
                        assert _rel(row["time_s"], max(Fraction(f) / Fraction(peak), by / Fraction(bw))) <= 1e-6
                        assert _rel(row["attainable_flops"], min(Fraction(peak), Fraction(bw) * f / by)) <= 1e-6
                        compute = Fraction(f) * Fraction(bw) >= Fraction(peak) * by
                        assert row["bound"] == ("compute" if compute else "memory")
    assert df.height == expected_rows  # verify points with seq_len < spec_k are dropped, nothing else


@pytest.mark.slow
@settings(max_examples=25, deadline=None)
@given(sweeps())
def test_attainable_never_exceeds_peak_and_bound_matches_ridge(keys):
    df = rooflax.sweep(**keys)
    peak = HW.peak(rooflax.get_dtype(keys["dtype"]).compute)
    assert (df.get_column("attainable_flops") <= peak).all()
    ridge = peak / HW.bandwidth_bytes_per_s  # the bound is the intensity column against the ridge, row by row
    assert ((df.get_column("intensity") >= ridge) == (df.get_column("bound") == "compute")).all()


@given(st.integers(1, 10**12), st.integers(1, 10**12), st.integers(1, 10**6), st.integers(1, 10**6))
def test_bound_flips_exactly_at_the_ridge(flops, bytes_, peak, bandwidth):
    ridge = Fraction(peak, bandwidth)  # exact numbers compare exactly
    at_ridge_flops = ridge * bytes_  # intensity exactly at the ridge
    assert is_compute_bound(at_ridge_flops, bytes_, ridge)
    assert not is_compute_bound(at_ridge_flops - Fraction(1, 10**9), bytes_, ridge)
    assert is_compute_bound(Fraction(flops), bytes_, ridge) == (Fraction(flops, bytes_) >= ridge)
    # integers (as evaluate has them) against the float ridge (as Roof has it): the correctly rounded
    # quotients, so an intensity exactly at the ridge is compute-bound however both round
    assert is_compute_bound(flops, bytes_, peak / bandwidth) == (flops / bytes_ >= peak / bandwidth)
    assert is_compute_bound(peak * flops, bandwidth * flops, peak / bandwidth)


@pytest.mark.slow
@settings(max_examples=20, deadline=None)
@given(sweeps())
def test_costs_monotone_in_batch_and_seq_len(keys):
    keys = {**keys, "batch": sorted(set(keys["batch"]) | {1, 7, 300}), "seq_len": sorted(set(keys["seq_len"]) | {64})}
    keys.pop("spec_k", None)
    keys["phases"] = [p for p in keys["phases"] if p != "verify"] or ["decode"]
    df = rooflax.sweep(**keys)
    for axis, held in (("batch", "seq_len"), ("seq_len", "batch")):
        steps = (
            df.sort(axis)
            .group_by("phase", "op", held, maintain_order=True)
            .agg(pl.col("flops").diff().min().alias("df"), pl.col("bytes").diff().min().alias("db"))
        )
        assert (steps.get_column("df").fill_null(0) >= 0).all(), axis
        assert (steps.get_column("db").fill_null(0) >= 0).all(), axis
