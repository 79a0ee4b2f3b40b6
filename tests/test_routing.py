"""Routing skew in mixtures of experts: ``routing_experts`` (E_eff) in place of uniform routing (issue 10)."""

from __future__ import annotations

import dataclasses

import polars as pl
import pytest
from one_line import one_line_error

import rooflax
from rooflax.cost.ops import make_step
from rooflax.cost.shape import Shape

MIXTRAL = rooflax.get_model("mixtral-8x7b")  # E = 8, k = 2, h = 4096, expert width 14336, L = 32
H, I = 4096, 14336
GRID = {
    "hardware": "h100-sxm",
    "phases": ["prefill", "decode"],
    "batch": [1, 2, 3, 16, 64],
    "seq_len": [128, 1024],
    "tp": [1, 2],
    "ep": [1, 2, 4],
}


def _skewed(spread: float) -> rooflax.Model:
    return dataclasses.replace(MIXTRAL, name=f"mixtral-skew-{spread}", routing_experts=spread)


def _touched(model: rooflax.Model, batch: int, ep: int = 1) -> float:
    return make_step(
        Shape.of(model, rooflax.get_dtype("fp16"), phase="decode", batch=batch, seq_len=256, ep=ep)
    ).touched


@pytest.mark.slow
def test_default_is_uniform_routing_bit_for_bit():
    assert MIXTRAL.routing_experts == 8 and "routing_experts" not in MIXTRAL.to_dict()
    frame = rooflax.sweep(model="mixtral-8x7b", **GRID)
    # the uniform rule as issue 10 states it, in Python floats: (E/ep)·(1 − (1 − k/E)^T), T = B·Q
    rows = frame.filter(pl.col("op") == "expert_gate").select("phase", "batch", "seq_len", "tp", "ep", "bytes")
    assert rows.height == 5 * 2 * 2 * 3 * 2
    for phase, batch, seq_len, tp, ep, got in rows.iter_rows():
        tokens = batch * (seq_len if phase == "prefill" else 1)
        touched = (8 // ep) * (1 - (1 - 2 / 8) ** tokens)
        routed = tokens * 2 / ep
        assert got == 2 * touched * H * (I // tp) + 2 * routed * (H + I // tp), (phase, batch, seq_len, tp, ep)
    # an explicit routing_experts = experts (as a float) gives the same frame, bit for bit
    explicit = dataclasses.replace(MIXTRAL, routing_experts=8.0)
    assert explicit == MIXTRAL
    again = rooflax.sweep(model=[dataclasses.replace(MIXTRAL, name="mixtral-explicit", routing_experts=8.0)], **GRID)
    assert again.drop("model").equals(frame.drop("model"))


@pytest.mark.slow
def test_skewed_touched_and_weight_bytes_by_hand(tmp_path):
    four = _skewed(4)
    # T = 1: one token reads its k = 2 experts, skewed or not
    assert _touched(four, 1) == 2
    # T = 64: 4·(1 − (1 − 2/4)^64) = 4 − 2^-62, which is 4 in double precision (uniform: 8·(1 − 0.75^64) ≈ 8)
    assert _touched(four, 64) == 4
    assert _touched(MIXTRAL, 64) == pytest.approx(8 * (1 - 0.75**64), rel=1e-15) and _touched(MIXTRAL, 64) > 7.99
    # ep = 2, T = 4: each device holds half the hot experts, 2·(1 − 0.5^4) = 1.875
    assert _touched(four, 4, ep=2) == 1.875
    # a fractional E_eff, 5.5 at T = 2: 5.5·(1 − (3.5/5.5)^2) = 36/11
    assert _touched(_skewed(5.5), 2) == pytest.approx(36 / 11, rel=1e-15)
    # through a TOML model file and the engine: decode, B = 64, expert_up reads 4 experts' weights
    path = tmp_path / "skewed.toml"
    path.write_text(
        'name = "mixtral-skewed"\nhidden = 4096\nlayers = 32\nheads = 32\nkv_heads = 8\n'
        "intermediate = 14336\nvocab = 32000\nexperts = 8\nexperts_per_token = 2\nrouting_experts = 4\n"
    )
    frame = rooflax.sweep(model=[str(path)], hardware="h100-sxm", phases=["decode"], batch=[1, 64], seq_len=[256])
    up = dict(frame.filter(pl.col("op") == "expert_up").select("batch", "bytes").iter_rows())
    assert up[64] == 474_480_640  # 2·4·4096·14336 weights + 2·128·(4096 + 14336) activations (R = 128)
    assert up[1] == 234_954_752  # 2·2·4096·14336 + 2·2·18432
    # ep = 2, T = 4: 2·1.875·4096·14336 + 2·4·18432 (R = 4·2/2 pairs a device)
    ops = rooflax.evaluate(model=four, phase="decode", batch=4, seq_len=256, ep=2).ops
    assert ops["expert_down"].bytes == 220_348_416


def test_memory_counts_every_expert():
    for ep in (1, 2):
        skewed = rooflax.evaluate(model=_skewed(2), phase="decode", batch=64, seq_len=256, ep=ep)
        uniform = rooflax.evaluate(model=MIXTRAL, phase="decode", batch=64, seq_len=256, ep=ep)
        assert skewed.weight_bytes == uniform.weight_bytes
    assert skewed.weight_bytes == 2 * (MIXTRAL.params - 32 * 4 * 3 * H * I)  # ep = 2 holds 4 of 8 experts


def test_fewer_effective_experts_read_fewer_weight_bytes():
    spreads = (2, 2.5, 3, 4, 5.5, 7, 8)
    for tokens in (2, 3, 16, 64, 512):
        read = [
            rooflax.evaluate(model=_skewed(e), phase="decode", batch=tokens, seq_len=128).ops["expert_gate"].bytes
            for e in spreads
        ]
        assert read == sorted(set(read)), tokens  # strictly increasing with E_eff
    one = {
        rooflax.evaluate(model=_skewed(e), phase="decode", batch=1, seq_len=128).ops["expert_gate"].bytes
        for e in spreads
    }
    assert len(one) == 1  # one token reads k experts whatever the skew


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (1.5, "routing_experts is 1.5; expected experts_per_token (2) to experts (8)"),
        (9, "routing_experts is 9; expected experts_per_token (2) to experts (8)"),
        (0, "routing_experts: expected a positive finite number, got 0"),
        (-4, "routing_experts: expected a positive finite number, got -4"),
        (float("inf"), "routing_experts: expected a positive finite number, got inf"),
        (True, "routing_experts: expected a positive finite number, got True"),
        ("4", "routing_experts: expected a positive finite number, got '4'"),
    ],
)
def test_bad_routing_experts(value, fragment):
    one_line_error(lambda: dataclasses.replace(MIXTRAL, routing_experts=value), "model 'mixtral-8x7b'", fragment)


def test_routing_experts_on_a_dense_model(tmp_path):
    one_line_error(
        lambda: dataclasses.replace(rooflax.get_model("llama-7b"), routing_experts=4),
        "routing_experts is 4 but experts is 0",
    )
    path = tmp_path / "dense.toml"
    path.write_text(
        'name = "d"\nhidden = 256\nlayers = 2\nheads = 4\nintermediate = 768\nvocab = 1024\nrouting_experts = 4\n'
    )
    one_line_error(lambda: rooflax.get_model(str(path)), "dense.toml", "routing_experts is 4 but experts is 0")


def test_skew_is_in_the_spec_and_round_trips(tmp_path):
    skewed = _skewed(5.5)
    assert skewed.to_dict()["routing_experts"] == 5.5
    spec = rooflax.parse_spec(model=[skewed, MIXTRAL], batch=[1], seq_len=[128])
    assert rooflax.SweepSpec.from_dict(spec.to_dict()) == spec
    # a skewed file under a preset's name is refused, naming the difference
    renamed = dataclasses.replace(skewed, name="mixtral-8x7b")
    one_line_error(
        lambda: rooflax.parse_spec(model=[renamed], batch=[1], seq_len=[128]), "differs from it in routing_experts"
    )
