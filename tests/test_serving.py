"""The steady-state serving model (rooflax.answers.serving): closed forms by hand."""

from __future__ import annotations

import dataclasses
import math

import polars as pl
import pytest
from one_line import one_line_error

import rooflax
from rooflax.answers import serving
from rooflax.answers.serving import Traffic, disaggregated, serve

CELL = dict(model="toy-llama", hardware="h100-sxm")
ISL, OSL = 64, 17  # mean context 64 + 8 = 72


def _step(phase: str, batch: int, seq_len: int, hardware="h100-sxm") -> dict:
    return rooflax.sweep(
        model="toy-llama", hardware=hardware, phases=[phase], batch=[batch], seq_len=[seq_len], summary=True
    ).row(0, named=True)


def _close(a: float, b: float) -> None:
    assert a == pytest.approx(b, rel=1e-9), (a, b)


def test_one_request_alone_waits_for_its_prefill_then_one_decode_step_a_token():
    row = serve(**CELL, batch=[1], isl=ISL, osl=OSL).row(0, named=True)
    prefill, decode = _step("prefill", 1, ISL), _step("decode", 1, ISL + OSL // 2)
    for prefix, time in (("", "achieved_time_s"), ("ideal_", "time_s")):
        _close(row[f"{prefix}ttft_s"], prefill[time])
        _close(row[f"{prefix}tpot_s"], decode[time])
        _close(row[f"{prefix}e2e_s"], prefill[time] + (OSL - 1) * decode[time])
        _close(row[f"{prefix}tokens_per_s_per_user"], 1 / decode[time])
        _close(row[f"{prefix}tokens_per_s_per_gpu"], OSL / (prefill[time] + (OSL - 1) * decode[time]))
    _close(row["ttft_lo_s"], prefill["achieved_time_lo_s"])
    _close(row["tpot_hi_s"], decode["achieved_time_hi_s"])


def test_continuous_batching_by_hand():
    # C sequences: each waits through the C - 1 other prefills while it decodes its osl - 1 tokens
    c = 8
    row = serve(**CELL, batch=[c], isl=ISL, osl=OSL).row(0, named=True)
    t_p, t_d = _step("prefill", 1, ISL)["time_s"], _step("decode", c, ISL + OSL // 2)["time_s"]
    _close(row["ideal_tpot_s"], t_d + (c - 1) * t_p / (OSL - 1))
    _close(row["ideal_requests_per_s"], 1 / (t_p + (OSL - 1) * t_d / c))
    _close(row["ideal_tokens_per_s_per_gpu"], OSL / (t_p + (OSL - 1) * t_d / c))


@pytest.mark.parametrize("options", [{}, {"chunk": 16}, {"k": [0, 3]}], ids=["whole", "chunked", "speculation"])
def test_littles_law(options):
    rows = serve(**CELL, batch=[1, 3, 16], isl=ISL, osl=OSL, **options)
    for prefix in ("", "ideal_"):
        little = rows[f"{prefix}requests_per_s"] * rows[f"{prefix}e2e_s"] / rows["concurrency"]
        assert (little - 1).abs().max() < 1e-12
        latency = rows[f"{prefix}ttft_s"] + (OSL - 1) * rows[f"{prefix}tpot_s"]
        assert ((latency - rows[f"{prefix}e2e_s"]) / latency).abs().max() < 1e-12


def test_kv_runs_out_exactly_at_the_concurrency_whose_pages_fill_the_memory():
    c, block = 12, 16
    paged = -(-(ISL + OSL // 2) // block) * block  # 72 tokens in 16-token pages: 80
    m = rooflax.get_model("toy-llama")
    kv = 2 * 2 * m.kv_heads * m.head_dim * m.layers * c * paged  # fp16: 2 bytes, K and V
    decode, prefill = _step("decode", c, ISL + OSL // 2), _step("prefill", 1, ISL)
    other = decode["weight_bytes"] + max(decode["activation_bytes"], prefill["activation_bytes"])
    hw = dataclasses.replace(rooflax.get_hardware("h100-sxm"), name="h100-small", memory_bytes=other + kv)
    rows = serve(model="toy-llama", hardware=hw, batch=[c - 1, c, c + 1], isl=ISL, osl=OSL, block_size=block)
    assert rows["kv_usage"][1] == pytest.approx(1.0, rel=1e-12)
    assert rows["feasible"].to_list() == [True, True, False]


def test_one_chunk_as_long_as_the_prompt_is_whole_prompt_prefill():
    # the chunk's attention is priced as a verify step: the same counts as prefill; achieved too on an
    # accelerator whose attention terms do not depend on the phase
    flat = dataclasses.replace(rooflax.get_hardware("h100-sxm"), name="h100-flat", phase_terms=())
    band = ("ttft_lo_s", "ttft_hi_s", "tpot_lo_s", "tpot_hi_s", "tokens_per_s_per_gpu_lo", "tokens_per_s_per_gpu_hi")
    achieved = ("ttft_s", "ideal_ttft_s", "tpot_s", *band)
    for hw, columns in (("h100-sxm", ("ideal_ttft_s", "ideal_tpot_s")), (flat, achieved)):
        whole = serve(model="toy-llama", hardware=hw, batch=[1], isl=ISL, osl=OSL).row(0, named=True)
        chunked = serve(model="toy-llama", hardware=hw, batch=[1], isl=ISL, osl=OSL, chunk=ISL).row(0, named=True)
        assert chunked["prefill"] == f"chunk {ISL}" and whole["ttft_lo_s"] is not None
        for name in columns:
            _close(chunked[name], whole[name])


def test_chunks_add_up_with_the_decode_tokens_beside_them():
    # two chunks of 32 beside C - 1 = 3 decode tokens: the token ops of 35 tokens, the decode attention of 3,
    # each chunk's attention at its context, the head of 4, every layer's
    row = serve(**CELL, batch=[4], isl=ISL, osl=OSL, chunk=32).row(0, named=True)
    ops = rooflax.sweep(model="toy-llama", hardware="h100-sxm", phases=["decode"], batch=[3, 4, 35], seq_len=[72])
    verify = rooflax.sweep(
        model="toy-llama", hardware="h100-sxm", phases=["verify"], batch=[1], seq_len=[32, 64], spec_k=[32]
    )
    attention = pl.col("op").cast(pl.String).is_in(["rotary", "qk", "softmax", "pv", "attention"])

    def total(frame, where) -> float:
        return frame.filter(where)["time_s"].sum()

    token_ops = total(ops, (pl.col("batch") == 35) & ~attention & (pl.col("op") != "lm_head"))
    step = 4 * (token_ops + total(ops, (pl.col("batch") == 3) & attention)) + total(
        ops, (pl.col("batch") == 4) & (pl.col("op") == "lm_head")
    )
    chunk_attention = 4 * total(verify, attention)  # both chunks' (contexts 32 and 64)
    _close(row["ideal_ttft_s"], 2 * step + chunk_attention)


def test_speculation_with_no_draft_is_no_speculation():
    rows = serve(**CELL, batch=[1, 8], isl=ISL, osl=OSL, k=[0])
    none, k0 = rows.filter(speculation="none"), rows.filter(speculation="k=0")
    for name in ("ideal_ttft_s", "ideal_tpot_s", "ideal_tokens_per_s_per_gpu", "ideal_requests_per_s"):
        for a, b in zip(none[name], k0[name], strict=True):
            _close(a, b)


#: toy-llama with one multi-token prediction module (one more of its layers, the 2h → h projection, norms).
TOY_MTP = dataclasses.replace(rooflax.get_model("toy-llama"), name="toy-llama-mtp", mtp_layers=1)
HALF = {"kind": "geometric", "alpha": 0.5}


def test_mtp_one_request_alone_gets_a_round_every_tokens_per_round_tokens():
    rows = serve(model=TOY_MTP, hardware="h100-sxm", batch=[1], isl=ISL, osl=OSL, mtp=True, acceptance=HALF)
    assert rows["speculation"].to_list() == ["mtp k=0", "mtp k=1", "none"]
    row = rows.filter(speculation="mtp k=1").row(0, named=True)
    round_ = rooflax.speculate(
        model=TOY_MTP, hardware="h100-sxm", batch=[1], seq_len=[ISL + OSL // 2], k=[1], mtp=True, acceptance=HALF
    ).row(0, named=True)
    r = 1 + 0.5  # the draft accepted half the time: 1.5 tokens a round
    prefill = _step("prefill", 1, ISL)
    for prefix, time in (("", "achieved_"), ("ideal_", "")):
        _close(row[f"{prefix}tpot_s"], round_[f"{time}round_time_s"] / r)
        _close(row[f"{prefix}ttft_s"], prefill[f"{time}time_s" if time else "time_s"])
    for end in ("lo", "hi"):
        _close(row[f"tpot_{end}_s"], round_[f"achieved_round_time_{end}_s"] / r)


def test_mtp_with_no_draft_is_no_speculation():
    rows = serve(model=TOY_MTP, hardware="h100-sxm", batch=[1, 8], isl=ISL, osl=OSL, mtp=True, k=[0], chunk=32)
    none, k0 = rows.filter(speculation="none"), rows.filter(speculation="mtp k=0")
    for name in ("ttft_s", "tpot_s", "ideal_tpot_s", "tpot_lo_s", "tpot_hi_s", "tokens_per_s_per_gpu"):
        for a, b in zip(none[name], k0[name], strict=True):
            _close(a, b)


BANDED = ("ttft", "tpot", "tokens_per_s_per_user", "tokens_per_s_per_gpu")


def _ends(name: str) -> tuple[str, str]:
    return (f"{name}_lo_s", f"{name}_hi_s") if name in ("ttft", "tpot") else (f"{name}_lo", f"{name}_hi")


def test_every_serving_mode_carries_the_band():
    # whole and chunked prefill, no speculation, draft lengths and MTP, aggregated and disaggregated
    modes = dict(model=TOY_MTP, isl=ISL, osl=OSL, gpus=2, batch=[1, 4], chunk=[None, 32], mtp=True, k=[0, 1])
    found = rooflax.frontier(hardware="h100-sxm", disaggregated=True, acceptance=HALF, **modes).configurations
    assert set(found["serving"]) == {"aggregated", "disaggregated"} and set(found["prefill"]) == {"whole", "chunk 32"}
    assert set(found["speculation"]) == {"none", "mtp k=0", "mtp k=1"}
    for name in BANDED:
        low, high = _ends(name)
        achieved = f"{name}_s" if name in ("ttft", "tpot") else name
        assert found[low].null_count() == found[high].null_count() == 0, name
        assert (found[low] <= found[achieved]).all() and (found[achieved] <= found[high]).all(), name
        assert (found[low] < found[high]).all(), name
    # an accelerator with no measurements has no band, in every mode
    bare = rooflax.frontier(hardware="mi300x", disaggregated=True, acceptance=HALF, **modes).configurations
    ends = [end for name in BANDED for end in _ends(name)]
    assert bare.height and bare.select(ends).null_count().sum_horizontal().item() == len(ends) * bare.height


def test_energy_at_board_power_and_a_price_only_when_given():
    hw = rooflax.get_hardware("h100-sxm")
    assert hw.board_power_w == 700.0  # the preset's, cited in its source
    priced = serve(model="toy-llama", hardware=hw, batch=[4], isl=ISL, osl=OSL, gpu_hour_usd=2.0).row(0, named=True)
    _close(priced["joules_per_token"], 700.0 / priced["tokens_per_s_per_gpu"])
    _close(priced["usd_per_million_tokens"], 2.0 / 3600 / priced["tokens_per_s_per_gpu"] * 1e6)
    unpowered = dataclasses.replace(hw, name="h100-unknown-power", board_power_w=None)
    unknown = serve(model="toy-llama", hardware=unpowered, batch=[4], isl=ISL, osl=OSL)
    assert unknown["joules_per_token"].to_list() == [None]
    assert "usd_per_million_tokens" not in unknown.columns


def test_a_price_for_each_accelerator():
    # 3.6 USD an hour is 0.001 USD a second: a million tokens at t tokens/s per GPU cost 1000 / t
    # USD; 7.2 costs twice that
    rows = serve(
        model="toy-llama", hardware=["h100-sxm", "h200"], batch=[4], isl=ISL, osl=OSL,
        gpu_hour_usd={"h200": 7.2, "h100-sxm": 3.6},
    )  # fmt: skip
    by_name = {row["hardware"]: row for row in rows.iter_rows(named=True)}
    assert set(by_name) == {"h100-sxm", "h200"}
    _close(by_name["h100-sxm"]["usd_per_million_tokens"] * by_name["h100-sxm"]["tokens_per_s_per_gpu"], 1000.0)
    _close(by_name["h200"]["usd_per_million_tokens"] * by_name["h200"]["tokens_per_s_per_gpu"], 2000.0)
    one = serve(model="toy-llama", hardware=["h100-sxm", "h200"], batch=[4], isl=ISL, osl=OSL, gpu_hour_usd=3.6)
    for row in one.iter_rows(named=True):
        _close(row["usd_per_million_tokens"] * row["tokens_per_s_per_gpu"], 1000.0)


def test_gpu_hour_prices():
    assert serving.gpu_hour_prices(None, ["h200"]) is None
    assert serving.gpu_hour_prices(2.5, ["h200", "b200"]) == {"h200": 2.5, "b200": 2.5}
    assert serving.gpu_hour_prices({"b200": 5, "h200": 3.8}, ["h200", "b200"]) == {"h200": 3.8, "b200": 5.0}
    served = ["h200", "b200", "mi355x"]
    prices = {"h200": 3.8, "b200": 5.5, "mi355x": 4.2}
    message = one_line_error(lambda: serving.gpu_hour_prices({**prices, "h20O": 1.0}, served), "gpu_hour_usd", "'h20O'")
    assert "did you mean 'h200'" in message and "served: h200, b200, mi355x" in message
    one_line_error(lambda: serving.gpu_hour_prices({"h200": 3.8}, served), "gpu_hour_usd", "no price for b200, mi355x")
    one_line_error(lambda: serving.gpu_hour_prices({**prices, "b200": 0}, served), "gpu_hour_usd['b200']", "0")
    one_line_error(lambda: serving.gpu_hour_prices({}, ["h200"]), "no price for h200")


def _frames(spec, *, prefill_s: float, round_s: float, concurrency: int):
    """Hand-made prefill and decode tables of one toy instance each (one device); every step's band is
    half to twice its achieved time."""
    model, hardware, dtype = spec.models[0], spec.hardware[0].name, spec.dtypes[0].name
    keys = {
        "model": model.name,
        "hardware": hardware,
        "dtype": dtype,
        "hidden": model.hidden,
        "tp": 1,
        "pp": 1,
        "ep": 1,
    }
    prefill = pl.DataFrame(
        [
            {
                **keys,
                "prefill_s": prefill_s,
                "ideal_prefill_s": prefill_s,
                "lo_prefill_s": prefill_s / 2,
                "hi_prefill_s": prefill_s * 2,
                "prefill_max_s": prefill_s,  # one kind of request: its prefill is the longest
                "ideal_prefill_max_s": prefill_s,
                "lo_prefill_max_s": prefill_s / 2,
                "hi_prefill_max_s": prefill_s * 2,
                "prefill_memory_bytes": 1.0,
            }
        ]
    )
    rounds = pl.DataFrame(
        [
            {
                **keys,
                "batch": concurrency,
                "concurrency": concurrency,
                "speculation": "none",
                "draft_k": None,
                "tokens_per_round": 1.0,
                "round_s": round_s,
                "ideal_round_s": round_s,
                "lo_round_s": round_s / 2,
                "hi_round_s": round_s * 2,
                "kv_bytes": 1.0,
                "other_bytes": 1.0,
            }
        ]
    )
    return rounds, prefill


def test_disaggregated_balanced_with_an_infinitely_fast_link_is_the_sum_of_its_parts():
    spec = rooflax.parse_spec(model="toy-llama", hardware="h100-sxm", batch=[1], seq_len=[8])
    traffic = Traffic(isl=ISL, osl=5)
    # a prefill instance serves 1/2 request/s; a decode instance 4 / (0.5 · 4) = 2: balanced at 4 : 1
    rounds, prefill = _frames(spec, prefill_s=2.0, round_s=0.5, concurrency=4)
    row = disaggregated(rounds, prefill, traffic, spec, gpus=5, kv_link_bytes_per_s=math.inf).row(0, named=True)
    assert (row["prefill_instances"], row["decode_instances"], row["gpus"]) == (4, 1, 5)
    _close(row["balance"], 4.0)
    assert row["ttft_s"] == 2.0 and row["tpot_s"] == 0.5
    # device-seconds per request: 1 · 2 (prefill) + 1 · 0.5 · 4 / 4 (decode) = 2.5
    _close(row["tokens_per_s_per_gpu"], 5 / 2.5)
    _close(row["requests_per_s"], 2.0)
    # every step twice as fast stays balanced: a first token in 1 s, a token every 0.25 s, twice the throughput
    assert (row["ttft_lo_s"], row["tpot_lo_s"], row["ttft_hi_s"], row["tpot_hi_s"]) == (1.0, 0.25, 4.0, 1.0)
    _close(row["tokens_per_s_per_gpu_hi"], 2 * 5 / 2.5)
    _close(row["tokens_per_s_per_gpu_lo"], 5 / 2.5 / 2)
    assert (row["tokens_per_s_per_user_lo"], row["tokens_per_s_per_user_hi"]) == (1.0, 4.0)
    # a finite link delays the first token by the request's KV over it and changes nothing else
    m = rooflax.get_model("toy-llama")
    slow = disaggregated(rounds, prefill, traffic, spec, gpus=5, kv_link_bytes_per_s=1e6).row(0, named=True)
    _close(slow["ttft_s"], 2.0 + 2 * 2 * m.kv_heads * m.head_dim * m.layers * ISL / 1e6)
    _close(slow["tokens_per_s_per_gpu"], row["tokens_per_s_per_gpu"])


def test_a_latent_attention_request_ships_its_latent_not_full_heads():
    # DeepSeek-V3 caches kv_lora_rank + qk_rope_head_dim = 512 + 64 elements a token and layer (fp8: a byte
    # each), 61 layers: a 1,000-token prompt sends 1000 · 61 · 576 bytes, not 2·G·d·L per token
    spec = rooflax.parse_spec(model="deepseek-v3", hardware="h200", dtype="fp8", batch=[1], seq_len=[8])
    traffic = Traffic(isl=1000, osl=5)
    rounds, prefill = _frames(spec, prefill_s=2.0, round_s=0.5, concurrency=4)
    fast = disaggregated(rounds, prefill, traffic, spec, gpus=5, kv_link_bytes_per_s=math.inf).row(0, named=True)
    slow = disaggregated(rounds, prefill, traffic, spec, gpus=5, kv_link_bytes_per_s=1e9).row(0, named=True)
    _close(slow["ttft_s"] - fast["ttft_s"], 1000 * 61 * 576 / 1e9)


def test_a_sliding_window_request_ships_at_most_its_window():
    # gpt-oss-20b: 24 layers, every other one a 128-token window, 8 KV heads of 64 (bf16): a 1,000-token
    # prompt leaves 12 · 1000 + 12 · 128 token-layers of 2 · 8 · 64 · 2 bytes
    spec = rooflax.parse_spec(model="gpt-oss-20b", hardware="h100-sxm", batch=[1], seq_len=[8])
    traffic = Traffic(isl=1000, osl=5)
    rounds, prefill = _frames(spec, prefill_s=2.0, round_s=0.5, concurrency=4)
    fast = disaggregated(rounds, prefill, traffic, spec, gpus=5, kv_link_bytes_per_s=math.inf).row(0, named=True)
    slow = disaggregated(rounds, prefill, traffic, spec, gpus=5, kv_link_bytes_per_s=1e9).row(0, named=True)
    _close(slow["ttft_s"] - fast["ttft_s"], (12 * 1000 + 12 * 128) * 2 * 8 * 64 * 2 / 1e9)


def test_disaggregated_serving_of_real_steps():
    spec = serving.base_spec(
        None, {"model": "toy-llama", "hardware": "h100-sxm", "batch": [4]}, Traffic(isl=ISL, osl=OSL)
    )
    traffic = Traffic(isl=ISL, osl=OSL)
    rows = disaggregated(
        serving.decode_rounds(spec, traffic), serving.prefill_steps(spec, traffic), traffic, spec, gpus=2
    )
    row = rows.row(0, named=True)
    decode = _step("decode", 4, ISL + OSL // 2)
    _close(row["tpot_s"], decode["achieved_time_s"])
    assert row["kv_transfer_s"] > 0 and (row["prefill_instances"], row["decode_instances"]) == (1, 1)


@pytest.mark.parametrize(
    ("options", "fragments"),
    [
        ({"osl": 0}, ("osl", "≥ 2", "0")),
        ({"osl": 1}, ("osl", "got 1")),
        ({"isl": 0}, ("isl", "0")),
        ({"chunk": 100}, ("chunk", "100", "isl 64")),
        ({"seq_len": [8]}, ("seq_len", "from the traffic")),
        ({"gpu_hour_usd": -1.0}, ("gpu_hour_usd", "-1.0")),
        ({"gpu_hour_usd": {"h100-sxn": 2.0}}, ("gpu_hour_usd", "'h100-sxn'", "did you mean 'h100-sxm'")),
        ({"gpu_hour_usd": {"h100-sxm": "2"}}, ("gpu_hour_usd['h100-sxm']", "'2'")),
        ({"k": [1], "pp": [2]}, ("k", "pp = 1")),
        ({"mtp": True}, ("mtp", "toy-llama has no multi-token prediction module")),
    ],
)
def test_bad_input_is_one_line(options, fragments):
    def call():
        return serve(**{"model": "toy-llama", "hardware": "h100-sxm", "batch": [1], "isl": ISL, "osl": OSL, **options})

    one_line_error(call, *fragments)


# a two-kind mix: 3 in 4 requests of 64 in / 16 out, 1 in 4 of 256 in / 8 out. A kind stays osl rounds in
# flight, so the sequences in flight are 0.75·16 = 12 parts short to 0.25·8 = 2 parts long: their mean context
# (12·(64 + 8) + 2·(256 + 4)) / 14 = 1384 / 14 = 98.86, the nearest token 99; a request has 0.75·16 + 0.25·8 = 14
# output tokens on average
MIX = [(64, 16, 0.75), (256, 8, 0.25)]


@pytest.mark.parametrize(
    "options", [{}, {"chunk": 16}, {"k": [0, 3]}, {"block_size": 7}], ids=["whole", "chunked", "speculation", "pages"]
)
def test_a_one_kind_mix_is_fixed_lengths_bit_for_bit(options):
    fixed = serve(**CELL, batch=[1, 3, 16], isl=ISL, osl=OSL, **options)
    assert fixed.equals(serve(**CELL, batch=[1, 3, 16], requests=[(ISL, OSL, 1.0)], **options))


def test_two_identical_kinds_are_one_kind():
    one = serve(**CELL, batch=[1, 3, 16], isl=ISL, osl=OSL, chunk=16)
    two = serve(**CELL, batch=[1, 3, 16], requests=[(ISL, OSL, 0.5), (ISL, OSL, 0.5)], chunk=16)
    assert one.columns == two.columns
    for name, column in one.to_dict().items():
        if column.dtype.is_float():
            assert ((column - two[name]).abs() <= 1e-12 * column.abs()).all(), name
        else:
            assert column.equals(two[name]), name


def test_a_mix_decodes_at_the_mean_context_of_the_sequences_in_flight():
    row = serve(**CELL, batch=[1], requests=MIX).row(0, named=True)
    short, long, decode = _step("prefill", 1, 64), _step("prefill", 1, 256), _step("decode", 1, 99)
    for prefix, time in (("", "achieved_time_s"), ("ideal_", "time_s")):
        assert row[f"{prefix}tpot_s"] == pytest.approx(decode[time], rel=1e-12)  # one request alone: one step
        ttft = 0.75 * short[time] + 0.25 * long[time]
        _close(row[f"{prefix}ttft_s"], ttft)
        _close(row[f"{prefix}ttft_max_s"], long[time])
        _close(row[f"{prefix}e2e_s"], ttft + (14 - 1) * decode[time])
        _close(row[f"{prefix}tokens_per_s_per_gpu"], 14 / (ttft + 13 * decode[time]))
    _close(row["ttft_max_hi_s"], long["achieved_time_hi_s"])


def test_a_mix_pages_each_kinds_context():
    # 16-token pages: 72 tokens take 80, 260 take 272; in flight (12·80 + 2·272) / 14 = 1504 / 14 tokens a sequence
    traffic = Traffic(requests=tuple(MIX))
    base = serving.base_spec(None, {"model": "toy-llama", "hardware": "h100-sxm", "batch": [2]}, traffic)
    assert base.seq_len == (99,)
    m = rooflax.get_model("toy-llama")
    kv = serving.decode_rounds(base, traffic)["kv_bytes"][0]
    _close(kv, 2 * 2 * 2 * m.kv_heads * m.head_dim * m.layers * 1504 / 14)  # fp16 K and V, 2 sequences


@pytest.mark.parametrize("options", [{}, {"chunk": 16}, {"k": [0, 3]}], ids=["whole", "chunked", "speculation"])
def test_littles_law_on_a_mix(options):
    rows = serve(**CELL, batch=[1, 3, 16], requests=MIX, **options)
    for prefix in ("", "ideal_"):
        little = rows[f"{prefix}requests_per_s"] * rows[f"{prefix}e2e_s"] / rows["concurrency"]
        assert (little - 1).abs().max() < 1e-12
        # the requests' mean end to end: each kind's first token, then its osl - 1 tokens a TPOT apart
        kinds = [w * (rows[f"{prefix}ttft_s"] + (o - 1) * rows[f"{prefix}tpot_s"]) for _, o, w in MIX]
        assert (((kinds[0] + kinds[1]) - rows[f"{prefix}e2e_s"]) / rows[f"{prefix}e2e_s"]).abs().max() < 1e-12
        assert (rows[f"{prefix}ttft_max_s"] > rows[f"{prefix}ttft_s"]).all()


def test_disaggregated_ships_the_mixs_mean_kv_and_times_the_longest_prompts():
    spec = rooflax.parse_spec(model="toy-llama", hardware="h100-sxm", batch=[1], seq_len=[8])
    # 5 and 9 output tokens, half each: 7 a request; a decode instance serves 4 / (0.5 · (7 − 1)) = 4/3 requests/s
    traffic = Traffic(requests=((ISL, 5, 0.5), (4 * ISL, 9, 0.5)))
    rounds, prefill = _frames(spec, prefill_s=2.0, round_s=0.5, concurrency=4)
    fast = disaggregated(rounds, prefill, traffic, spec, gpus=5, kv_link_bytes_per_s=math.inf).row(0, named=True)
    _close(fast["balance"], (4 / 3) / (1 / 2))
    slow = disaggregated(rounds, prefill, traffic, spec, gpus=5, kv_link_bytes_per_s=1e6).row(0, named=True)
    m = rooflax.get_model("toy-llama")
    token = 2 * 2 * m.kv_heads * m.head_dim * m.layers
    _close(slow["ttft_s"] - fast["ttft_s"], token * (0.5 * ISL + 0.5 * 4 * ISL) / 1e6)
    _close(slow["kv_transfer_s"], token * 2.5 * ISL / 1e6)
    _close(slow["ttft_max_s"] - fast["ttft_max_s"], token * 4 * ISL / 1e6)
    _close(slow["e2e_s"], slow["ttft_s"] + (7 - 1) * 0.5)


@pytest.mark.parametrize(
    ("requests", "fragments"),
    [
        ([(64, 16, 0.5), (256, 8, 0.4)], ("requests", "sum to 0.9")),
        ([(64, 16, 1.0), (256, 8, 0.0)], ("requests[1] share", "0.0")),
        ([(64, 16, 1.2), (256, 8, -0.2)], ("requests[0] share", "1.2")),
        ([(64, 1, 1.0)], ("requests[0] osl", "≥ 2", "got 1")),
        ([(0, 16, 1.0)], ("requests[0] isl", "0")),
        ([(64, 16)], ("requests[0]", "(isl, osl, share)")),
        ([], ("requests", "non-empty")),
    ],
)
def test_a_bad_mix_is_one_line(requests, fragments):
    one_line_error(lambda: serve(**CELL, batch=[1], requests=requests), *fragments)


def test_a_mix_or_fixed_lengths_not_both():
    one_line_error(lambda: serve(**CELL, batch=[1], isl=ISL, requests=MIX), "requests", "not both")
    one_line_error(lambda: serve(**CELL, batch=[1], osl=OSL), "isl", "isl and osl")
