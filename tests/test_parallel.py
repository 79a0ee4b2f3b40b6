"""Many devices and mixtures of experts: hand-derived per-device counts, the collectives' formulas,
the MoE oracle, the pipeline rules, and one-line errors (issue 10)."""

from __future__ import annotations

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import polars as pl
import pytest
from jax.experimental import roofline as jax_roofline
from one_line import one_line_error

import rooflax

# fp16: w = a = k = 2 bytes. Decode, B = 1, S = 1024: M = 1 token, T = 1024.
# Llama-2-70B: h 8192, H 64, G 8, d 128, I 28672, V 32000, L 80.
# Llama-13B:   h 5120, H 40, G 40, d 128, I 13824, V 32000, L 40.
# Per device under tp: H/tp heads, ⌈G/tp⌉ KV heads, I/tp, ⌈V/tp⌉.
HAND = [
    # Llama-2-70B, tp = 2: 32 heads, 4 KV heads, I 14336, V 16000; qkv h -> (32+8)·128 = 5120
    (
        "llama-2-70b",
        2,
        "qkv_proj",
        83_886_080,  # 2·8192·5120
        83_912_704,
    ),  # 2·8192·5120 + 2·8192 (x) + 2·32·128 (Q) + 2·2·4·128 (K, V)
    (
        "llama-2-70b",
        2,
        "o_proj",
        67_108_864,  # 2·(32·128)·8192
        67_133_440,
    ),  # 2·4096·8192 + 2·4096 + 2·8192
    (
        "llama-2-70b",
        2,
        "gate_proj",
        234_881_024,  # 2·8192·14336
        234_926_080,
    ),  # 2·8192·14336 + 2·8192 + 2·14336
    (
        "llama-2-70b",
        2,
        "qk",
        8_388_608,  # 2·32·1024·128
        1_122_304,
    ),  # 2·32·128 (Q) + 2·4·1024·128 (K cache) + 2·32·1024 (scores)
    (
        "llama-2-70b",
        2,
        "lm_head",
        262_144_000,  # 2·8192·16000
        262_192_384,
    ),  # 2·8192·16000 + 2·8192 + 2·16000
    ("llama-2-70b", 2, "attn_allreduce", 0, 16_384),  # 2(2-1)/2 · 2·8192
    # Llama-2-70B, tp = 8: 8 heads, 1 KV head, I 3584, V 4000; qkv h -> (8+2)·128 = 1280
    (
        "llama-2-70b",
        8,
        "qkv_proj",
        20_971_520,  # 2·8192·1280
        20_990_464,
    ),  # 2·8192·1280 + 2·8192 + 2·1024 (Q) + 2·256 (K, V)
    (
        "llama-2-70b",
        8,
        "o_proj",
        16_777_216,  # 2·1024·8192
        16_795_648,
    ),  # 2·1024·8192 + 2·1024 + 2·8192
    (
        "llama-2-70b",
        8,
        "down_proj",
        58_720_256,  # 2·3584·8192
        58_743_808,
    ),  # 2·3584·8192 + 2·3584 + 2·8192
    (
        "llama-2-70b",
        8,
        "qk",
        2_097_152,  # 2·8·1024·128
        280_576,
    ),  # 2·8·128 + 2·1·1024·128 + 2·8·1024
    ("llama-2-70b", 8, "mlp_allreduce", 0, 28_672),  # 2·7/8 · 16384
    # Llama-2-70B, tp = 16 > G: 4 heads, the one KV head replicated; qkv h -> (4+2)·128 = 768
    (
        "llama-2-70b",
        16,
        "qkv_proj",
        12_582_912,  # 2·8192·768
        12_600_832,
    ),  # 2·8192·768 + 2·8192 + 2·512 (Q) + 2·256 (K, V)
    # Llama-13B, tp = 2: 20 heads, 20 KV heads, I 6912; qkv h -> 60·128 = 7680
    (
        "llama-13b",
        2,
        "qkv_proj",
        78_643_200,  # 2·5120·7680
        78_668_800,
    ),  # 2·5120·7680 + 2·5120 + 2·2560 (Q) + 2·5120 (K, V)
    (
        "llama-13b",
        2,
        "up_proj",
        70_778_880,  # 2·5120·6912
        70_802_944,
    ),  # 2·5120·6912 + 2·5120 + 2·6912
    ("llama-13b", 2, "attn_allreduce", 0, 10_240),  # 2(2-1)/2 · 2·5120
    # Llama-13B, tp = 8: 5 heads, 5 KV heads, I 1728, V 4000; qkv h -> 15·128 = 1920
    (
        "llama-13b",
        8,
        "qkv_proj",
        19_660_800,  # 2·5120·1920
        19_674_880,
    ),  # 2·5120·1920 + 2·5120 + 2·640 (Q) + 2·1280 (K, V)
    (
        "llama-13b",
        8,
        "gate_proj",
        17_694_720,  # 2·5120·1728
        17_708_416,
    ),  # 2·5120·1728 + 2·5120 + 2·1728
    (
        "llama-13b",
        8,
        "pv",
        1_310_720,  # 2·5·1024·128
        1_322_240,
    ),  # 2·5·1024 (probs) + 2·5·1024·128 (V) + 2·5·128 (O)
    ("llama-13b", 8, "mlp_allreduce", 0, 17_920),  # 2·7/8 · 10240
]


@pytest.mark.parametrize(("model", "tp", "op", "flops", "bytes_"), HAND)
def test_tensor_parallel_rows_by_hand(model, tp, op, flops, bytes_):
    row = rooflax.evaluate(model=model, phase="decode", batch=1, seq_len=1024, tp=tp)["ops"][op]
    assert (row["flops"], row["bytes"]) == (flops, bytes_)


@pytest.mark.slow
def test_sweep_rows_equal_evaluate_under_every_layout():
    keys = {
        "model": ["llama-2-70b", "mixtral-8x7b"],
        "hardware": "h100-sxm",
        "phases": ["prefill", "decode"],
        "batch": [1, 6],
        "seq_len": [64, 1000],
        "tp": [8],
        "pp": [1, 4],
    }
    df = rooflax.sweep(**keys)
    assert df.height == rooflax.parse_spec(**keys).rows()
    for (model, tp, pp, phase, b, s), rows in df.group_by("model", "tp", "pp", "phase", "batch", "seq_len"):
        point = rooflax.evaluate(model=model, hardware="h100-sxm", phase=phase, batch=b, seq_len=s, tp=tp, pp=pp)
        assert rows.get_column("op").cast(pl.String).to_list() == list(point["ops"])
        for row in rows.iter_rows(named=True):
            want = point["ops"][row["op"]]
            assert row["bound"] == want["bound"], row["op"]
            for col in ("flops", "bytes", "time_s"):
                assert row[col] == pytest.approx(want[col], rel=1e-12), (row["op"], col)
    summary = rooflax.sweep(summary=True, **{**keys, "pp": [4]})
    for row in summary.iter_rows(named=True):
        want = rooflax.evaluate(
            model=row["model"],
            hardware="h100-sxm",
            phase=row["phase"],
            batch=row["batch"],
            seq_len=row["seq_len"],
            tp=row["tp"],
            pp=row["pp"],
        )["totals"]
        for col, value in want.items():
            assert row[col] == pytest.approx(value, rel=1e-12), col


@pytest.mark.slow
def test_one_device_layout_leaves_frames_unchanged():
    keys = {
        "model": ["llama-13b", "mixtral-8x7b"],
        "phases": ["prefill", "decode", "verify"],
        "batch": [1, 5],
        "seq_len": [16, 300],
        "spec_k": [8],
    }
    for summary in (False, True):
        plain = rooflax.sweep(summary=summary, **keys)
        explicit = rooflax.sweep(summary=summary, tp=[1], pp=[1], ep=[1], **keys)
        mixed = rooflax.sweep(summary=summary, tp=[1, 2], **keys).filter(tp=1)
        assert plain.equals(explicit) and plain.equals(mixed)
        if not summary:  # no collective, no network row, on one device
            assert plain.filter(group="comm").height == 0
            assert set(plain.get_column("bound").cast(pl.String)) <= {"memory", "compute"}
    assert set(mixed.get_column("tp")) == {1}


@pytest.mark.parametrize("tp", [2, 4, 8])
def test_ring_all_reduce_and_its_time(tp):
    hw = rooflax.get_hardware("h100-sxm")
    ops = rooflax.evaluate(model="llama-2-70b", hardware=hw, phase="decode", batch=16, seq_len=512, tp=tp)["ops"]
    message = 2 * 16 * 8192  # a·M·h
    for op in ("attn_allreduce", "mlp_allreduce"):
        row = ops[op]
        assert row["bytes"] == pytest.approx(2 * (tp - 1) / tp * message, rel=1e-15)
        assert row["time_s"] == pytest.approx(
            row["bytes"] / hw.interconnect_bytes_per_s + 2 * (tp - 1) * hw.interconnect_latency_s, rel=1e-12
        )
        assert (row["group"], row["bound"], row["flops"]) == ("comm", "network", 0)


def test_mixtral_8x7b_parameter_count():
    # per layer: attention 4096·(32+16)·128 + 32·128·4096 = 41,943,040; experts 8·3·4096·14336 =
    # 1,409,286,144; router 4096·8 = 32,768; norms 2·4096 = 8,192: 1,451,270,144 a layer, × 32 =
    # 46,440,644,608; embeddings and LM head 2·32000·4096 = 262,144,000; final norm 4096.
    assert rooflax.get_model("mixtral-8x7b").params == 46_702_792_704


def test_moe_rows_by_hand():
    # Mixtral-8x7B, ep = 2, decode, B = 4: a device runs 2 sequences; R = 4·1·2/2 = 4 token-expert
    # pairs; it holds 4 experts, each touched with probability 1 - (1 - 2/8)^4 = 0.68359375.
    ops = rooflax.evaluate(model="mixtral-8x7b", hardware="h100-sxm", phase="decode", batch=4, seq_len=256, ep=2)["ops"]
    assert ops["expert_gate"]["flops"] == 469_762_048  # 2·4·4096·14336
    assert ops["expert_gate"]["bytes"] == pytest.approx(321_273_856, rel=1e-15)  # 2·2.734375·4096·14336 + 2·4·18432
    assert ops["router"]["flops"] == 131_072  # 2·2·4096·8
    assert ops["moe_dispatch"]["bytes"] == ops["moe_combine"]["bytes"] == 16_384  # 1/2 · 2·2·2·4096
    assert [name for name in ops if name.startswith(("gate", "up_", "down"))] == []  # no dense MLP
    # one token reads exactly k experts' weights
    one = rooflax.evaluate(model="mixtral-8x7b", phase="decode", batch=1, seq_len=256)["ops"]["expert_down"]
    assert one["bytes"] == pytest.approx(2 * 2 * 14336 * 4096 + 2 * 2 * (14336 + 4096), rel=1e-15)


def test_shared_experts_are_a_dense_mlp():
    # Qwen1.5-MoE-A2.7B: 4 shared experts of 1408 = one MLP of 5632; 60 routed experts, k = 4
    ops = rooflax.evaluate(model="qwen1.5-moe-a2.7b", phase="decode", batch=1, seq_len=64)["ops"]
    assert ops["gate_proj"]["flops"] == 2 * 2048 * 5632
    assert ops["expert_up"]["flops"] == 2 * 4 * 2048 * 1408
    assert ops["expert_up"]["bytes"] == pytest.approx(2 * 4 * 2048 * 1408 + 2 * 4 * (2048 + 1408), rel=1e-12)


def _oracle(fn, *shapes):
    _, result = jax_roofline.roofline(fn)(*[jax.ShapeDtypeStruct(s, jnp.float16) for s in shapes])
    return result.flops, result.unfused_hbm_bytes


def test_expert_products_match_jax_roofline_oracle():
    # a reference MoE layer: the routed tokens dispatched into [E, C, h] (C = M·k/E a expert), every
    # expert touched (1 - 0.75^2048 is 1 to double precision)
    m = rooflax.get_model("mixtral-8x7b")
    E, k, h, I = m.experts, m.experts_per_token, m.hidden, m.moe_intermediate
    B, S = 8, 256
    C = B * S * k // E
    oracle = {
        "router": _oracle(lambda x, w: x @ w, (B * S, h), (h, E)),
        "expert_gate": _oracle(lambda x, w: jnp.einsum("ech,ehi->eci", x, w), (E, C, h), (E, h, I)),
        "expert_up": _oracle(lambda x, w: jnp.einsum("ech,ehi->eci", x, w), (E, C, h), (E, h, I)),
        "expert_down": _oracle(lambda x, w: jnp.einsum("eci,eih->ech", x, w), (E, C, I), (E, I, h)),
    }
    ours = rooflax.evaluate(model=m, phase="prefill", batch=B, seq_len=S)["ops"]
    for op, (flops, bytes_) in oracle.items():
        assert ours[op]["flops"] == pytest.approx(flops, rel=1e-9), op
        assert ours[op]["bytes"] == pytest.approx(bytes_, rel=1e-9), op


def test_per_device_memory_by_hand():
    # Llama-2-70B, tp = 8: a layer holds 8192·10·128 + 1024·8192 (attention) + 3·8192·3584 (MLP)
    # + 2·8192 (norms) = 106,971,136 parameters; × 80 = 8,557,690,880; + 2·4000·8192 vocabulary
    # + 8192 = 8,623,235,072 parameters, 2 bytes each.
    tot = rooflax.evaluate(model="llama-2-70b", phase="decode", batch=1, seq_len=1024, tp=8)["totals"]
    assert tot["weight_bytes"] == 17_246_470_144
    assert tot["kv_cache_bytes"] == 41_943_040  # 2·2·1·128·80·1·1024
    # pp = 2: 40 layers of 855,654,400 and one vocabulary matrix of 32000·8192, + 8192
    piped = rooflax.evaluate(model="llama-2-70b", phase="decode", batch=1, seq_len=1024, pp=2)["totals"]
    assert piped["weight_bytes"] == 2 * 34_488_328_192
    # Mixtral counts every expert it holds, touched or not: ep = 8 holds one expert a layer
    whole = rooflax.get_model("mixtral-8x7b").params
    ep8 = rooflax.evaluate(model="mixtral-8x7b", phase="decode", batch=8, seq_len=64, ep=8)["totals"]
    assert ep8["weight_bytes"] == 2 * (whole - 32 * 7 * 3 * 4096 * 14336)


def test_pipeline_latency_and_throughput_rules():
    one = rooflax.evaluate(model="llama-13b", hardware="a100-80gb-sxm", phase="decode", batch=8, seq_len=512)
    two = rooflax.evaluate(model="llama-13b", hardware="a100-80gb-sxm", phase="decode", batch=8, seq_len=512, pp=4)
    layer = sum(v["time_s"] for name, v in one["ops"].items() if name != "lm_head")
    head, send = one["ops"]["lm_head"]["time_s"], two["ops"]["pp_send"]["time_s"]
    assert two["ops"]["pp_send"]["bytes"] == 2 * 8 * 5120
    assert two["totals"]["time_s"] == pytest.approx(40 * layer + head + 3 * send, rel=1e-12)
    assert two["totals"]["tokens_per_s"] == pytest.approx(8 / (10 * layer + head + send), rel=1e-12)
    assert two["totals"]["tokens_per_s_per_gpu"] == pytest.approx(two["totals"]["tokens_per_s"] / 4, rel=1e-15)
    assert one["totals"]["tokens_per_s"] == pytest.approx(8 / one["totals"]["time_s"], rel=1e-15)


@pytest.mark.slow
def test_parallel_axes_in_spec_files(tmp_path):
    (tmp_path / "s.toml").write_text(
        'model = "llama-2-70b"\nhardware = "h100-sxm"\nphases = ["decode"]\n'
        "[axes]\nbatch = [1]\nseq_len = [128]\ntp = [8, 1, 4]\npp = 2\n"
    )
    spec = rooflax.load_spec(tmp_path / "s.toml")
    assert (spec.tp, spec.pp, spec.ep) == ((1, 4, 8), (2,), (1,))
    df = rooflax.sweep(spec, summary=True)
    assert df.select("tp", "pp", "ep").rows() == [(1, 2, 1), (4, 2, 1), (8, 2, 1)]
    assert df.schema["tp"] == pl.Int64
    assert "tp" in spec.to_dict()["axes"] and "ep" not in spec.to_dict()["axes"]


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        (
            {"model": "llama-2-70b", "tp": [3]},
            "axes.tp: 3 does not split llama-2-70b's 64 heads, 8 KV heads and 28672 "
            "intermediate evenly; allowed: 1, 2, 4, 8, 16, 32, 64",
        ),
        ({"model": "llama-13b", "tp": [16]}, "axes.tp: 16 does not split llama-13b's 40 heads"),
        ({"model": "llama-13b", "pp": [3]}, "axes.pp: 3 does not divide llama-13b's 40 layers"),
        ({"model": "mixtral-8x7b", "ep": [3]}, "axes.ep: 3 does not divide mixtral-8x7b's 8 experts"),
        ({"model": "llama-13b", "ep": [2]}, "axes.ep: 2 needs a mixture of experts, and llama-13b is dense"),
        ({"model": "mixtral-8x7b", "hidden": [8192]}, "a mixture of experts is not scaled"),
        ({"tp": [0]}, "axes.tp[0]: expected a positive integer, got 0"),
    ],
)
def test_bad_layouts_are_one_line_errors(keys, message):
    one_line_error(lambda: rooflax.sweep(batch=[1], seq_len=[8], **keys), message)


def test_bad_layout_in_evaluate():
    one_line_error(
        lambda: rooflax.evaluate(model="mixtral-8x7b", batch=1, seq_len=8, ep=16),
        "ep: 16 does not divide mixtral-8x7b's 8 experts",
    )


MOE_TOML = 'name = "m"\nhidden = 512\nlayers = 2\nheads = 4\nintermediate = 1024\nvocab = 100\n'


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("experts = 4\nexperts_per_token = 5\n", "experts_per_token is 5; expected 1 to experts (4)"),
        ("experts = 4\n", "experts_per_token is 0; expected 1 to experts (4)"),
        ("experts_per_token = 2\n", "experts_per_token is 2 but experts is 0"),
        ("experts = 4\nexperts_per_token = 2\ngated_mlp = false\n", "gated_mlp is false"),
        ("experts = -4\nexperts_per_token = 2\n", "experts: expected a positive integer, got -4"),
    ],
)
def test_bad_expert_fields(tmp_path, extra, message):
    (tmp_path / "m.toml").write_text(MOE_TOML + extra)
    one_line_error(lambda: rooflax.load_model(tmp_path / "m.toml"), message)


def test_config_json_experts(tmp_path):
    base = {
        "hidden_size": 4096,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "intermediate_size": 14336,
        "vocab_size": 32000,
    }
    (tmp_path / "mixtral").mkdir()
    (tmp_path / "mixtral" / "config.json").write_text(
        json.dumps({**base, "num_local_experts": 8, "num_experts_per_tok": 2})
    )
    m = rooflax.load_model(tmp_path / "mixtral" / "config.json")
    assert m.params == rooflax.get_model("mixtral-8x7b").params
    qwen = {
        **base,
        "num_experts": 60,
        "num_experts_per_tok": 4,
        "moe_intermediate_size": 1408,
        "shared_expert_intermediate_size": 5632,
    }
    (tmp_path / "qwen.json").write_text(json.dumps(qwen))
    q = rooflax.load_model(tmp_path / "qwen.json")
    # Qwen's one shared expert of its own width (issue 20): as wide as four experts of 1408, it counts the same
    assert (q.experts, q.experts_per_token, q.shared_experts, q.moe_intermediate, q.shared_intermediate) == (
        60,
        4,
        1,
        1408,
        5632,
    )
    assert q.params == dataclasses.replace(q, shared_experts=4, shared_intermediate=0).params


def test_interconnect_fields(tmp_path):
    from rooflax.config.hardware import uncalibrated_preset

    h100 = rooflax.get_hardware("h100-sxm")
    datasheet = uncalibrated_preset("h100-sxm")  # NVLink 900 GB/s both ways, NCCL's ring LL128 hop
    assert (datasheet.interconnect_bytes_per_s, datasheet.interconnect_latency_s) == (450e9, 1.9e-6)
    # the preset's hop latency is fitted to NCCL's measured collectives (rooflax.calibration.presets)
    assert h100.interconnect_bytes_per_s == 450e9 and 1e-7 < h100.interconnect_latency_s < 1.9e-6
    assert rooflax.get_hardware("l40s").interconnect_bytes_per_s == 32e9  # PCIe Gen4 x16, one way
    assert "NVLink" in h100.source
    text = (
        "name = 'x'\nbandwidth_bytes_per_s = 1e12\nmemory_bytes = 1e9\ninterconnect_latency_s = {}\n"
        "[peak_flops]\nfp16 = 1e14\n"
    )
    (tmp_path / "x.toml").write_text(text.format("5e-6"))
    assert rooflax.load_hardware(tmp_path / "x.toml").interconnect_latency_s == 5e-6
    (tmp_path / "x.toml").write_text(text.format("-1"))
    one_line_error(
        lambda: rooflax.load_hardware(tmp_path / "x.toml"),
        "interconnect_latency_s: -1 is outside the range a real part has, 1e-10 to 1 s",
    )


@pytest.mark.slow
def test_more_devices_per_gpu_throughput():
    df = rooflax.sweep("sweeps/llama70b_tp.toml", summary=True).filter(phase="decode", batch=64, seq_len=2048)
    per_gpu = df.get_column("tokens_per_s_per_gpu").to_numpy()
    system = df.get_column("tokens_per_s").to_numpy()
    assert np.allclose(per_gpu * df.get_column("tp").to_numpy(), system, rtol=1e-12)
    assert df.filter(tp=1).get_column("fits_in_memory").to_list() == [False]  # 138 GB of weights on 80 GB
    assert df.filter(tp=8).get_column("fits_in_memory").to_list() == [True]


# --- charts -----------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tp_frame():
    import matplotlib

    matplotlib.use("Agg")
    return rooflax.sweep(
        model="llama-2-70b",
        hardware="h100-sxm",
        phases=["prefill", "decode"],
        batch=[1, 16, 256],
        seq_len=[128, 2048],
        tp=[1, 2, 8],
    )


@pytest.mark.slow
def test_facet_by_tp(tp_frame):
    import matplotlib.pyplot as plt

    for frame in (tp_frame, tp_frame.lazy()):
        fig = rooflax.plot.roofline(frame, facet="tp", groups=rooflax.GROUPS)  # comm is left to interconnect()
        titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
        assert titles == ["tp: 1", "tp: 2", "tp: 8"]
        plt.close(fig)


@pytest.mark.slow
def test_collectives_under_the_interconnect_roof(tp_frame):
    import matplotlib.pyplot as plt

    hw = rooflax.get_hardware("h100-sxm")
    fig = rooflax.plot.interconnect(tp_frame)
    ax = fig.axes[0]
    (roof,) = [line for line in ax.get_lines() if line.get_gid() == "ceiling-interconnect:h100-sxm"]
    x, y = roof.get_data()
    assert y.max() == hw.interconnect_bytes_per_s
    assert np.allclose(y, np.minimum(hw.interconnect_bytes_per_s, x / hw.interconnect_latency_s))
    comm = tp_frame.filter(group="comm")
    points = np.concatenate([c.get_offsets() for c in ax.collections if c.get_gid() != "band"])
    assert len(points) == comm.height  # every collective, none dropped
    assert (points[:, 1] <= np.minimum(hw.interconnect_bytes_per_s, points[:, 0] / hw.interconnect_latency_s)).all()
    assert {t.get_text() for t in ax.get_legend().get_texts()} >= {"attn_allreduce ar", "mlp_allreduce init"}
    assert ax.get_xscale() == ax.get_yscale() == "log"
    plt.close(fig)
    one_line_error(lambda: rooflax.plot.interconnect(tp_frame.filter(tp=1)), "interconnect: no collectives")
