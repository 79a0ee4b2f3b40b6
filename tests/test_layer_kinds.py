"""Layers that differ (issue 20 items 2-4): sliding windows, attention sinks, dense-first and interleaved MoE
layers, pipeline stages of unlike layers, the presets read from their config.json, and their published sizes.

Every count is derived by hand below from the counting contract (DESIGN.md); fp16, so ``w = a = k = 2``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import polars as pl
import pytest

import rooflax
from rooflax.cost.ops import window_pairs
from tests.one_line import one_line_error

CONFIGS = Path(__file__).parent / "configs"
#: A toy Llama: h 256, 4 layers, H 4, G 2, d 64, I 768, V 1024.
TOY = {"hidden": 256, "layers": 4, "heads": 4, "kv_heads": 2, "head_dim": 64, "intermediate": 768, "vocab": 1024}
#: The toy's layer parameters by hand: attention h(H+2G)d + Hdh, MLP 3hI, two norms 2h.
ATTENTION = 256 * (4 + 4) * 64 + 4 * 64 * 256  # 196,608
DENSE_LAYER = ATTENTION + 3 * 256 * 768 + 2 * 256  # 786,944
EMBEDDINGS = 1024 * 256 * 2 + 256  # embedding, LM head, final norm


def toy(name: str = "toy-layers", **fields) -> rooflax.Model:
    return rooflax.Model(name=name, **{**TOY, **fields})


def ops(model, **point):
    return rooflax.evaluate(model=model, hardware="a40", **point).ops


# --- sliding windows -------------------------------------------------------------------------------------


def test_decode_attends_the_window_below_and_above_it():
    sliding, full = toy(sliding_window=16), toy()
    assert [(k.name, n) for k, n in sliding.layer_kinds] == [("sliding/dense", 4)]
    # S = 8 < W: T = 8, the same as full attention; qk: 2·B·H·T·d, bytes a·B·H·d + k·B·G·T·d + a·B·H·T
    below = ops(sliding, phase="decode", batch=2, seq_len=8)
    assert (below["qk"].flops, below["qk"].bytes) == (2 * 2 * 4 * 8 * 64, 1024 + 4096 + 128) == (8192, 5248)
    assert below["qk"] == dataclasses.replace(
        ops(full, phase="decode", batch=2, seq_len=8)["qk"], layer="sliding/dense"
    )
    # S = 64 > W = 16: the last 16 tokens
    above = ops(sliding, phase="decode", batch=2, seq_len=64)
    assert (above["qk"].flops, above["qk"].bytes) == (2 * 2 * 4 * 16 * 64, 1024 + 8192 + 256) == (16384, 9472)
    assert above["pv"].flops == 16384 and above["softmax"].flops == 5 * 2 * 4 * 16
    # the cache holds min(S, W) tokens a layer: k·2·G·d·L·B·16, against ·64 for full attention
    kv = rooflax.evaluate(model=sliding, phase="decode", batch=2, seq_len=64).kv_cache_bytes
    assert kv == 2 * 2 * 2 * 64 * 4 * 2 * 16 == 65536
    assert rooflax.evaluate(model=full, phase="decode", batch=2, seq_len=64).kv_cache_bytes == 262144


def test_prefill_and_verify_count_only_the_in_window_pairs():
    sliding = toy(sliding_window=16)
    # causal prefill, S = 40, W = 16: query at position p sees min(p + 1, 16) keys: 1 + ... + 16 + 24·16 = 520
    causal = ops(sliding, phase="prefill", batch=2, seq_len=40, causal=True)
    assert causal["qk"].flops == 2 * 2 * 4 * 520 * 64 == 532480
    # every key is read once (each is someone's window): a·B·H·Q·d + k·B·G·S·d + a·B·H·P
    assert causal["qk"].bytes == 2 * 2 * 4 * 40 * 64 + 2 * 2 * 2 * 40 * 64 + 2 * 2 * 4 * 520 == 69760
    # dense counting: every query scores a whole window, Q·W
    assert ops(sliding, phase="prefill", batch=2, seq_len=40)["qk"].flops == 2 * 2 * 4 * (40 * 16) * 64
    # verify K = 4 at S = 40: each of the 4 queries sees 16 keys; the keys read are their windows' union, 16 + 3
    verify = ops(sliding, phase="verify", batch=2, seq_len=40, spec_k=4, causal=True)
    assert verify["qk"].flops == 2 * 2 * 4 * (4 * 16) * 64
    assert verify["pv"].bytes == 2 * 2 * 4 * 64 + 2 * 2 * 2 * 19 * 64 + 2 * 2 * 4 * 4 * 64 == 14848


@pytest.mark.parametrize("causal", [True, False])
def test_window_pairs_equal_the_masks_scores_counted_one_by_one(causal):
    for new, seq, window in [(1, 1, 1), (1, 9, 4), (5, 5, 2), (7, 30, 9), (30, 30, 9), (3, 10, 40), (12, 12, 12)]:
        first = seq - new  # the new queries sit at the last Q positions
        keys = [
            sum(1 for j in range(seq) if (j <= p or not causal) and j > p - window and (causal or j < p + window))
            for p in range(first, seq)
        ]
        if causal:
            assert window_pairs(new, seq, window, True) == sum(keys), (new, seq, window)
        else:  # dense: a whole window per query, as many keys as there are up to W
            assert window_pairs(new, seq, window, False) == new * min(seq, window)


def test_a_window_past_every_seq_len_prices_as_full_attention():
    keys = dict(hardware="h100-sxm", phases=["prefill", "decode"], batch=[1, 8], seq_len=[64, 512], causal=True)
    wide = rooflax.sweep(model=toy("toy-wide", sliding_window=10**6), **keys).drop("model", "layer")
    full = rooflax.sweep(model=toy("toy-wide"), **keys).drop("model", "layer")
    assert wide.equals(full)


# --- attention sinks -------------------------------------------------------------------------------------


def test_attention_sinks_add_one_score_a_row_and_their_logits():
    sinks, plain = toy(attention_sinks=True), toy()
    point = dict(phase="decode", batch=2, seq_len=64)
    with_, without = ops(sinks, **point), ops(plain, **point)
    # softmax: 5·B·H·P + 4·B·H·Q (max, subtract, exp, sum; no divide) and 2·a·B·H·P + w·H
    assert (with_["softmax"].flops, with_["softmax"].bytes) == (2560 + 32, 2048 + 8)
    assert (without["softmax"].flops, without["softmax"].bytes) == (2560, 2048)
    for name in ("qk", "pv", "qkv_proj", "o_proj"):
        assert with_[name].flops == without[name].flops and with_[name].bytes == without[name].bytes
    fused = ops(sinks, fused_attention=True, **point)["attention"]
    # Q and O once (2·a·B·H·Q·d), K and V once (2·k·B·G·T·d), the sink logits (w·H)
    assert fused.bytes == 2 * 2 * 2 * 4 * 64 + 2 * 2 * 2 * 2 * 64 * 64 + 2 * 4 == 67592
    assert fused.flops == with_["qk"].flops + with_["softmax"].flops + with_["pv"].flops
    assert sinks.params - plain.params == 4 * 4  # one logit per head per layer


# --- dense first layers, MoE every n-th layer --------------------------------------------------------------

MOE = {"experts": 4, "experts_per_token": 2, "moe_intermediate": 128, "layers": 6}
MOE_LAYER = ATTENTION + 3 * 256 * 128 * 4 + 256 * 4 + 2 * 256  # 4 experts of 128, a router h → 4: 591,360
MOE_ACTIVE = ATTENTION + 3 * 256 * 128 * 2 + 256 * 4 + 2 * 256  # 2 experts a token, the whole router


def test_dense_first_layers_and_interleaved_moe_layers():
    first = toy(first_dense=2, **MOE)  # first_k_dense_replace 2: layers 0, 1 dense, 2..5 MoE
    assert [k.mlp for k in first.layer_pattern] == ["dense", "dense", "moe", "moe", "moe", "moe"]
    assert (first.params, first.active_params) == (
        2 * DENSE_LAYER + 4 * MOE_LAYER + EMBEDDINGS,
        2 * DENSE_LAYER + 4 * MOE_ACTIVE + EMBEDDINGS,
    )
    assert (first.params, first.active_params) == (4463872, 3677440)
    every = toy(moe_every=2, **MOE)  # interleave_moe_layer_step 2: layers 1, 3, 5 (Llama 4's rule)
    assert [k.mlp for k in every.layer_pattern] == ["dense", "moe", "dense", "moe", "dense", "moe"]
    assert every.params == 3 * DENSE_LAYER + 3 * MOE_LAYER + EMBEDDINGS == 4659456
    assert toy(first_dense=1, moe_every=2, **MOE).layer_pattern == every.layer_pattern


@pytest.mark.parametrize("phase", ["prefill", "decode"])
def test_totals_weigh_each_kinds_ops_by_its_layers(phase):
    model = toy(first_dense=2, **MOE)
    result = rooflax.evaluate(model=model, phase=phase, batch=4, seq_len=128)
    rows, totals = result.ops, result.totals()
    dense = {name.split(":")[1]: row for name, row in rows.items() if name.startswith("full/dense:")}
    moe = {name.split(":")[1]: row for name, row in rows.items() if name.startswith("full/moe:")}
    assert "router" in moe and "router" not in dense and "gate_proj" in dense and "gate_proj" not in moe
    assert {row.layer for row in rows.values()} == {"full/dense", "full/moe", None}
    for column in ("flops", "bytes"):
        layers = 2 * sum(getattr(r, column) for r in dense.values()) + 4 * sum(getattr(r, column) for r in moe.values())
        assert totals[column] == layers + getattr(rows["lm_head"], column)
    time_s = 2 * sum(r.time_s for r in dense.values()) + 4 * sum(r.time_s for r in moe.values())
    assert totals["time_s"] == pytest.approx(time_s + rows["lm_head"].time_s, rel=1e-12)
    # weights: every layer's parameters at w = 2 bytes; the KV cache of every layer (all full attention)
    assert totals["weight_bytes"] == 2 * model.params
    assert totals["kv_cache_bytes"] == 2 * 2 * 2 * 64 * 6 * 4 * 128


# --- pipeline stages of unlike layers ----------------------------------------------------------------------


def test_pipeline_stages_split_the_layers_in_order_and_the_slowest_sets_the_pace():
    # two full layers, then two sliding ones: at pp = 2 the first stage holds the full layers
    model = toy(sliding_window=16, layer_types=("full", "full", "sliding", "sliding"))
    assert model.stages(2) == ((0, 2), (2, 0))  # kinds (full/dense, sliding/dense); the last stage first
    assert model.stages(1) == ((2, 2),) and model.stages(4) == ((0, 1), (1, 0))
    result = rooflax.evaluate(model=model, phase="decode", batch=64, seq_len=4096, pp=2)
    rows, totals = result.ops, result.totals()
    full = sum(r.time_s for name, r in rows.items() if name.startswith("full/"))
    sliding = sum(r.time_s for name, r in rows.items() if name.startswith("sliding/"))
    head, send = rows["lm_head"].time_s, rows["pp_send"].time_s
    first, last = 2 * full + send, 2 * sliding + head + send
    assert first > last  # the full layers' long attention outweighs the LM head
    assert totals["tokens_per_s"] == pytest.approx(64 / first, rel=1e-12)
    assert totals["time_s"] == pytest.approx(2 * full + 2 * sliding + head + send, rel=1e-12)
    # the fullest device: its stage's KV cache for pp micro-batches, k·2·G·d·B·(64·2 full) · pp
    assert totals["kv_cache_bytes"] == 2 * (2 * 2 * 2 * 64 * 64 * 4096 * 2)
    assert totals["weight_bytes"] == 2 * (2 * DENSE_LAYER + 1024 * 256 + 256)  # one vocabulary matrix a stage end
    swept = rooflax.sweep(model=model, phases=["decode"], batch=[64], seq_len=[4096], pp=[2], summary=True)
    for name in ("tokens_per_s", "time_s", "kv_cache_bytes", "weight_bytes", "memory_bytes", "achieved_time_s"):
        assert swept[name][0] == pytest.approx(totals[name], rel=1e-12), name


# --- a sweep equals evaluate, point by point -----------------------------------------------------------

FIXTURES = {
    "llama-3.1-8b": "meta-llama--Llama-3.1-8B",
    "llama-3.1-70b": "meta-llama--Llama-3.1-70B",
    "llama-3.1-405b": "meta-llama--Llama-3.1-405B",
    "llama-4-scout": "meta-llama--Llama-4-Scout-17B-16E",
    "llama-4-maverick": "meta-llama--Llama-4-Maverick-17B-128E",
    "qwen3-8b": "Qwen--Qwen3-8B",
    "qwen3-32b": "Qwen--Qwen3-32B",
    "qwen3-30b-a3b": "Qwen--Qwen3-30B-A3B",
    "qwen3-235b-a22b": "Qwen--Qwen3-235B-A22B",
    "gemma-3-27b": "google--gemma-3-27b-it",
    "gpt-oss-20b": "openai--gpt-oss-20b",
    "gpt-oss-120b": "openai--gpt-oss-120b",
    "deepseek-v3": "deepseek-ai--DeepSeek-V3",
    "kimi-k2": "moonshotai--Kimi-K2-Instruct",
}
_NEW = list(FIXTURES)
_QUICK = ("gpt-oss-120b", "gemma-3-27b", "llama-4-maverick")


@pytest.mark.parametrize("name", [pytest.param(n, marks=() if n in _QUICK else pytest.mark.slow) for n in _NEW])
def test_a_sweep_of_each_new_preset_equals_evaluate_point_by_point(name):
    keys = dict(model=name, hardware="h100-sxm", phases=["prefill", "decode"], batch=[1, 8], seq_len=[64, 4096])
    long = rooflax.sweep(**keys, causal=True)
    summary = rooflax.sweep(**keys, causal=True, summary=True)
    kinds = len(rooflax.get_model(name).layer_kinds)
    seen = 0
    for row in summary.iter_rows(named=True):
        point = dict(phase=row["phase"], batch=row["batch"], seq_len=row["seq_len"])
        result = rooflax.evaluate(model=name, hardware="h100-sxm", causal=True, **point)
        for column in ("time_s", "tokens_per_s", "kv_cache_bytes", "weight_bytes", "memory_bytes", "flops"):
            assert row[column] == pytest.approx(result.totals()[column], rel=1e-12), (column, point)
        rows = long.filter(**point)
        assert rows.height == len(result.ops)
        for op in rows.iter_rows(named=True):
            key = op["op"] if kinds == 1 or op["layer"] is None else f"{op['layer']}:{op['op']}"
            want = result.ops[key]
            assert op["layer"] == want.layer
            for column in ("flops", "bytes", "time_s", "achieved_time_s"):
                assert op[column] == pytest.approx(getattr(want, column), rel=1e-12), (key, column, point)
            seen += 1
    assert seen == long.height


# --- presets: config.json read offline, and the published sizes --------------------------------------


def test_every_new_preset_has_a_config_fixture():
    assert set(FIXTURES) <= set(rooflax.MODELS)
    assert {path.stem for path in CONFIGS.glob("*.json")} == set(FIXTURES.values())


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_each_presets_config_json_reads_as_the_preset(name):
    preset = rooflax.get_model(name)
    loaded = rooflax.load_model(CONFIGS / f"{FIXTURES[name]}.json")
    assert dataclasses.replace(loaded, name=preset.name, label=preset.label) == preset
    assert FIXTURES[name].replace("--", "/") in preset.source


def test_the_configs_layer_keys_are_read():
    gpt = json.loads((CONFIGS / "openai--gpt-oss-120b.json").read_text())
    assert len(gpt["layer_types"]) == 36 and gpt["sliding_window"] == 128
    model = rooflax.get_model("gpt-oss-120b")
    assert [(k.name, n) for k, n in model.layer_kinds] == [("full/moe", 18), ("sliding/moe", 18)]
    assert model.layer_pattern[0].attention == "sliding" and model.attention_sinks
    gemma = rooflax.get_model("gemma-3-27b")  # sliding_window_pattern 6 (transformers' default): 5 local : 1 global
    assert "".join("g" if k.attention == "full" else "l" for k in gemma.layer_pattern) == "lllllg" * 10 + "ll"
    maverick = rooflax.get_model("llama-4-maverick")  # interleave_moe_layer_step 2
    assert [k.mlp for k in maverick.layer_pattern[:4]] == ["dense", "moe", "dense", "moe"]
    assert (maverick.intermediate, maverick.moe_intermediate, maverick.shared_experts) == (16384, 8192, 1)
    qwen = rooflax.get_model("qwen3-30b-a3b")  # use_sliding_window false: its sliding_window is not used
    assert qwen.sliding_window is None and qwen.head_dim == 128


def test_shared_experts_take_their_own_width(tmp_path):
    config = json.loads((CONFIGS / "Qwen--Qwen3-30B-A3B.json").read_text())
    path = tmp_path / "shared.json"
    path.write_text(json.dumps({**config, "shared_expert_intermediate_size": 1000}))
    shared = rooflax.load_model(path)  # Qwen2-MoE's one shared expert, of a width no multiple of 768
    assert (shared.shared_experts, shared.shared_intermediate) == (1, 1000)
    plain = rooflax.get_model("qwen3-30b-a3b")
    assert shared.params - plain.params == 48 * 3 * 2048 * 1000
    decode = ops(shared, phase="decode", batch=1, seq_len=64)
    assert decode["down_proj"].flops == 2 * 1 * 1000 * 2048  # the shared expert as the layer's dense MLP


# Published sizes, and each one counted by hand here: per layer attention h(H+2G)d + Hdh, MLP 3·h·I (dense)
# or 3·h·I_e·E + h·E (experts and router), norms 2h; embeddings V·h (twice untied) + h.


def _layer(h, heads, kv, d, mlp):
    return h * (heads + 2 * kv) * d + heads * d * h + mlp + 2 * h


def test_dense_presets_parameter_counts():
    llama = {  # h, L, H, I; G 8, d 128, V 128256, untied. The hub's sizes: 8.03 B, 70.6 B, 406 B (card: "405B")
        "llama-3.1-8b": (4096, 32, 32, 14336, 8.03, 2),
        "llama-3.1-70b": (8192, 80, 64, 28672, 70.6, 1),
        "llama-3.1-405b": (16384, 126, 128, 53248, 406, 0),
    }
    for name, (h, layers, heads, inter, published, digits) in llama.items():
        count = layers * _layer(h, heads, 8, 128, 3 * h * inter) + 2 * 128256 * h + h
        assert rooflax.get_model(name).params == count
        assert round(count / 1e9, digits) == published
    # Qwen3 model cards: 8.2 B (6.95 B non-embedding), 32.8 B (31.2 B non-embedding)
    for name, (h, layers, heads, inter, total, inner) in {
        "qwen3-8b": (4096, 36, 32, 12288, 8.2, 6.95),
        "qwen3-32b": (5120, 64, 64, 25600, 32.8, 31.2),
    }.items():
        body = layers * _layer(h, heads, 8, 128, 3 * h * inter)
        assert rooflax.get_model(name).params == body + 2 * 151936 * h + h
        assert (round((body + 2 * 151936 * h) / 1e9, 1), round(body / 1e9, 2 if inner < 10 else 1)) == (total, inner)
    # Gemma 3 27B (technical report, Table 1): 25,600 M non-embedding parameters, tied 262,208 × 5376 embedding.
    # rooflax leaves out the q/k norms (2·128) and two more norms (2·5376) a layer: added back, it is 25,600 M.
    gemma = rooflax.get_model("gemma-3-27b")
    body = 62 * _layer(5376, 32, 16, 128, 3 * 5376 * 21504)
    assert gemma.params == body + 262208 * 5376 + 5376
    assert round((body + 62 * (2 * 5376 + 2 * 128)) / 1e6) == 25600


def test_moe_presets_parameter_counts_total_and_active():
    # Qwen3 MoE cards: 30.5 B / 3.3 B active (29.9 B non-embedding); 235 B / 22 B active (234 B non-embedding)
    for name, (h, layers, heads, e_width, total, active, inner) in {
        "qwen3-30b-a3b": (2048, 48, 32, 768, 30.5, 3.3, 29.9),
        "qwen3-235b-a22b": (4096, 94, 64, 1536, 235, 22, 234),
    }.items():
        model, vocab = rooflax.get_model(name), 2 * 151936 * h + h
        body = layers * _layer(h, heads, 4, 128, 3 * h * e_width * 128 + h * 128)
        used = layers * _layer(h, heads, 4, 128, 3 * h * e_width * 8 + h * 128)  # 8 experts a token
        assert (model.params, model.active_params) == (body + vocab, used + vocab)
        digits = 1 if total < 100 else 0
        assert round(model.params / 1e9, digits) == total and round(body / 1e9, digits) == inner
        # the cards' active figure is truncated (3.35 B counted, with both vocabulary matrices, reads "3.3 B")
        assert int(model.active_params / 10 ** (9 - digits)) / 10**digits == active
    # Llama 4 (model cards): Maverick 400 B total / 17 B active, Scout 17 B active (its 109 B total counts
    # the vision encoder, which rooflax does not read: the text model is 107.8 B). Each MoE layer holds the
    # routed experts of 8192, one shared expert of 8192 and a router; Maverick's other layers a dense MLP of 16384.
    attention, vocab = 5120 * (40 + 16) * 128 + 40 * 128 * 5120, 2 * 202048 * 5120 + 5120
    for name, experts, moe_layers in (("llama-4-scout", 16, 48), ("llama-4-maverick", 128, 24)):
        model = rooflax.get_model(name)
        moe = attention + 3 * 5120 * 8192 * (experts + 1) + 5120 * experts + 2 * 5120
        moe_active = attention + 3 * 5120 * 8192 * 2 + 5120 * experts + 2 * 5120
        dense = attention + 3 * 5120 * 16384 + 2 * 5120
        rest = (48 - moe_layers) * dense + vocab
        assert (model.params, model.active_params) == (moe_layers * moe + rest, moe_layers * moe_active + rest)
        assert round(model.active_params / 1e9) == 17
    assert round(rooflax.get_model("llama-4-maverick").params / 1e9) == 401  # the card's "400B", 400.7 B counted
    assert 107.7e9 < rooflax.get_model("llama-4-scout").params < 107.8e9


@pytest.mark.parametrize(
    ("name", "layers", "experts", "total", "active"),
    [("gpt-oss-20b", 24, 32, 20.91, 3.61), ("gpt-oss-120b", 36, 128, 116.83, 5.13)],
)
def test_gpt_oss_parameter_counts_with_biases_and_sinks(name, layers, experts, total, active):
    """The model card's totals (20.91 B / 3.61 B active, 116.83 B / 5.13 B active): q, k, v, o biases, one sink a
    head, experts with gate/up (2·2880) and down (2880) biases, a router with a bias; the card's active count
    has the unembedding but not the embedding (a lookup)."""
    h, e_width = 2880, 2880
    attention = h * (64 + 16) * 64 + 64 * 64 * h + (64 + 16) * 64 + h + 64
    expert = 3 * h * e_width + 2 * e_width + h
    layer = attention + experts * expert + h * experts + experts + 2 * h
    layer_active = attention + 4 * expert + h * experts + experts + 2 * h
    model = rooflax.get_model(name)
    assert model.params == layers * layer + 2 * 201088 * h + h
    assert model.active_params == layers * layer_active + 2 * 201088 * h + h
    assert round(model.params / 1e9, 2) == total
    assert round((model.active_params - 201088 * h) / 1e9, 2) == active


# --- bad input: one line ---------------------------------------------------------------------------------


def test_bad_layer_patterns_are_refused_in_one_line(tmp_path):
    one_line_error(lambda: toy(sliding_window=0), "sliding_window", "0", "a window longer than any seq_len is fine")
    one_line_error(
        lambda: toy(sliding_window=16, layer_types=("full", "chunked", "full", "full")),
        "layer_types[1]",
        "'chunked'",
        "sliding",
    )
    one_line_error(lambda: toy(sliding_window=16, layer_types=("full",) * 3), "layer_types", "3 entries for 4 layers")
    one_line_error(lambda: toy(layer_types=("full", "sliding") * 2), "no sliding_window")
    one_line_error(lambda: toy(first_dense=7, **MOE), "first_dense", "7", "0 to layers (6)")
    one_line_error(lambda: toy(first_dense=1), "first_dense is 1 but experts is 0")
    one_line_error(lambda: toy(moe_every=0, **MOE), "moe_every", "0")
    toy(sliding_window=10**9)  # a window longer than any seq_len is fine
    config = json.loads((CONFIGS / "openai--gpt-oss-20b.json").read_text())
    for change, fragments in (
        ({"sliding_window": 0}, ("sliding_window", "0")),
        ({"layer_types": ["chunked_attention"] * 24}, ("layer_types[0]", "'chunked_attention'")),
        ({"layer_types": ["full_attention"] * 23}, ("23 entries for 24 layers",)),
        ({"first_k_dense_replace": 25}, ("first_dense", "25")),
        ({"moe_layer_freq": 2}, ("moe_layer_freq", "2")),
        ({"mlp_only_layers": [0, 1]}, ("mlp_only_layers",)),
    ):
        path = tmp_path / "config.json"
        path.write_text(json.dumps({**config, **change}))
        one_line_error(lambda path=path: rooflax.load_model(path), str(path), *fragments)
    (tmp_path / "m.toml").write_text(
        'name = "m"\nhidden = 256\nlayers = 4\nheads = 4\nintermediate = 768\nvocab = 1024\nsliding_window = 0\n'
    )
    one_line_error(lambda: rooflax.load_model(tmp_path / "m.toml"), "sliding_window", "0")


def test_a_toml_model_takes_the_layer_keys(tmp_path):
    (tmp_path / "m.toml").write_text(
        'name = "m"\nhidden = 256\nlayers = 4\nheads = 4\nkv_heads = 2\nintermediate = 768\nvocab = 1024\n'
        'sliding_window = 16\nlayer_types = ["sliding", "full", "sliding", "full"]\nattention_sinks = true\n'
    )
    model = rooflax.load_model(tmp_path / "m.toml")
    assert model == toy("m", sliding_window=16, layer_types=("sliding", "full") * 2, attention_sinks=True)
    assert model.to_dict()["layer_types"] == ["sliding", "full", "sliding", "full"]


def test_a_crossover_has_a_row_per_layer_kind_and_op():
    model = toy(sliding_window=16, layer_types=("sliding", "full") * 2)
    df = rooflax.crossover(model=model, hardware="a40", phases=["prefill"], seq_len=[64])
    assert df.columns[: df.columns.index("op") + 1][-2:] == ["layer", "op"]
    assert df.filter(op="qk").get_column("layer").to_list() == ["full/dense", "sliding/dense"]
    for row in df.filter(pl.col("crossover").is_not_null()).iter_rows(named=True):
        key = row["op"] if row["layer"] is None else f"{row['layer']}:{row['op']}"
        at = rooflax.evaluate(model=model, phase="prefill", batch=row["crossover"], seq_len=64).ops[key]
        assert at.intensity == row["intensity_at"] and at.bound == "compute"
    assert "layer" not in rooflax.crossover(phases=["decode"], seq_len=[64]).columns  # alike layers: as before


def test_transformers_defaults_fill_what_a_hub_config_leaves_out(tmp_path):
    """Gemma 2's hub configs give sliding_window but no layer pattern: transformers alternates, the first sliding."""
    config = {
        "model_type": "gemma2",
        "hidden_size": 256,
        "num_hidden_layers": 4,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 64,
        "intermediate_size": 768,
        "vocab_size": 1024,
        "sliding_window": 4096,
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    model = rooflax.load_model(path)
    assert [k.attention for k in model.layer_pattern] == ["sliding", "full", "sliding", "full"]
    assert model.tied_embeddings and model.sliding_window == 4096
