"""Multi-head latent attention: hand-derived counts, the oracle on a reference JAX MLA layer, both decode ways."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.experimental import roofline as jax_roofline

import rooflax
from rooflax import Model
from rooflax.config.models import MLA_FIELDS

# A small latent-attention model, fp16 (w = a = k = 2): h 256, H 4, r_q 64, r_kv 32, d_n 32, d_r 16, d_v 24.
TOY = Model(
    name="toy-mla",
    hidden=256,
    layers=2,
    heads=4,
    kv_heads=4,
    head_dim=48,
    intermediate=512,
    vocab=1000,
    q_lora_rank=64,
    kv_lora_rank=32,
    qk_nope_head_dim=32,
    qk_rope_head_dim=16,
    v_head_dim=24,
)

# Decode, B = 2, S = T = 8: M = 2, P = 8. Each op: (flops, bytes), derived by hand.
COMMON = {
    "q_down": (65_536, 34_048),  # 2·2·256·64; 2·256·64 + 2·2·256 + 2·2·64
    "q_norm": (512, 640),  # 4·2·64; 2·2·2·64 + 2·64
    "q_up": (49_152, 25_600),  # 2·2·64·192 (H(d_n + d_r) = 192); 2·64·192 + 2·2·64 + 2·2·192
    "kv_down": (49_152, 25_792),  # 2·2·256·48 (r_kv + d_r = 48); 2·256·48 + 2·2·256 + 2·2·48 (to the cache)
    "kv_norm": (256, 320),  # 4·2·32; 2·2·2·32 + 2·32
    "rotary": (480, 672),  # 3·2·(4 + 1)·16; 2·2·2·4·16 + 2·2·2·16 + 2·1·16
    "softmax": (320, 256),  # 5·2·4·8; 2·2·64
    "o_proj": (98_304, 50_560),  # 2·2·96·256 (H·d_v = 96); 2·96·256 + 2·2·96 + 2·2·256
}
NAIVE = {
    "kv_up": (229_376, 22_528),  # 2·16·32·224 (B·T = 16 rows, H(d_n + d_v) = 224); 2·32·224 + 2·16·32 + 2·16·224
    "qk": (6_144, 5_504),  # 2·2·4·8·48; Q 2·2·4·48 + K_nope 2·2·8·4·32 + k_rope 2·2·8·16 + scores 2·64
    "pv": (3_072, 3_584),  # 2·64·24; probabilities 2·64 + V 2·2·8·4·24 + O 2·2·4·24
}
ABSORBED = {
    "q_absorb": (16_384, 9_216),  # 2·2·4·32·32; W_UK 2·4·32·32 + q_nope 2·2·4·32 + q_latent 2·2·4·32
    "qk": (6_144, 2_432),  # 2·64·48 (r_kv + d_r); Q 2·2·4·48 + the cache 2·2·8·48 + scores 2·64
    "pv": (4_096, 1_664),  # 2·64·32 (r_kv); probabilities 2·64 + the latent 2·2·8·32 + O 2·2·4·32
    "o_absorb": (12_288, 7_040),  # 2·2·4·32·24; W_UV 2·4·32·24 + 2·2·4·32 + 2·2·4·24
}
FUSED = {
    # flops: qk + softmax + pv; bytes: Q and O, 2·2·4·(48 + 24) + K_nope and V 2·2·8·4·(32 + 24) + k_rope 2·2·8·16
    "naive": (6_144 + 320 + 3_072, 1_152 + 7_168 + 512),
    # bytes: Q and O 2·2·4·(48 + 32) + the cache read once, 2·2·8·48
    "absorbed": (6_144 + 320 + 4_096, 1_280 + 1_536),
}


@pytest.mark.parametrize(("mode", "own"), [("naive", NAIVE), ("absorbed", ABSORBED)])
def test_hand_derived_decode_both_ways(mode, own):
    r = rooflax.evaluate(model=TOY, phase="decode", batch=2, seq_len=8, mla_decode=mode).ops
    want = {**COMMON, **own}
    assert {op: (r[op].flops, r[op].bytes) for op in want} == want
    assert [op for op in r if op in {"kv_up", "q_absorb", "o_absorb", "qkv_proj"}] == [
        op for op in ("kv_up", "q_absorb", "o_absorb") if op in own
    ]
    fused = rooflax.evaluate(model=TOY, phase="decode", batch=2, seq_len=8, mla_decode=mode, fused_attention=True)
    assert (fused.ops["attention"].flops, fused.ops["attention"].bytes) == FUSED[mode]


def test_prefill_always_up_projects():
    naive = rooflax.evaluate(model=TOY, phase="prefill", batch=2, seq_len=8, mla_decode="naive").ops
    absorbed = rooflax.evaluate(model=TOY, phase="prefill", batch=2, seq_len=8, mla_decode="absorbed").ops
    assert naive == absorbed and "kv_up" in naive and "q_absorb" not in naive
    # M = 16 new tokens, each up-projected once: 2·16·32·224 FLOPs
    assert naive["kv_up"].flops == 229_376
    verify = rooflax.evaluate(model=TOY, phase="verify", batch=2, seq_len=8, spec_k=4).ops
    assert "q_absorb" in verify and verify["q_absorb"].flops == 4 * ABSORBED["q_absorb"][0]  # M = 2·4


def test_cache_and_weights():
    r = rooflax.evaluate(model=TOY, phase="decode", batch=2, seq_len=8).totals()
    assert r["kv_cache_bytes"] == 2 * (32 + 16) * 2 * 2 * 8  # k·(r_kv + d_r)·L·B·S
    # attention 256·64 + 64 + 64·4·48 + 256·48 + 32 + 32·4·56 + 4·24·256 = 72,800; MLP 3·256·512; norms 2·256
    per_layer = 72_800 + 393_216 + 512
    assert TOY.params == 2 * per_layer + 2 * 1000 * 256 + 256 == 1_445_312
    assert r["weight_bytes"] == 2 * TOY.params
    # tp = 2: the heads' matrices split, the down-projections, norms and the latent cache replicated
    tp2 = rooflax.evaluate(model=TOY, phase="decode", batch=2, seq_len=8, tp=2)
    attention = 256 * 64 + 64 + 64 * 2 * 48 + 256 * 48 + 32 + 32 * 2 * 56 + 2 * 24 * 256
    mlp = 3 * 256 * 256
    assert tp2.weight_bytes == 2 * (2 * (attention + mlp + 512) + 2 * 500 * 256 + 256)
    assert tp2.kv_cache_bytes == r["kv_cache_bytes"]
    assert tp2.ops["q_down"] == rooflax.evaluate(model=TOY, phase="decode", batch=2, seq_len=8).ops["q_down"]
    assert tp2.ops["q_up"].flops == COMMON["q_up"][0] // 2


# ----- the oracle: jax.experimental.roofline on the products of a reference JAX MLA layer -----


def _oracle(fn, *shapes):
    _, result = jax_roofline.roofline(fn)(*[jax.ShapeDtypeStruct(s, jnp.float16) for s in shapes])
    return result.flops, result.unfused_hbm_bytes


def _reference_products(m: Model, B: int, Q: int, T: int, absorbed: bool) -> dict:
    """Flops and HBM bytes of each product of a reference MLA layer, by the oracle (fp16: w = a = k = 2)."""
    h, H, rq, rkv = m.hidden, m.heads, m.q_lora_rank, m.kv_lora_rank
    dn, dr, dv = m.qk_nope_head_dim, m.qk_rope_head_dim, m.v_head_dim
    M = B * Q
    out = {
        "q_down": _oracle(lambda x, w: x @ w, (M, h), (h, rq)),
        "q_up": _oracle(lambda x, w: x @ w, (M, rq), (rq, H * (dn + dr))),
        "kv_down": _oracle(lambda x, w: x @ w, (M, h), (h, rkv + dr)),
        "o_proj": _oracle(lambda x, w: x @ w, (M, H * dv), (H * dv, h)),
    }
    if absorbed:
        out["q_absorb"] = _oracle(lambda q, w: jnp.einsum("mhn,hnc->mhc", q, w), (M, H, dn), (H, dn, rkv))
        # every head attends over the cache itself: the heads stacked into one product per sequence
        out["qk"] = _oracle(lambda q, c: jnp.einsum("bnc,btc->bnt", q, c), (B, H * Q, rkv + dr), (B, T, rkv + dr))
        out["pv"] = _oracle(lambda p, c: jnp.einsum("bnt,btc->bnc", p, c), (B, H * Q, T), (B, T, rkv))
        out["o_absorb"] = _oracle(lambda o, w: jnp.einsum("mhc,hcv->mhv", o, w), (M, H, rkv), (H, rkv, dv))
    else:
        out["kv_up"] = _oracle(lambda c, w: c @ w, (B * T, rkv), (rkv, H * (dn + dv)))
        flops, bytes_ = _oracle(
            lambda qn, qr, kn, kr: jnp.einsum("bhqn,bhtn->bhqt", qn, kn) + jnp.einsum("bhqr,btr->bhqt", qr, kr),
            (B, H, Q, dn),
            (B, H, Q, dr),
            (B, H, T, dn),
            (B, T, dr),
        )
        # the reference adds two partial score blocks, which a kernel fuses: both written and read back and
        # the sum written, four blocks more than the one written (the oracle counts no FLOPs for an add)
        out["qk"] = (flops, bytes_ - 4 * 2 * B * H * Q * T)
        out["pv"] = _oracle(lambda p, v: jnp.einsum("bhqt,bhtv->bhqv", p, v), (B, H, Q, T), (B, H, T, dv))
    return out


@pytest.mark.parametrize("mode", ["naive", "absorbed"])
@pytest.mark.parametrize(
    ("phase", "seq_len", "spec_k"), [("prefill", 64, None), ("decode", 256, None), ("verify", 128, 8)]
)
def test_matches_jax_roofline_oracle(mode, phase, seq_len, spec_k):
    batch = 3
    q = {"prefill": seq_len, "decode": 1, "verify": spec_k}[phase]
    absorbed = mode == "absorbed" and phase != "prefill"
    oracle = _reference_products(TOY, batch, q, seq_len, absorbed)
    ours = rooflax.evaluate(
        model=TOY, phase=phase, batch=batch, seq_len=seq_len, spec_k=spec_k, mla_decode=mode, dtype="fp16"
    ).ops
    assert set(oracle) <= set(ours)
    for op, (flops, bytes_) in oracle.items():
        assert ours[op].flops == pytest.approx(flops, rel=1e-9), op
        assert ours[op].bytes == pytest.approx(bytes_, rel=1e-9), op


def _mla_layer(params: dict, x: jax.Array, cache: jax.Array, absorbed: bool) -> jax.Array:
    """One decode step of a reference MLA layer (no norms, rotary left out: it touches q_r and k_r alike in
    both ways), attending over ``cache`` (the ``T`` latents and rotary keys, ``[T, r_kv + d_r]``)."""
    H, dn, rkv = params["heads"], params["dn"], params["w_uk"].shape[-1]
    q = (x @ params["w_dq"]) @ params["w_uq"]  # [Q, H(d_n + d_r)]
    q = q.reshape(x.shape[0], H, -1)
    q_n, q_r = q[..., :dn], q[..., dn:]
    latent, k_r = cache[:, :rkv], cache[:, rkv:]
    if absorbed:
        q_c = jnp.einsum("qhn,hnc->qhc", q_n, params["w_uk"])
        scores = jnp.einsum("qhc,tc->qht", q_c, latent) + jnp.einsum("qhr,tr->qht", q_r, k_r)
        o_c = jnp.einsum("qht,tc->qhc", jax.nn.softmax(scores, axis=-1), latent)
        o = jnp.einsum("qhc,hcv->qhv", o_c, params["w_uv"])
    else:
        k_n = jnp.einsum("tc,hcn->thn", latent, params["w_uk"].transpose(0, 2, 1))  # the up-projected cache
        v = jnp.einsum("tc,hcv->thv", latent, params["w_uv"])
        scores = jnp.einsum("qhn,thn->qht", q_n, k_n) + jnp.einsum("qhr,tr->qht", q_r, k_r)
        o = jnp.einsum("qht,thv->qhv", jax.nn.softmax(scores, axis=-1), v)
    return o.reshape(x.shape[0], -1) @ params["w_o"]


def test_the_two_ways_compute_the_same_layer():
    """Absorbing ``W_UK`` and ``W_UV`` is exact algebra: the reference layer gives the same output both ways."""
    keys = iter(jax.random.split(jax.random.key(0), 8))
    H, h, rq, rkv, dn, dr, dv, T = 4, 64, 32, 16, 8, 4, 12, 10

    def normal(*shape):
        return jax.random.normal(next(keys), shape, jnp.float32) / np.sqrt(shape[-2] if len(shape) > 1 else 1)

    params = {
        "heads": H,
        "dn": dn,
        "w_dq": normal(h, rq),
        "w_uq": normal(rq, H * (dn + dr)),
        "w_uk": normal(H, dn, rkv),
        "w_uv": normal(H, rkv, dv),
        "w_o": normal(H * dv, h),
    }
    x, cache = normal(2, h), normal(T, rkv + dr)
    naive, absorbed = _mla_layer(params, x, cache, False), _mla_layer(params, x, cache, True)
    np.testing.assert_allclose(np.asarray(naive), np.asarray(absorbed), rtol=1e-4, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("mode", "fused", "phases", "tp"),
    [("absorbed", False, ["prefill", "decode", "verify"], [1, 2]), ("naive", True, ["decode", "verify"], [2])],
)
def test_sweep_equals_evaluate_point_by_point(mode, fused, phases, tp):
    keys = dict(model=TOY, phases=phases, batch=[1, 4], seq_len=[16, 64], spec_k=[4], tp=tp)
    df = rooflax.sweep(**keys, mla_decode=mode, fused_attention=fused)
    points = df.partition_by("phase", "batch", "seq_len", "tp", maintain_order=True, as_dict=True)
    for (phase, batch, seq_len, degree), rows in points.items():
        spec_k = 4 if phase == "verify" else None
        r = rooflax.evaluate(
            model=TOY,
            phase=phase,
            batch=batch,
            seq_len=seq_len,
            spec_k=spec_k,
            tp=degree,
            mla_decode=mode,
            fused_attention=fused,
        ).ops
        assert rows["op"].cast(str).to_list() == list(r)
        assert rows.select("flops", "bytes").rows() == [(v.flops, v.bytes) for v in r.values()]
        want = [v.achieved_time_s for v in r.values()]
        assert rows["achieved_time_s"].to_list() == pytest.approx(want, rel=1e-12)
    assert df.height == rooflax.parse_spec(**keys, mla_decode=mode, fused_attention=fused).rows()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"q_lora_rank": 0}, "model 'toy-mla': q_lora_rank: expected a positive integer, got 0"),
        ({"v_head_dim": None}, "v_head_dim is missing; multi-head latent attention needs q_lora_rank, kv_lora_rank"),
        ({"kv_heads": 2}, "kv_heads is 2; multi-head latent attention up-projects a key and a value for every head"),
        ({"head_dim": 64}, "head_dim is 64; with multi-head latent attention it is the query-key width"),
    ],
)
def test_bad_latent_attention_is_one_line(change, message):
    fields = {f: getattr(TOY, f) for f in TOY.__dataclass_fields__ if f not in ("label", "source")}
    with pytest.raises(rooflax.SpecError, match=message) as info:
        Model(**{**fields, **change})
    assert "\n" not in str(info.value)


def test_bad_decode_way_and_scaling_are_one_line():
    with pytest.raises(rooflax.SpecError, match=r"mla_decode: unknown name 'absorb'; did you mean 'absorbed'\?"):
        rooflax.evaluate(model=TOY, phase="decode", batch=1, seq_len=8, mla_decode="absorb")
    with pytest.raises(rooflax.SpecError, match="mla_decode: unknown name 'flash'"):
        rooflax.parse_spec(model=TOY, batch=[1], seq_len=[8], mla_decode="flash")
    with pytest.raises(rooflax.SpecError, match="a model with latent attention is not scaled"):
        rooflax.evaluate(model=TOY, phase="decode", batch=1, seq_len=8, hidden=512)


CONFIGS = Path(__file__).parent / "configs"
#: deepseek-ai/DeepSeek-V3's config.json on the Hugging Face hub (tests/configs).
DEEPSEEK_V3_CONFIG = json.loads((CONFIGS / "deepseek-ai--DeepSeek-V3.json").read_text())


def _write_config(tmp_path, config: dict):
    folder = tmp_path / "DeepSeek-V3"
    folder.mkdir(exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config))
    return folder / "config.json"


def test_config_json_reads_latent_attention(tmp_path):
    m = rooflax.load_model(_write_config(tmp_path, DEEPSEEK_V3_CONFIG))
    assert (m.q_lora_rank, m.kv_lora_rank, m.qk_nope_head_dim, m.qk_rope_head_dim, m.v_head_dim) == (
        1536,
        512,
        128,
        64,
        128,
    )
    assert (m.heads, m.kv_heads, m.head_dim, m.mla) == (128, 128, 192, True)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"q_lora_rank": None}, "q_lora_rank is missing; multi-head latent attention needs"),
        ({"kv_lora_rank": 0}, "kv_lora_rank: expected a positive integer, got 0"),
        ({"qk_rope_head_dim": 0}, "qk_rope_head_dim: expected a positive integer, got 0"),
    ],
)
def test_config_json_bad_latent_attention_is_one_line(tmp_path, change, message):
    config = {**DEEPSEEK_V3_CONFIG, **change}
    with pytest.raises(rooflax.SpecError, match=message) as info:
        rooflax.load_model(_write_config(tmp_path, config))
    assert "\n" not in str(info.value) and "config.json" in str(info.value)


def test_model_toml_with_latent_attention(tmp_path):
    path = tmp_path / "mla.toml"
    keys = {f: getattr(TOY, f) for f in ("hidden", "layers", "heads", "intermediate", "vocab")}
    ranks = {f: getattr(TOY, f) for f in MLA_FIELDS}
    path.write_text("\n".join(f"{k} = {v}" for k, v in {**keys, **ranks}.items()) + '\nname = "toy-mla"\n')
    assert rooflax.load_model(path) == TOY
    path.write_text("\n".join(f"{k} = {v}" for k, v in {**keys, "kv_lora_rank": 32}.items()) + '\nname = "x"\n')
    with pytest.raises(rooflax.SpecError, match="q_lora_rank is missing"):
        rooflax.load_model(path)


# --- DeepSeek-V3 and Kimi K2: parameters by hand ---------------------------------------------------------


def _mla_attention(h, heads, rq=1536, rkv=512, dn=128, dr=64, dv=128):
    """q_down, q_norm, q_up, kv_down (with the rotary key), kv_norm, kv_up, o_proj."""
    return h * rq + rq + rq * heads * (dn + dr) + h * (rkv + dr) + rkv + rkv * heads * (dn + dv) + heads * dv * h


def test_deepseek_v3_parameters_to_the_parameter():
    """671 B total, 37 B active (arXiv 2412.19437): embedding and LM head counted, the MTP module not."""
    h, experts, width = 7168, 256, 2048
    attention = _mla_attention(h, 128)
    assert attention == 187_107_328
    norms = 2 * h
    dense = attention + 3 * h * 18432 + norms  # the 3 first layers (first_k_dense_replace)
    router = h * experts + experts  # the gate and its e_score_correction_bias
    moe = attention + 3 * h * width * (experts + 1) + router + norms  # 256 routed experts and 1 shared
    vocab = 2 * 129280 * h + h  # embedding, LM head, final norm
    model = rooflax.get_model("deepseek-v3")
    assert model.params == 3 * dense + 58 * moe + vocab == 671_026_419_200
    moe_active = attention + 3 * h * width * (8 + 1) + router + norms
    assert model.active_params == 3 * dense + 58 * moe_active + vocab == 37_552_297_472
    assert round(model.params / 1e9) == 671 and int(model.active_params / 1e9) == 37
    # the weights' own README: 36.6 B active without the input embedding (0.9 B)
    assert round((model.active_params - 129280 * h) / 1e8) / 10 == 36.6
    assert model.mtp_layers == 1 and [(k.name, n) for k, n in model.layer_kinds] == [
        ("full/dense", 3),
        ("full/moe", 58),
    ]


def test_kimi_k2_parameters():
    """1 T total, 32 B activated (model card): DeepSeek-V3's shape with 64 heads, 384 experts, one dense layer."""
    h, experts, width = 7168, 384, 2048
    attention = _mla_attention(h, 64)
    dense = attention + 3 * h * 18432 + 2 * h
    router = h * experts + experts
    moe = attention + 3 * h * width * (experts + 1) + router + 2 * h
    moe_active = attention + 3 * h * width * 9 + router + 2 * h
    vocab = 2 * 163840 * h + h
    model = rooflax.get_model("kimi-k2")
    assert model.params == dense + 60 * moe + vocab == 1_026_408_232_448
    assert model.active_params == dense + 60 * moe_active + vocab == 32_861_500_928
    assert round(model.params / 1e12, 2) == 1.03 and int(model.active_params / 1e9) == 32
    assert model.mtp_layers == 0


def test_deepseek_v3_cache_is_the_latent():
    """576 elements a token and layer (512 + 64), against 2·128·192 = 49152 if its heads cached keys and values."""
    r = rooflax.evaluate(model="deepseek-v3", hardware="h200", dtype="fp8", phase="decode", batch=8, seq_len=4096, ep=8)
    assert r.kv_cache_bytes == 1 * 576 * 61 * 1 * 4096  # fp8 cache; B/ep = 1 sequence a device
    ops = r.ops
    assert "full/moe:q_absorb" in ops and "full/moe:kv_up" not in ops
    # tokens travel to their experts only in the MoE layers; the 3 dense layers run on each replica's batch
    assert "full/moe:moe_dispatch" in ops and "full/dense:moe_dispatch" not in ops
    # absorbed decode: every head's scores over the 576-wide cache, 2·B·H·T·576
    assert ops["full/moe:qk"].flops == 2 * 1 * 128 * 4096 * 576
