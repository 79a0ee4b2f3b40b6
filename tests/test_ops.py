"""The cost model against hand-derived integers and an independent oracle."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import pytest
from jax.experimental import roofline as jax_roofline

import rooflax
from rooflax.config.models import LayerKind
from rooflax.cost.achieved import pymath
from rooflax.cost.ops import ONCE, OpDef, layer_ops, make_step, make_steps, model_costs, op_costs
from rooflax.cost.roofline import Cost, Roof, op_row
from rooflax.cost.shape import Shape, op_flags
from rooflax.names import BOUNDS, GROUPS

# Llama-13B, fp16 (w = a = k = 2): h 5120, H = G = 40, d 128, I 13824, V 32000.
# Each row: (phase, B, S, K, op, flops, bytes), derived by hand in the comments.
HAND = [
    # decode, M = 1: qkv h -> (40+80)·128 = 15360
    (
        "decode",
        1,
        2048,
        None,
        "qkv_proj",
        157_286_400,  # 2·1·5120·15360
        157_327_360,
    ),  # 2·5120·15360 + 2·5120 (x) + 2·5120 (Q) + 2·10240 (K, V to cache)
    (
        "decode",
        1,
        2048,
        None,
        "qk",
        20_971_520,  # 2·1·40·2048·128
        21_145_600,
    ),  # 2·40·128 (Q) + 2·40·2048·128 (K cache) + 2·40·2048 (scores)
    (
        "decode",
        1,
        2048,
        None,
        "down_proj",
        141_557_760,  # 2·13824·5120
        141_595_648,
    ),  # 2·13824·5120 + 2·13824 + 2·5120
    (
        "decode",
        1,
        2048,
        None,
        "lm_head",
        327_680_000,  # 2·1·5120·32000
        327_754_240,
    ),  # 2·5120·32000 + 2·5120 + 2·32000
    # prefill, M = 128
    (
        "prefill",
        1,
        128,
        None,
        "qkv_proj",
        20_132_659_200,  # 2·128·5120·15360
        162_529_280,
    ),  # 157286400 + 1310720 (x) + 1310720 (Q) + 2621440 (K, V)
    (
        "prefill",
        1,
        128,
        None,
        "qk",
        167_772_160,  # 2·40·128·128·128
        3_932_160,
    ),  # 3 × 2·40·128·128 (Q, K, scores)
    ("prefill", 1, 128, None, "pv", 167_772_160, 3_932_160),  # same shapes as qk
    ("prefill", 1, 128, None, "lm_head", 327_680_000, 327_754_240),  # last token only
    # decode, B = 64: M = 64
    (
        "decode",
        64,
        512,
        None,
        "up_proj",
        9_059_696_640,  # 2·64·5120·13824
        143_982_592,
    ),  # 141557760 + 2·64·5120 + 2·64·13824
    (
        "decode",
        64,
        512,
        None,
        "pv",
        335_544_320,  # 2·64·40·512·128
        338_821_120,
    ),  # 2·64·40·512 (probs) + 2·64·40·512·128 (V) + 2·64·40·128 (O)
    # verify, B = 8, K = 16: M = 128
    (
        "verify",
        8,
        1024,
        16,
        "o_proj",
        6_710_886_400,  # 2·128·5120·5120
        55_050_240,
    ),  # 2·5120·5120 + 2·128·5120 + 2·128·5120
    (
        "verify",
        8,
        1024,
        16,
        "qk",
        1_342_177_280,  # 2·8·40·16·1024·128
        95_682_560,
    ),  # 1310720 (Q) + 83886080 (K) + 10485760 (scores)
    (
        "verify",
        8,
        1024,
        16,
        "lm_head",
        41_943_040_000,  # 2·128·5120·32000
        337_182_720,
    ),  # 327680000 + 2·128·5120 + 2·128·32000
]


@pytest.mark.parametrize(("phase", "batch", "seq_len", "spec_k", "op", "flops", "bytes_"), HAND)
def test_hand_derived_llama13b(phase, batch, seq_len, spec_k, op, flops, bytes_):
    r = rooflax.evaluate(model="llama-13b", dtype="fp16", phase=phase, batch=batch, seq_len=seq_len, spec_k=spec_k)
    assert r.ops[op].flops == flops
    assert r.ops[op].bytes == bytes_


@pytest.mark.parametrize("phase", ["prefill", "decode"])
def test_sweep_rows_match_hand_counts(phase):
    rows = [r for r in HAND if r[0] == phase]
    df = rooflax.sweep(phases=[phase], batch=sorted({r[1] for r in rows}), seq_len=sorted({r[2] for r in rows}))
    for _, batch, seq_len, _, op, flops, bytes_ in rows:
        got = df.filter(batch=batch, seq_len=seq_len, op=op).select("flops", "bytes").row(0)
        assert got == (flops, bytes_)


def _oracle(fn, *shapes):
    _, result = jax_roofline.roofline(fn)(*[jax.ShapeDtypeStruct(s, jnp.float16) for s in shapes])
    return result.flops, result.unfused_hbm_bytes


def _reference_layer(model, B, Q, T):
    """Flops and HBM bytes of each matrix product of a reference JAX layer, by the oracle."""
    h, H, G, d, I = model.hidden, model.heads, model.kv_heads, model.head_dim, model.intermediate
    M, r = B * Q, H // G
    attn_q, attn_p = (B, G, r, Q, d), (B, G, r, Q, T)
    return {
        "qkv_proj": _oracle(lambda x, w: x @ w, (M, h), (h, (H + 2 * G) * d)),
        "o_proj": _oracle(lambda x, w: x @ w, (M, H * d), (H * d, h)),
        "gate_proj": _oracle(lambda x, w: x @ w, (M, h), (h, I)),
        "up_proj": _oracle(lambda x, w: x @ w, (M, h), (h, I)),
        "down_proj": _oracle(lambda x, w: x @ w, (M, I), (I, h)),
        "qk": _oracle(lambda q, k: jnp.einsum("bgrqd,bgtd->bgrqt", q, k), attn_q, (B, G, T, d)),
        "pv": _oracle(lambda p, v: jnp.einsum("bgrqt,bgtd->bgrqd", p, v), attn_p, (B, G, T, d)),
    }


@pytest.mark.parametrize("model", ["llama-13b", "llama-2-70b", "mistral-7b"])  # MHA, GQA 8:1, GQA 4:1
@pytest.mark.parametrize(
    ("phase", "seq_len", "spec_k"), [("prefill", 256, None), ("decode", 1024, None), ("verify", 512, 16)]
)
def test_matches_jax_roofline_oracle(model, phase, seq_len, spec_k):
    m = rooflax.get_model(model)
    batch = 4
    q = {"prefill": seq_len, "decode": 1, "verify": spec_k}[phase]
    oracle = _reference_layer(m, batch, q, seq_len)
    ours = rooflax.evaluate(model=model, dtype="fp16", phase=phase, batch=batch, seq_len=seq_len, spec_k=spec_k)
    for op, (flops, bytes_) in oracle.items():
        got = ours.ops[op]
        assert got.flops == pytest.approx(flops, rel=1e-6), op
        assert got.bytes == pytest.approx(bytes_, rel=1e-6), op


def test_kv_cache_dtype_changes_only_cache_bytes():
    base = rooflax.evaluate(phase="decode", batch=2, seq_len=64).ops
    fp8 = rooflax.evaluate(phase="decode", batch=2, seq_len=64, kv_dtype="fp8").ops
    m = rooflax.get_model("llama-13b")
    # K and V written by qkv_proj: 2·G·d per token, one byte less each.
    assert base["qkv_proj"].bytes - fp8["qkv_proj"].bytes == 2 * 2 * m.kv_heads * m.head_dim * 1
    # qk reads the K cache: B·G·T·d elements, one byte less each.
    assert base["qk"].bytes - fp8["qk"].bytes == 2 * m.kv_heads * 64 * m.head_dim
    assert base["up_proj"] == fp8["up_proj"]


def test_w4a16_halves_weight_bytes_of_fp16_quarter():
    fp16 = rooflax.evaluate(phase="decode", batch=1, seq_len=16).ops["up_proj"]
    w4 = rooflax.evaluate(phase="decode", batch=1, seq_len=16, dtype="w4a16").ops["up_proj"]
    weights = 5120 * 13824
    assert fp16.bytes - w4.bytes == 2 * weights - weights / 2
    assert fp16.flops == w4.flops


def test_causal_counts_unmasked_scores_only():
    dense = rooflax.evaluate(phase="prefill", batch=1, seq_len=8).ops["qk"]
    causal = rooflax.evaluate(phase="prefill", batch=1, seq_len=8, causal=True).ops["qk"]
    assert dense.flops == 2 * 40 * 8 * 8 * 128
    assert causal.flops == 2 * 40 * (8 * 9 // 2) * 128  # 1 + 2 + ... + 8 keys
    decode = rooflax.evaluate(phase="decode", batch=1, seq_len=8, causal=True).ops["qk"]
    assert decode.flops == 2 * 40 * 8 * 128  # the one new query sees every key


def test_fused_attention_reads_qkv_once():
    r = rooflax.evaluate(phase="decode", batch=1, seq_len=100, fused_attention=True).ops
    assert "qk" not in r and "softmax" not in r and "pv" not in r
    unfused = rooflax.evaluate(phase="decode", batch=1, seq_len=100).ops
    assert r["attention"].flops == sum(unfused[o].flops for o in ("qk", "softmax", "pv"))
    assert r["attention"].bytes == 2 * 40 * 128 * 2 + 2 * 2 * 40 * 100 * 128  # Q and O; K and V


def test_op_sets():
    names = [op.name for op in layer_ops(gated_mlp=True, fused_attention=False)]
    assert names[-1] == "lm_head" and "gate_proj" in names and "attention" not in names
    names = [op.name for op in layer_ops(gated_mlp=False, fused_attention=True)]
    assert "gate_proj" not in names and "silu" in names and "attention" in names and "qk" not in names


def test_totals_decode_is_weights_over_bandwidth():
    r = rooflax.evaluate(phase="decode", batch=1, seq_len=1)
    weights = 2 * rooflax.get_model("llama-13b").params
    # At batch 1 every op is memory-bound, so the time is all bytes over bandwidth.
    assert r.time_s == pytest.approx(r.bytes / 696e9, rel=1e-12)
    assert r.weight_bytes == weights
    assert r.kv_cache_bytes == 2 * 2 * 40 * 128 * 40 * 1 * 1
    assert r.tokens_per_s == pytest.approx(1 / r.time_s)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch": 0, "seq_len": 8}, "batch: expected a positive integer, got 0"),
        ({"batch": 1.5, "seq_len": 8}, "batch: expected a positive integer, got 1.5"),
        ({"batch": 1, "seq_len": -3}, "seq_len: expected a positive integer, got -3"),
        ({"batch": 1, "seq_len": 8, "phase": "verify", "spec_k": 16}, "verify needs seq_len ≥ spec_k"),
        ({"batch": 1, "seq_len": 8, "phase": "decoding"}, "did you mean 'decode'"),
        ({"batch": 1, "seq_len": 8, "hidden": 5000}, "not a multiple of llama-13b's head_dim 128"),
        ({"batch": 1, "seq_len": 8, "model": "llama-2-70b", "hidden": 128 * 12}, "not a multiple of llama-2-70b's 8"),
        (
            {"batch": 1, "seq_len": 8, "dtype": "fp8"},
            "dtype: fp8 needs FP8 tensor cores; a40 has fp32, tf32, fp16, bf16, int8",
        ),
        ({"batch": 1, "seq_len": 8, "hardware": "h1OO"}, "unknown name 'h1OO'"),
    ],
)
def test_bad_points(kwargs, message):
    with pytest.raises(rooflax.SpecError, match=message) as info:
        rooflax.evaluate(**{"phase": "decode", **kwargs})
    assert "\n" not in str(info.value)


# A roof of powers of two, so every figure of a row is exact: peak 128 FLOP/s, 8 B/s of memory (ridge 16 FLOP/B),
# 2 B/s of interconnect with 1/4 s a hop; below it 1 s of kernel overhead, half the peak and half the bandwidth
# (the comm group's bytes/s: half the interconnect's, 1 B/s).
TOY_ROOF = Roof(
    peak=128.0,
    bandwidth=8.0,
    memory=1.0,
    inv_peak=1 / 128,
    inv_bandwidth=1 / 8,
    ridge=16.0,
    interconnect=2.0,
    inv_interconnect=1 / 2,
    latency=0.25,
    overhead_s=(1.0,) * len(GROUPS),
    seconds_per_flop=(1 / 64,) * len(GROUPS),
    seconds_per_byte=tuple(1.0 if group == "comm" else 1 / 4 for group in GROUPS),
    corner=(0.0,) * len(GROUPS),
    band_low=(0.5,) * len(GROUPS),
    band_high=(2.0,) * len(GROUPS),
)  # a band of half to twice
ELEMENTWISE = OpDef(name="toy", group="elementwise", cost=lambda s: (0, 0))
COLLECTIVE = OpDef(name="toy_reduce", group="comm", cost=lambda s: (0, 0), hops=lambda s: 3)


@pytest.mark.parametrize("xp", [pymath, jnp], ids=["python", "jnp"])
@pytest.mark.parametrize(
    ("op", "flops", "bytes_", "want"),
    [
        # intensity 4 < 16: memory; attainable 8·4; time max(64/128, 16/8); achieved 1 + max(64/64, 16/4) = 5
        (ELEMENTWISE, 64, 16, (4.0, 32.0, 2.0, 64 / 5, 5.0, "memory")),
        # intensity 16 = the ridge: compute; attainable the peak; time max(2, 2); achieved 1 + max(4, 4)
        (ELEMENTWISE, 256, 16, (16.0, 128.0, 2.0, 256 / 5, 5.0, "compute")),
        # intensity 64: compute; time max(8, 2); achieved 1 + max(16, 4) = 17
        (ELEMENTWISE, 1024, 16, (64.0, 128.0, 8.0, 1024 / 17, 17.0, "compute")),
        # a collective: 8 B over 2 B/s plus 3 hops of 1/4 s = 4.75 s; achieved: 1 s overhead, 8 B at 1 B/s, the hops;
        # network-bound
        (COLLECTIVE, 0, 8, (0.0, 0.0, 4.75, 0.0, 9.75, "network")),
    ],
)
def test_op_row_against_hand_computed_rows(xp, op, flops, bytes_, want):
    with jax.enable_x64(True):  # the engine's float64
        row = op_row(op, None, jnp.asarray(float(flops)) if xp is jnp else flops, bytes_, TOY_ROOF, xp=xp)
        got = (
            row.intensity,
            row.attainable_flops,
            row.time_s,
            row.achieved_flops,
            row.achieved_time_s,
            BOUNDS[row.bound],
        )
        assert row.op is op and float(row.flops) == flops and row.bytes == bytes_
    assert tuple(float(v) for v in got[:-1]) == want[:-1] and got[-1] == want[-1]


def test_a_rows_cost_puts_a_collectives_bytes_on_the_interconnect():
    memory, network = op_row(ELEMENTWISE, None, 64, 16, TOY_ROOF), op_row(COLLECTIVE, None, 0, 8, TOY_ROOF)
    assert memory.cost == Cost(flops=64, bytes=16, time_s=2.0, achieved_time_s=5.0)
    assert network.cost == Cost(flops=0, network_bytes=8, time_s=4.75, achieved_time_s=9.75)


def test_cost_adds_field_by_field_and_is_a_frozen_slotted_keyword_value():
    a = Cost(flops=1, bytes=2, network_bytes=3, time_s=0.5, achieved_time_s=0.75)
    b = Cost(flops=10, bytes=20, network_bytes=30, time_s=0.25, achieved_time_s=1.0)
    assert a + b == Cost(flops=11, bytes=22, network_bytes=33, time_s=0.75, achieved_time_s=1.75)
    assert sum((a, b, a), Cost()) == Cost(flops=12, bytes=24, network_bytes=36, time_s=1.25, achieved_time_s=2.5)
    assert Cost() + a == a
    with pytest.raises(TypeError):
        a + 1
    with pytest.raises(TypeError):
        Cost(1, 2)  # keyword-only
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.flops = 2
    assert not hasattr(a, "__dict__")


def test_a_collective_is_exactly_an_op_of_the_comm_group():
    assert (
        [op.name for op in layer_ops(comm=("tp", "pp", "ep"), moe=True) if op.collective]
        == [op.name for op in layer_ops(comm=("tp", "pp", "ep"), moe=True) if op.group == "comm"]
        == ["attn_allreduce", "moe_dispatch", "moe_combine", "mlp_allreduce", "pp_send"]
    )
    with pytest.raises(ValueError, match="'comm' group"):
        OpDef(name="odd", group="comm", cost=lambda s: (0, 0))
    with pytest.raises(ValueError, match="'comm' group"):
        OpDef(name="odd", group="elementwise", cost=lambda s: (0, 0), hops=lambda s: 1)


DENSE, MOE = LayerKind(), LayerKind(mlp="moe")


@pytest.mark.parametrize(
    ("model", "layout", "want"),
    [
        ("llama-13b", (1, 1, 1), {"kinds": (DENSE,), "shared_mlp": False, "comm": ()}),
        ("llama-13b", (2, 4, 1), {"kinds": (DENSE,), "shared_mlp": False, "comm": ("tp", "pp")}),
        ("mixtral-8x7b", (1, 1, 2), {"kinds": (MOE,), "shared_mlp": False, "comm": ("ep",)}),  # no shared experts
        ("qwen1.5-moe-a2.7b", (2, 1, 2), {"kinds": (MOE,), "shared_mlp": True, "comm": ("tp", "ep")}),  # shared
    ],
)
def test_op_flags_are_derived_once_for_shapes_and_specs(model, layout, want):
    m, (tp, pp, ep) = rooflax.get_model(model), layout
    flags = op_flags(m, fused_attention=True, tp=tp, pp=pp, ep=ep)
    assert flags == {"gated_mlp": m.gated_mlp, "fused_attention": True, "mla": False, "absorbed": False, **want}
    shape = Shape.of(
        m, rooflax.get_dtype("fp16"), phase="decode", batch=4, seq_len=64, fused_attention=True, tp=tp, pp=pp, ep=ep
    )
    assert {name: getattr(shape, name) for name in flags} == flags
    spec = rooflax.parse_spec(model=model, batch=[4], seq_len=[64], fused_attention=True)
    rows = [(step.kind if op not in ONCE else None, op) for step, op, _, _ in model_costs(make_steps(shape))]
    assert rows == list(spec.ops_for(m, layout, phase="decode"))
    assert [op for op, _, _ in op_costs(make_step(shape))] == [op for _, op in rows]  # one kind: one step
