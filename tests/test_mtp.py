"""Multi-token prediction as a drafter: the modules' parameters, their draft time and memory, the acceptance preset."""

from __future__ import annotations

import polars as pl
import pytest

import rooflax
from rooflax import Model
from rooflax.cli.commands import main

# A small latent-attention MoE with two prediction modules, fp16 on the A40 (149.7 TFLOP/s, 696 GB/s).
TOY = Model(
    name="toy-mtp",
    hidden=256,
    layers=2,
    heads=4,
    kv_heads=4,
    head_dim=48,
    intermediate=512,
    vocab=1000,
    experts=4,
    experts_per_token=2,
    moe_intermediate=128,
    q_lora_rank=64,
    kv_lora_rank=32,
    qk_nope_head_dim=32,
    qk_rope_head_dim=16,
    v_head_dim=24,
    mtp_layers=2,
)
PEAK, BANDWIDTH = 149.7e12, 696e9


def test_deepseek_v3_module_parameters():
    """One MoE layer of the main model's, the 2h → h projection and three norms; embedding and head shared."""
    model = rooflax.get_model("deepseek-v3")
    h = 7168
    layer = model.layer_parameters(model.layer_pattern[-1])
    assert layer == 11_507_286_272  # the MoE layer of test_mla's count
    assert model.mtp_params == layer + 2 * h * h + 3 * h == 11_610_068_224
    module = model.mtp_model()
    assert (module.layers, [k.name for k, _ in module.layer_kinds], module.mtp_layers) == (1, ["full/moe"], 0)
    assert module.params == layer + 2 * 129280 * h + h


def test_draft_time_is_k_module_steps_and_their_own_ops():
    df = rooflax.speculate(
        model=TOY, batch=[4], seq_len=[64], k=[0, 1, 2], mtp=True, acceptance={"kind": "geometric", "alpha": 0.5}
    )
    step = rooflax.evaluate(model=TOY.mtp_model(), phase="decode", batch=4, seq_len=64).totals()
    B, h = 4, 256
    eh_proj = max(2 * B * 2 * h * h / PEAK, (2 * 2 * h * h + 2 * B * 2 * h + 2 * B * h) / BANDWIDTH)
    norms = max(8 * B * h / PEAK, (4 * 2 * B * h + 2 * 2 * h) / BANDWIDTH)
    for k, time in zip(df["draft_k"], df["draft_time_s"], strict=True):
        assert time == pytest.approx(k * (step["time_s"] + eh_proj + norms), rel=1e-12)
    assert df["tokens_per_round"].to_list() == [1.0, 1.5, 1.75]
    # memory: the target's verify step and both modules' weights (not the vocabulary) and caches
    module = step["weight_bytes"] - 2 * (2 * 1000 * h + h) + 2 * (2 * h * h + 3 * h) + step["kv_cache_bytes"]
    verify = rooflax.sweep(model=TOY, phases=["verify"], batch=[4], seq_len=[64], spec_k=[3], summary=True)
    last = df.filter(draft_k=2)
    assert last["memory_bytes"][0] == pytest.approx(verify["memory_bytes"][0] + 2 * module, rel=1e-12)


def test_deepseek_v3_mtp_acceptance_preset():
    """DeepSeek-V3 report §5.4.3: the second token accepted 85-90% of the time; 1.85 tokens a round."""
    acceptance = rooflax.config.acceptance.parse_acceptance("deepseek-v3-mtp")
    assert acceptance.tokens_per_round([0, 1], [1, 2]).tolist() == [1.0, 1.85]
    with pytest.raises(rooflax.SpecError, match=r"the table covers K 0\.\.1, asked for K 2"):
        acceptance.tokens_per_round([2], [3])


def test_default_k_and_acceptance_follow_the_modules():
    from rooflax.answers.speculate import choices

    chosen = choices(model="deepseek-v3", hardware="h200", batch=[1], seq_len=[1024], mtp=True)
    assert chosen.k == (0, 1) and chosen.acceptance.points == ((0.0, 1.0), (1.0, 1.85))


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"model": "deepseek-v3", "k": [0, 2]}, "k: a round drafts 2 tokens but deepseek-v3 has 1 prediction module"),
        ({"model": "kimi-k2", "k": [1]}, "mtp: kimi-k2 has no multi-token prediction module"),
        ({"model": "deepseek-v3", "k": [1], "medusa_heads": 2}, "mtp: the model's prediction modules draft"),
    ],
)
def test_bad_mtp_drafts_are_one_line(keys, message):
    with pytest.raises(rooflax.SpecError, match=message) as info:
        rooflax.speculate(hardware="h200", batch=[1], seq_len=[1024], mtp=True, **keys)
    assert "\n" not in str(info.value)


def test_cli_speculate_with_mtp(tmp_path, capsys):
    out = tmp_path / "mtp.csv"
    argv = ["speculate", "--model", "deepseek-v3", "--hardware", "h200", "--dtype", "fp8", "--batch", "1"]
    assert main([*argv, "--seq-len", "4096", "--ep", "8", "--mtp", "-o", str(out), "--quiet"]) == 0
    frame = pl.read_csv(out)
    assert frame["draft_k"].to_list() == [0, 1] and frame["tokens_per_round"].to_list() == [1.0, 1.85]
    assert main([*argv, "--seq-len", "4096", "--mtp", "--k", "2"]) == 2
    assert "has 1 prediction module" in capsys.readouterr().err
