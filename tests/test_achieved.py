"""The achieved-performance model: hand-counted quantization, bounds against the ideal roof, bad fields."""

from __future__ import annotations

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

import rooflax
from rooflax.cost.achieved import Gemm, achieved_time, quantized_flops
from rooflax.cost.ops import make_step, op_costs
from rooflax.cost.shape import Shape

A40 = rooflax.get_hardware("a40")
TILES = {"tile_m": 128, "tile_n": 128, "tile_k": 32}


def _terms(hw: rooflax.Hardware, dtype: str = "fp16", **overrides) -> dict:
    """The keyword arguments of achieved_time for ``hw``, fields replaced by ``overrides``."""
    fields = {
        key: getattr(hw, key)
        for key in (
            "kernel_overhead_s",
            "sm_count",
            "tile_m",
            "tile_n",
            "tile_k",
            "compute_efficiency",
            "bandwidth_efficiency",
        )
    }
    fields.update(overrides)
    ce, be = fields.pop("compute_efficiency"), fields.pop("bandwidth_efficiency")
    return {
        **fields,
        "seconds_per_flop": 1 / (hw.peak(dtype) * ce),
        "seconds_per_byte": 1 / (hw.bandwidth_bytes_per_s * be),
    }


def test_quantized_flops_hand_counts():
    # decode qkv of Llama-13B at batch 1: M 1 -> one 16-row tile, N 15360 -> 120 tile columns, K 5120 (whole
    # steps); 120 tiles fill the 84 SMs (no split-K) in 2 waves: 2·84 units of 2·16·128·5120 FLOPs.
    assert quantized_flops(Gemm(1, 1, 15360, 5120), sm_count=84, **TILES) == 2 * 84 * 2 * 16 * 128 * 5120
    # decode o_proj: 40 tiles cannot fill 84 SMs, so K splits in two (⌊84/40⌋): 80 units of K 2560, one wave
    assert quantized_flops(Gemm(1, 1, 5120, 5120), sm_count=84, **TILES) == 84 * 2 * 16 * 128 * 2560
    # M 40 rounds up to 48 rows (three MMA steps of 16)
    assert quantized_flops(Gemm(100, 40, 128, 32), sm_count=100, **TILES) == 100 * 2 * 48 * 128 * 32
    # exactly one wave of whole tiles costs exactly the product's own FLOPs
    assert quantized_flops(Gemm(84, 128, 128, 64), sm_count=84, **TILES) == 2 * 84 * 128 * 128 * 64
    # K is padded to the step: K = 33 costs two steps of 32
    assert quantized_flops(Gemm(1, 128, 128, 33), sm_count=1, **TILES) == 2 * 128 * 128 * 64


def test_achieved_time_hand_computed():
    # memory-bound: 1e6 bytes at 696 GB/s · 0.85, plus 5 µs; compute term far smaller
    t = achieved_time(1e6, 1e6, (), **_terms(A40))
    assert t == pytest.approx(5e-6 + 1e6 / (696e9 * 0.85), rel=1e-12)
    # compute-bound product of 1.5 waves: the quantized count (2 waves) sets the time
    g = Gemm(126, 128, 128, 4096)  # 126 tiles on 84 SMs
    spent = 2 * 84 * 2 * 128 * 128 * 4096
    t = achieved_time(2 * 126 * 128 * 128 * 4096, 1.0, (g,), **_terms(A40))
    assert t == pytest.approx(5e-6 + spent / (149.7e12 * 0.8), rel=1e-12)


dims = st.integers(1, 1 << 16)


@pytest.mark.slow
@given(
    count=st.integers(1, 64),
    m=dims,
    n=dims,
    k=dims,
    bytes_=st.floats(1, 1e12),
    overhead=st.floats(1e-9, 1e-3),
    ce=st.floats(0.01, 1),
    be=st.floats(0.01, 1),
    sms=st.integers(1, 400),
)
def test_achieved_never_beats_the_roof(count, m, n, k, bytes_, overhead, ce, be, sms):
    g = Gemm(count, m, n, k)
    flops = 2 * count * m * n * k
    peak, bandwidth = 1e14, 1e12
    ideal = max(flops / peak, bytes_ / bandwidth)
    achieved = achieved_time(
        flops,
        bytes_,
        (g,),
        seconds_per_flop=1 / (peak * ce),
        seconds_per_byte=1 / (bandwidth * be),
        kernel_overhead_s=overhead,
        sm_count=sms,
        tile_m=128,
        tile_n=64,
        tile_k=32,
    )
    assert achieved >= ideal
    assert achieved >= (ideal + overhead) * (1 - 1e-12)


def test_achieved_tends_to_ideal_as_the_op_grows():
    """With efficiencies of 1, overhead and quantization fade: the ratio falls toward 1."""
    terms = _terms(A40, compute_efficiency=1.0, bandwidth_efficiency=1.0)
    ratios = []
    for scale in (1, 4, 16, 64, 256):
        g = Gemm(1, 100 * scale, 100 * scale, 4096)  # never a whole number of tiles or waves
        flops = 2 * g.m * g.n * g.k
        bytes_ = 2 * (g.m * g.k + g.k * g.n + g.m * g.n)
        ideal = max(flops / A40.peak("fp16"), bytes_ / A40.bandwidth_bytes_per_s)
        ratios.append(achieved_time(flops, bytes_, (g,), **terms) / ideal)
    assert all(a > b for a, b in itertools.pairwise(ratios))
    assert ratios[0] > 1.5 and ratios[-1] < 1.01


def test_efficiency_sets_the_large_op_limit():
    g = Gemm(84 * 64, 128, 128, 8192)  # whole tiles, whole waves: only the efficiency remains
    flops = 2 * g.count * g.m * g.n * g.k
    terms = _terms(A40, kernel_overhead_s=1e-12)
    t = achieved_time(flops, 1.0, (g,), **terms)
    assert t * A40.peak("fp16") / flops == pytest.approx(1 / 0.8, rel=1e-9)


def test_preset_achieved_fields():
    assert (
        A40.sm_count,
        rooflax.get_hardware("a100-80gb-pcie").sm_count,
        rooflax.get_hardware("h100-sxm").sm_count,
    ) == (84, 108, 132)
    for hw in rooflax.HARDWARE.values():
        assert hw.kernel_overhead_s > 0 and 0 < hw.compute_efficiency <= 1 and 0 < hw.bandwidth_efficiency <= 1
        assert "SM" in hw.source or "compute units" in hw.source
        assert math.log2(hw.tile_m).is_integer()


_BASE = "name = 'x'\nbandwidth_bytes_per_s = 1e12\nmemory_bytes = 1e9\n{}\n[peak_flops]\nfp16 = 1e14\n"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("kernel_overhead_s = 0", "kernel_overhead_s: 0 is outside the range a real part has, 1e-12 to 1 s"),
        ("kernel_overhead_s = -1e-6", "kernel_overhead_s: -1e-06 is outside the range a real part has, 1e-12 to 1 s"),
        ("compute_efficiency = 0", "compute_efficiency: 0 is outside the range a real part has, 0.0001 to 1"),
        ("bandwidth_efficiency = 1.2", "bandwidth_efficiency: 1.2 is outside the range a real part has, 0.0001 to 1"),
        ("compute_efficiency = 'high'", "compute_efficiency: expected a number from 0.0001 to 1, got 'high'"),
        ("sm_count = 84.5", "sm_count: expected a positive integer, got 84.5"),
        ("tile_m = 0", "tile_m: expected a positive integer, got 0"),
        ("sm_cuont = 84", "did you mean 'sm_count'"),
    ],
)
def test_bad_achieved_fields(tmp_path, line, message):
    path = tmp_path / "hw.toml"
    path.write_text(_BASE.format(line))
    with pytest.raises(rooflax.SpecError, match=message) as info:
        rooflax.load_hardware(path)
    assert "\n" not in str(info.value)


def test_achieved_fields_round_trip(tmp_path):
    path = tmp_path / "hw.toml"
    path.write_text(_BASE.format("sm_count = 7\nkernel_overhead_s = 2e-6\ncompute_efficiency = 0.5"))
    hw = rooflax.load_hardware(path)
    assert (hw.sm_count, hw.kernel_overhead_s, hw.compute_efficiency, hw.bandwidth_efficiency) == (7, 2e-6, 0.5, 0.85)
    again = tmp_path / "again.toml"
    again.write_text(rooflax.config.hardware.hardware_to_toml(hw))
    assert rooflax.load_hardware(again) == hw


def test_group_terms_override_and_round_trip(tmp_path):
    path = tmp_path / "hw.toml"
    path.write_text(
        _BASE.format("kernel_overhead_s = 3e-6") + '\n[group_terms."qk/pv"]\nkernel_overhead_s = 9e-6\n'
        "bandwidth_efficiency = 0.5\n"
    )
    hw = rooflax.load_hardware(path)

    def fitted(group):  # a file with no band has NaN bands, and no fitted range
        terms = hw.terms(group)
        assert math.isnan(terms.pop("band_low")) and math.isnan(terms.pop("band_high"))
        assert all(math.isnan(terms.pop(key)) for key in rooflax.config.hardware.RANGE_TERMS)
        return terms

    assert fitted("qk/pv") == {
        "kernel_overhead_s": 9e-6,
        "compute_efficiency": 0.8,
        "bandwidth_efficiency": 0.5,
        "l2_speedup": 1.0,
        "corner": 0.0,
        "link_scaling": 0.0,
    }
    assert fitted("qkv mlp") == {
        "kernel_overhead_s": 3e-6,
        "compute_efficiency": 0.8,
        "bandwidth_efficiency": 0.85,
        "l2_speedup": 1.0,
        "corner": 0.0,
        "link_scaling": 0.0,
    }
    again = tmp_path / "again.toml"
    again.write_text(rooflax.config.hardware.hardware_to_toml(hw))
    assert rooflax.load_hardware(again) == hw


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('[group_terms."qk/pvv"]\nkernel_overhead_s = 1e-6', "unknown op group 'qk/pvv'; did you mean 'qk/pv'"),
        ('[group_terms."qk/pv"]\ncompute_efficiency = 2', r"group_terms.qk/pv: compute_efficiency: 2 is outside"),
        ('[group_terms."qk/pv"]\nkernel_overhead = 1e-6', "did you mean 'kernel_overhead_s'"),
        ('[group_terms]\n"qk/pv" = 3', "group_terms.qk/pv must be a table"),
    ],
)
def test_bad_group_terms(tmp_path, table, message):
    path = tmp_path / "hw.toml"
    path.write_text(_BASE.format("") + "\n" + table + "\n")
    with pytest.raises(rooflax.SpecError, match=message) as info:
        rooflax.load_hardware(path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("model", ["llama-13b", "llama-2-70b"])
@pytest.mark.parametrize(
    ("phase", "batch", "seq_len", "spec_k"),
    [("decode", 3, 1000, None), ("prefill", 2, 300, None), ("verify", 4, 777, 16)],
)
def test_gemm_shapes_do_the_ops_flops(model, phase, batch, seq_len, spec_k):
    """Every product's 2·count·m·n·k adds up to its op's dense FLOPs (fused: plus the softmax's 5 per score)."""
    m = rooflax.get_model(model)
    for fused in (False, True):
        ops = rooflax.evaluate(
            model=model, phase=phase, batch=batch, seq_len=seq_len, spec_k=spec_k, fused_attention=fused
        ).ops
        q = {"prefill": seq_len, "decode": 1, "verify": spec_k}[phase]
        step = make_step(
            Shape.of(
                m,
                rooflax.get_dtype("fp16"),
                phase=phase,
                batch=batch,
                seq_len=seq_len,
                spec_k=spec_k,
                fused_attention=fused,
            )
        )
        products = 0
        for op, _, _ in op_costs(step):
            gemm_flops = sum(2 * g.count * g.m * g.n * g.k for g in op.gemms(step))
            extra = 5 * batch * m.heads * q * seq_len if op.name == "attention" else 0
            if op.gemms(step):
                products += 1
                assert gemm_flops + extra == ops[op.name].flops, op.name
        assert products == (8 if not fused else 7)


# --- in the engine and the frames ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_engine_row_hand_computed():
    """Decode o_proj of Llama-13B at batch 1 on the A40: memory-bound below the roof."""
    df = rooflax.sweep(phases=["decode"], batch=[1], seq_len=[2048])
    row = df.filter(op="o_proj").row(0, named=True)
    flops, bytes_ = 2 * 5120 * 5120, 2 * 5120 * 5120 + 2 * 5120 + 2 * 5120
    terms = A40.terms("qkv mlp")  # the A40's calibrated terms (Ampere's, fitted to the A100 SXM)
    compute = 84 * 2 * 16 * 128 * 2560 / (149.7e12 * terms["compute_efficiency"])  # split-K units, one wave
    memory = bytes_ / (696e9 * terms["bandwidth_efficiency"])
    overhead = terms["kernel_overhead_s"]
    assert compute < memory
    time = overhead + memory + terms["corner"] * compute  # the fitted corner: the shorter side overlaps in part
    assert row["achieved_time_s"] == pytest.approx(time, rel=1e-12)
    assert row["achieved_flops"] == pytest.approx(flops / time, rel=1e-12)


HW_FILE = (
    _BASE.replace("name = 'x'", "name = 'slow'").format("sm_count = 7\nkernel_overhead_s = 2e-5\ntile_m = 64")
    + '\n[group_terms."qk/pv"]\nbandwidth_efficiency = 0.3\n'
)


@pytest.mark.slow
def test_achieved_is_below_the_roof_on_every_row(tmp_path):
    (tmp_path / "slow.toml").write_text(HW_FILE)
    df = rooflax.sweep(
        hardware=["a40", "h100-sxm", str(tmp_path / "slow.toml")],
        phases=["prefill", "decode", "verify"],
        batch=[1, 3, 64],
        seq_len=[16, 500, 4096],
        spec_k=[4, 16],
    )
    assert df.height > 0
    assert (df["achieved_time_s"] > df["time_s"]).all()
    assert (df["achieved_flops"] < df["attainable_flops"]).all()
    assert df.filter(pl.col("hardware") == "slow", op="qk")["achieved_time_s"].min() >= 2e-5


@pytest.mark.slow
def test_engine_equals_evaluate_below_the_roof():
    df = rooflax.sweep(phases=["prefill", "verify"], batch=[2, 32], seq_len=[64, 3000], spec_k=[16], causal=True)
    for row in df.filter(pl.col("op").is_in(["qkv_proj", "qk", "softmax", "lm_head"])).iter_rows(named=True):
        point = rooflax.evaluate(
            phase=row["phase"], batch=row["batch"], seq_len=row["seq_len"], spec_k=row["spec_k"], causal=True
        ).ops[row["op"]]
        assert row["achieved_time_s"] == pytest.approx(point.achieved_time_s, rel=1e-12)


@pytest.mark.slow
def test_summary_achieved_totals_add_up():
    long = rooflax.sweep(phases=["prefill", "decode"], batch=[1, 8], seq_len=[256])
    summary = rooflax.sweep(phases=["prefill", "decode"], batch=[1, 8], seq_len=[256], summary=True)
    layers = rooflax.get_model("llama-13b").layers
    expected = long.group_by("phase", "batch").agg(
        (pl.when(pl.col("op") == "lm_head").then(1).otherwise(layers) * pl.col("achieved_time_s"))
        .sum()
        .alias("expected")
    )
    joined = summary.join(expected, on=["phase", "batch"])
    assert joined.height == 4
    for row in joined.iter_rows(named=True):
        assert row["achieved_time_s"] == pytest.approx(row["expected"], rel=1e-12)
        tokens = row["batch"] * (row["seq_len"] if row["phase"] == "prefill" else 1)
        assert row["achieved_tokens_per_s"] == pytest.approx(tokens / row["expected"], rel=1e-12)
        assert row["achieved_tokens_per_s"] < row["tokens_per_s"]


@pytest.mark.slow
def test_achieved_gap_narrows_to_the_efficiency_as_prefill_grows():
    """Past the ridge, overhead and quantization fade and the ratio falls toward 1 / compute_efficiency plus the
    corner's share of the memory time (``t = max(c, m) + β·min(c, m)``, both at their efficiencies)."""
    df = rooflax.sweep(phases=["prefill"], batch=[1], seq_len=[1024, 2048, 8192, 32768]).filter(op="up_proj")
    assert (df["bound"] == "compute").all()
    ratio = (df["achieved_time_s"] / df["time_s"]).to_list()
    assert all(a > b for a, b in itertools.pairwise(ratio))
    terms, last = A40.terms("up/gate/down"), df.row(-1, named=True)
    compute, memory = last["flops"] / 149.7e12, last["bytes"] / 696e9
    limit = 1 / terms["compute_efficiency"] + terms["corner"] * memory / terms["bandwidth_efficiency"] / compute
    assert limit < ratio[-1] < limit * 1.01


@pytest.mark.slow
def test_below_the_roof_with_experts_and_parallel_layouts():
    """Expert products, routers and collectives (overhead plus their link time) are slower than their roof too."""
    df = rooflax.sweep(
        model="mixtral-8x7b",
        hardware="h100-sxm",
        phases=["prefill", "decode"],
        batch=[1, 256],
        seq_len=[512],
        tp=[1, 8],
        ep=[1, 2],
    )
    assert {"router", "expert_up", "attn_allreduce", "moe_dispatch"} <= set(df["op"].cast(pl.String).unique())
    assert (df["achieved_time_s"] > df["time_s"]).all()
    comm = df.filter(pl.col("group") == "comm")
    h100 = rooflax.get_hardware("h100-sxm")
    terms = h100.terms("comm")  # fitted: an overhead and a link efficiency below 1
    link = comm["bytes"] / h100.interconnect_bytes_per_s
    expected = terms["kernel_overhead_s"] + link * (1 / terms["bandwidth_efficiency"] - 1)
    assert (comm["achieved_time_s"] - comm["time_s"]).to_list() == pytest.approx(expected.to_list(), rel=1e-9)


@pytest.mark.slow
@given(x=st.integers(0, 2**53 - 1), y=st.integers(1, 2**24), near=st.sampled_from([None, -1, 0, 1]))
def test_whole_division_of_jax_arrays_is_exact_below_2_53(x, y, near):
    """ceil and floor division of float64 JAX arrays (the engine's path) equal integer division."""
    import jax
    import jax.numpy as jnp

    from rooflax.cost.achieved import ceil_div, floor_div

    if near is not None:  # the hardest cases: just below, at and just above a multiple of y
        x = max(0, min(2**53 - 1, x // y * y + near))
    with jax.enable_x64(True):
        xs, ys = jnp.asarray([x], jnp.float64), jnp.asarray([y], jnp.float64)
        assert int(ceil_div(xs, ys)[0]) == -(-x // y) and int(ceil_div(xs, y)[0]) == -(-x // y)
        assert int(floor_div(xs, ys)[0]) == x // y and int(floor_div(x, ys)[0]) == x // y


@pytest.mark.parametrize("xp", [np, jnp], ids=["numpy", "jnp"])
def test_one_backend_argument_prices_arrays_as_python_prices_each_element(xp):
    """``xp`` (numpy or jax.numpy) gives, element by element, the Python numbers' result (``pymath``, the default)."""
    gemms = [Gemm(1, 1, 15360, 5120), Gemm(1, 1, 5120, 5120), Gemm(100, 40, 128, 32), Gemm(1, 128, 128, 33)]
    terms = _terms(A40)
    want = [achieved_time(2.0 * g.m * g.n * g.k, 1e6, (g,), **terms) for g in gemms]
    assert [quantized_flops(g, sm_count=84, **TILES) for g in gemms[:2]] == [
        2 * 84 * 2 * 16 * 128 * 5120,
        84 * 2 * 16 * 128 * 2560,
    ]
    with jax.enable_x64(True):
        stacked = Gemm(*(xp.asarray([float(getattr(g, name)) for g in gemms]) for name in Gemm._fields))
        flops = 2.0 * stacked.m * stacked.n * stacked.k
        got = achieved_time(flops, xp.full(len(gemms), 1e6), (stacked,), **terms, xp=xp)
        assert [float(t) for t in got] == want
