"""Block-scaled formats: bytes with their scales, by hand and in sweeps; the peaks they run at; refusals."""

from __future__ import annotations

import dataclasses

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from one_line import one_line_error

import rooflax
from rooflax.cli.commands import main
from rooflax.config.dtypes import FORMATS, Format

# Llama-3-8B's gate_proj, 4096 → 14336: a weight of 14336 rows (outputs) × 4096 (the reduction,
# blocked) and 14336·4096 = 58_720_256 elements.
K, N = 4096, 14336


@pytest.mark.parametrize(
    "name, rows, cols, expected",
    [
        ("fp8", N, K, 58_720_256),  # one byte an element, the per-tensor scale not counted
        ("fp8_block_weight", N, K, 58_720_256 + 112 * 32 * 4),  # (14336/128)·(4096/128) fp32 scales
        ("fp8_block_act", 8, K, 8 * 4096 + 8 * 32 * 4),  # 8 tokens, 32 blocks of 1×128 each
        ("nvfp4", N, K, 58_720_256 // 2 + N * 256),  # half a byte an element, an e4m3 byte per 16
        ("mxfp4", N, K, 58_720_256 // 2 + N * 128),  # an e8m0 byte per 32
        ("nvfp4", 1, 17, 8.5 + 2),  # a partial block still holds a whole scale
        ("fp8_block_weight", 8, K, 8 * 4096 + 1 * 32 * 4),  # 8 rows of a 128-row block: one block row
    ],
)
def test_tensor_bytes_by_hand(name, rows, cols, expected):
    assert FORMATS[name].tensor_bytes(rows, cols) == expected


def test_policies_store_each_tensor_in_its_format():
    formats = {n: (rooflax.get_dtype(n).weight, rooflax.get_dtype(n).act) for n in ("nvfp4", "w4a8", "fp8_block")}
    assert formats == {
        "nvfp4": (FORMATS["nvfp4"], FORMATS["nvfp4"]),
        "w4a8": (FORMATS["mxfp4"], Format(name="act:1", element_bytes=1)),
        "fp8_block": (FORMATS["fp8_block_weight"], FORMATS["fp8_block_act"]),
    }
    assert rooflax.get_dtype("bf16", "nvfp4").kv == FORMATS["nvfp4"]
    assert rooflax.get_dtype("bf16", "fp8").kv_bytes == 1  # a plain KV dtype stays a number (metadata unchanged)
    nvfp4 = rooflax.get_dtype("nvfp4")
    assert rooflax.DtypePolicy(**nvfp4.to_dict()) == nvfp4  # a block format's metadata reads back


# weight format, activation format of each block-scaled policy
POLICY_FORMATS = {
    "fp8": ("fp8", "fp8"),
    "fp8_block": ("fp8_block_weight", "fp8_block_act"),
    "nvfp4": ("nvfp4", "nvfp4"),
    "mxfp4": ("mxfp4", "mxfp4"),
    "w4a8": ("mxfp4", "fp8"),
}


@pytest.mark.parametrize("dtype", list(POLICY_FORMATS))
def test_sweep_bytes_are_the_formula_with_scales(dtype):
    # gate_proj at 8 tokens reads its weight and input and writes its output, each in its format
    weight, act = (FORMATS[f] for f in POLICY_FORMATS[dtype])
    expected = weight.tensor_bytes(N, K) + act.tensor_bytes(8, K) + act.tensor_bytes(8, N)
    df = rooflax.sweep(model="llama-3-8b", hardware="b200", dtype=dtype, phases=["decode"], batch=[8], seq_len=[1024])
    assert df.filter(op="gate_proj")["bytes"].to_list() == [expected]
    if dtype == "nvfp4":  # the same, by hand: 33_030_144 of weight, 18_432 in, 64_512 out
        assert expected == 33_030_144 + (8 * 4096 // 2 + 8 * 256) + (8 * 14336 // 2 + 8 * 896) == 33_113_088


def test_nvfp4_kv_cache_bytes_by_hand():
    # qk in decode: a·B·H·Q·d + k·B·G·T·d + a·B·H·Q·T, the cache in nvfp4 blocks of 16 along d = 128
    ops = rooflax.evaluate(model="llama-3-8b", hardware="b200", dtype="bf16", kv_dtype="nvfp4", batch=2, seq_len=1024)
    cache = FORMATS["nvfp4"].tensor_bytes(2 * 8 * 1024, 128)  # B·G·T vectors of d elements
    assert cache == 2 * 8 * 1024 * (64 + 8)
    assert ops.ops["qk"].bytes == 2 * 2 * 32 * 128 + cache + 2 * 2 * 32 * 1024


def _decode(model, dtype, *, kv_dtype=None, batch=1, tp=1, **keys):
    """The decode rows of one point: op → its bytes (each layer kind's rows alike for the ops asked)."""
    kv = {"kv_dtype": kv_dtype} if kv_dtype else {}
    df = rooflax.sweep(
        model=model,
        hardware="b200",
        dtype=dtype,
        phases=["decode"],
        batch=[batch],
        seq_len=[1024],
        tp=[tp],
        **kv,
        **keys,
    )
    return df


def _op_bytes(df, op):
    values = set(df.filter(op=op)["bytes"].to_list())
    assert len(values) == 1, values  # the same in every layer kind
    return values.pop()


def test_gpt_oss_qkv_by_hand():
    # gpt-oss-20b: h = 2880, H = 64, G = 8, d = 64; qkv_proj's fused weight is (64 + 2·8)·64 = 5120 rows × 2880.
    # Decode at batch 1 reads it and the 2880-wide input, writes the 4096-wide Q and 2·8 cached vectors of 64
    # (KV in fp8 per tensor: a byte an element).
    rows, cols, q, kv = 5120, 2880, 64 * 64, 2 * 8 * 64
    # nvfp4: 2880 = 180 blocks of 16, 4096 = 256: whole blocks, one e4m3 byte each
    weight = rows * cols // 2 + rows * 180
    assert weight == FORMATS["nvfp4"].tensor_bytes(rows, cols) == 8_294_400
    expected = weight + (cols // 2 + 180) + (q // 2 + 256) + kv
    assert _op_bytes(_decode("gpt-oss-20b", "nvfp4"), "qkv_proj") == expected == 8_299_348
    # mxfp4: 2880 = 90 blocks of 32, 4096 = 128
    weight = rows * cols // 2 + rows * 90
    assert weight == FORMATS["mxfp4"].tensor_bytes(rows, cols) == 7_833_600
    expected = weight + (cols // 2 + 90) + (q // 2 + 128) + kv
    assert _op_bytes(_decode("gpt-oss-20b", "mxfp4"), "qkv_proj") == expected
    # fp8_block: 5120 = 40 row blocks of 128, 2880 = 22.5 column blocks: ⌈2880/128⌉ = 23, the last partial;
    # the 1×128 activation blocks: ⌈2880/128⌉ = 23 and 4096/128 = 32, 4 fp32 bytes each
    weight = rows * cols + 40 * 23 * 4
    assert weight == 14_749_280  # the per-element count, 5120·2880·(1 + 4/16384), said 14_749_200
    expected = weight + (cols + 23 * 4) + (q + 32 * 4) + kv
    assert _op_bytes(_decode("gpt-oss-20b", "fp8_block"), "qkv_proj") == expected


def test_mla_kv_down_and_the_latent_cache_by_hand():
    # DeepSeek-V3: kv_down is h = 7168 → r_kv + d_r = 512 + 64 = 576 (the latent and the rotary key, cached)
    rows, cols = 576, 7168
    # nvfp4 weights, activations and KV: 7168 = 448 blocks of 16; the cached latent 512 = 32 blocks, the rotary
    # key 64 = 4: 288 + 36 = 324 bytes a token and layer
    latent = 576 // 2 + 32 + 4
    assert latent == 324
    weight = rows * cols // 2 + rows * 448
    expected = weight + (cols // 2 + 448) + latent
    df = _decode("deepseek-v3", "nvfp4", kv_dtype="nvfp4")
    assert _op_bytes(df, "kv_down") == expected == 2_326_788
    summary = rooflax.evaluate(
        model="deepseek-v3", hardware="b200", dtype="nvfp4", kv_dtype="nvfp4", batch=1, seq_len=1024
    )
    assert summary.kv_cache_bytes == 61 * 1024 * latent  # 61 layers of 1024 tokens
    # fp8_block: 576 rows = ⌈576/128⌉ = 5 row blocks (4.5, the last half full), 7168 = 56 column blocks
    weight = rows * cols + 5 * 56 * 4
    assert weight == 4_129_888  # per element: 4_129_776 (576·7168·4/16384 = 1008 scale bytes, not 1120)
    expected = weight + (cols + 56 * 4) + 576  # the latent written in fp8 (per tensor)
    assert _op_bytes(_decode("deepseek-v3", "fp8_block"), "kv_down") == expected


def test_a_router_of_16_experts_by_hand():
    # Llama 4 Scout's router: h = 5120 → 16 experts, a 16 × 5120 weight in 128 × 128 blocks: one block row of
    # 40 partial blocks (16 of 128 rows), each a whole fp32 scale; the 16 logits one partial 1×128 block
    weight = 16 * 5120 + 1 * 40 * 4
    assert weight == FORMATS["fp8_block_weight"].tensor_bytes(16, 5120) == 82_080
    expected = weight + (5120 + 40 * 4) + (16 + 1 * 4)
    assert _op_bytes(_decode("llama-4-scout", "fp8_block"), "router") == expected == 87_380


def test_a_tensor_parallel_shard_holds_its_own_partial_blocks():
    # gpt-oss-20b at tp = 2: each expert's down projection is split along its reduction, 2880/2 = 1440 wide,
    # 11.25 blocks of 128: a device's 2880 × 1440 shard has ⌈2880/128⌉·⌈1440/128⌉ = 23·12 = 276 blocks (the
    # two shards 552, the whole matrix 23·23 = 529). Decode at batch 1: k = 4 experts touched, 4 tokens routed.
    shard = 2880 * 1440 + 23 * 12 * 4
    assert shard == FORMATS["fp8_block_weight"].tensor_bytes(2880, 1440) == 4_148_304
    expected = 4 * shard + 4 * (1440 + 12 * 4) + 4 * (2880 + 23 * 4)  # weights, inputs, outputs
    assert _op_bytes(_decode("gpt-oss-20b", "fp8_block", tp=2), "expert_down") == expected == 16_611_056
    # o_proj splits its reduction too: 32 heads of 64 = 2048 (16 whole blocks) on each device, 2880 rows (23)
    expected = (2880 * 2048 + 23 * 16 * 4) + (2048 + 16 * 4) + (2880 + 23 * 4)
    assert _op_bytes(_decode("gpt-oss-20b", "fp8_block", tp=2), "o_proj") == expected == 5_904_796


def _weight_tensors(model):
    """``(count, rows, cols)`` of every weight tensor of ``model`` on one device (biases not counted)."""
    h, heads = model.hidden, model.heads
    tensors = [(2 if not model.tied_embeddings else 1, model.vocab, h), (1, 1, h)]  # vocabulary, final norm
    for kind, layers in model.layer_kinds:
        if model.mla:
            r_q, r_kv, d_n, d_r, d_v = (
                model.q_lora_rank,
                model.kv_lora_rank,
                model.qk_nope_head_dim,
                model.qk_rope_head_dim,
                model.v_head_dim,
            )
            attention = [(r_q, h), (1, r_q), (heads * (d_n + d_r), r_q), (r_kv + d_r, h), (1, r_kv)]
            attention += [(heads * d_n, r_kv), (heads * d_v, r_kv), (h, heads * d_v)]
        else:
            attention = [((heads + 2 * model.kv_heads) * model.head_dim, h), (h, heads * model.head_dim)]
        if model.attention_sinks:
            attention.append((1, heads))
        tensors += [(layers, r, c) for r, c in [*attention, (1, h), (1, h)]]
        ins = 2 if model.gated_mlp else 1  # gate and up, or up
        dense = model.shared_intermediate if kind.mlp == "moe" else model.intermediate
        if dense:
            tensors += [(layers * ins, dense, h), (layers, h, dense)]
        if kind.mlp == "moe":
            e, width = model.experts, model.moe_intermediate
            tensors += [(layers * e * ins, width, h), (layers * e, h, width), (layers, e, h)]
    return tensors


@pytest.mark.parametrize("name", sorted(rooflax.MODELS))
def test_every_preset_counts_its_scales_exactly(name):
    model = rooflax.MODELS[name]
    for dtype in ("fp8_block", "nvfp4", "mxfp4"):
        fmt = rooflax.get_dtype(dtype).weight
        expected = sum(count * fmt.tensor_bytes(r, c) for count, r, c in _weight_tensors(model))
        got = rooflax.evaluate(model=model, hardware="b200", dtype=dtype, batch=1, seq_len=1024).weight_bytes
        assert got == expected, dtype
    # the KV cache in nvfp4: each layer's vectors of 1024 tokens (min(1024, W) in a sliding layer), 2 sequences
    kv = FORMATS["nvfp4"]
    vector = (
        kv.tensor_bytes(1, model.kv_lora_rank) + kv.tensor_bytes(1, model.qk_rope_head_dim)
        if model.mla
        else (2 * model.kv_heads * kv.tensor_bytes(1, model.head_dim))
    )
    tokens = {"full": 1024, "sliding": min(1024, model.sliding_window or 1024)}
    expected = sum(layers * 2 * tokens[kind.attention] * vector for kind, layers in model.layer_kinds)
    got = rooflax.evaluate(model=model, hardware="b200", dtype="bf16", kv_dtype="nvfp4", batch=2, seq_len=1024)
    assert got.kv_cache_bytes == expected


@pytest.mark.parametrize("name, dtype", [("llama-3-8b", "fp8_block"), ("gemma-3-27b", "nvfp4"), ("toy-llama", "mxfp4")])
def test_weight_memory_is_what_the_ops_read(name, dtype):
    # a product's bytes are its weight plus activations and cache writes linear in the batch: at batch 1 and 2
    # the weight is 2·b(1) − b(2); over every layer's products and the LM head, plus the norms (2 a layer and the
    # final one, in the weight format) and, untied, the embedding no op reads, that is the weight memory
    model, fmt = rooflax.MODELS[name], rooflax.get_dtype(dtype).weight
    df = rooflax.sweep(model=name, hardware="b200", dtype=dtype, phases=["decode"], batch=[1, 2], seq_len=[1024])
    layers = {kind.name: count for kind, count in model.layer_kinds}
    products = df.filter(pl.col("group").is_in(["qkv mlp", "up/gate/down", "lm_head"]))
    read = 0
    for row in products.filter(batch=1).iter_rows(named=True):
        same = (pl.col("op") == row["op"]) & pl.col("layer").eq_missing(row["layer"])
        twice = products.filter(same, batch=2)["bytes"].item()
        read += layers.get(row["layer"], 1) * (2 * row["bytes"] - twice)
    norms = (2 * model.layers + 1) * fmt.tensor_bytes(1, model.hidden)
    embedding = 0 if model.tied_embeddings else fmt.tensor_bytes(model.vocab, model.hidden)
    summary = rooflax.sweep(
        model=name, hardware="b200", dtype=dtype, phases=["decode"], batch=[1], seq_len=[1024], summary=True
    )
    assert summary["weight_bytes"].item() == read + norms + embedding


POLICIES = ("fp8_block", "nvfp4", "mxfp4", "w4a8")


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    hidden=st.integers(16, 3000),
    heads=st.integers(1, 6),
    group=st.sampled_from([1, 2]),
    head_dim=st.integers(8, 160),
    intermediate=st.integers(16, 5000),
    vocab=st.integers(16, 70000),
    batch=st.integers(1, 9),
    dtype=st.sampled_from(POLICIES),
    kv_dtype=st.sampled_from([None, "nvfp4"]),
)
def test_swept_bytes_are_the_tensors_formats(
    hidden, heads, group, head_dim, intermediate, vocab, batch, dtype, kv_dtype
):
    # random widths, whole blocks or not: every product reads its weight and writes its rows in their formats
    model = dataclasses.replace(
        rooflax.MODELS["toy-llama"],
        name="random",
        hidden=hidden,
        heads=heads * group,
        kv_heads=heads,
        head_dim=head_dim,
        intermediate=intermediate,
        vocab=vocab,
    )
    policy = rooflax.get_dtype(dtype, kv_dtype)
    w, a, k = policy.weight, policy.act, policy.kv
    df = _decode(model, dtype, kv_dtype=kv_dtype, batch=batch)
    q, kv_heads = heads * group * head_dim, heads

    def rows(width):  # the batch's activation rows of ``width``
        return batch * a.tensor_bytes(1, width)

    expected = {
        "qkv_proj": w.tensor_bytes(q + 2 * kv_heads * head_dim, hidden)
        + rows(hidden)
        + rows(q)
        + 2 * kv_heads * batch * k.tensor_bytes(1, head_dim),
        "o_proj": w.tensor_bytes(hidden, q) + rows(q) + rows(hidden),
        "gate_proj": w.tensor_bytes(intermediate, hidden) + rows(hidden) + rows(intermediate),
        "up_proj": w.tensor_bytes(intermediate, hidden) + rows(hidden) + rows(intermediate),
        "down_proj": w.tensor_bytes(hidden, intermediate) + rows(intermediate) + rows(hidden),
        "lm_head": w.tensor_bytes(vocab, hidden) + rows(hidden) + rows(vocab),
    }
    assert {op: _op_bytes(df, op) for op in expected} == expected


@pytest.mark.parametrize(
    "hardware, dtype, peak",
    [
        ("b200", "nvfp4", 9000e12),
        ("b200", "mxfp4", 9000e12),
        ("gb200", "nvfp4", 10000e12),
        ("b300", "nvfp4", 13500e12),
        ("mi355x", "mxfp4", 10066.3e12),
        ("h100-sxm", "w4a8", 1978.9e12),
        ("h100-sxm", "fp8_block", 1978.9e12),
    ],
)
def test_formats_run_at_their_peak(hardware, dtype, peak):
    # a prefill product of 32k tokens is compute-bound: its ideal time is its FLOPs over the peak
    op = rooflax.evaluate(model="llama-3-8b", hardware=hardware, dtype=dtype, phase="prefill", batch=8, seq_len=4096)
    gate = op.ops["gate_proj"]
    assert gate.bound == "compute" and gate.time_s == pytest.approx(gate.flops / peak, rel=1e-12)


A100_HAS = "a100-80gb-sxm has fp32, tf32, fp16, bf16, int8"


@pytest.mark.parametrize(
    "hardware, dtype, message",
    [
        (
            "a100-80gb-sxm",
            "nvfp4",
            f"dtype: nvfp4 needs FP4 tensor cores with NVFP4 block scales (e4m3 per 16); {A100_HAS}",
        ),
        ("a100-80gb-sxm", "w4a8", f"dtype: w4a8 needs FP8 tensor cores; {A100_HAS}"),
        ("mi355x", "nvfp4", "dtype: nvfp4 needs FP4 tensor cores with NVFP4 block scales (e4m3 per 16); mi355x has "),
        ("h100-sxm", "mxfp4", "dtype: mxfp4 needs FP4 tensor cores with MX block scales (e8m0 per 32); h100-sxm has "),
        ("tpu-v5e", "fp16", "dtype: fp16 needs FP16 tensor cores; tpu-v5e has bf16, int8"),
    ],
)
def test_a_dtype_the_part_cannot_run_is_one_line(hardware, dtype, message, capsys):
    keys = dict(model="llama-3-8b", hardware=hardware, dtype=dtype)
    one_line_error(lambda: rooflax.parse_spec(**keys, batch=[1], seq_len=[8]), message)
    one_line_error(lambda: rooflax.evaluate(**keys, batch=1, seq_len=8), message)
    argv = ["crossover", "--model", "llama-3-8b", "--hardware", hardware, "--dtype", dtype, "--seq-len", "8"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err


def test_an_nvl72_domain_holds_72_gpus():
    keys = dict(model="mixtral-8x7b", hardware="gb200", batch=[8], seq_len=[512], phases=["decode"])
    assert rooflax.sweep(**keys, tp=[8], ep=[8], summary=True).height == 1  # 64 GPUs
    message = "tp×pp×ep: 8×2×8 = 128 devices exceed gb200's interconnect domain of 72 (interconnect_gpus)"
    one_line_error(lambda: rooflax.sweep(**keys, tp=[8], pp=[2], ep=[8]), message)
    one_line_error(
        lambda: rooflax.evaluate(model="mixtral-8x7b", hardware="gb200", batch=8, seq_len=8, tp=8, pp=16),
        "= 128 devices",
    )
    assert rooflax.get_hardware("h100-sxm").interconnect_gpus is None  # presets of 8-GPU boards: no limit


def test_a_whole_block_holds_one_scale():
    # 128 × 128 elements: 128·128/(br·bc) whole blocks, each one scale
    whole = {name: fmt.tensor_bytes(128, 128) for name, fmt in FORMATS.items()}
    assert whole == {
        "fp8": 16384,
        "fp8_block_weight": 16384 + 1 * 4,
        "fp8_block_act": 16384 + 128 * 4,
        "nvfp4": 8192 + 128 * 8,
        "mxfp4": 8192 + 128 * 4,
    }
