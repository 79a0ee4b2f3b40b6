"""validate's timings are fitted by rooflax calibrate's fit (fit_hardware), and its profile prices sweeps with it."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import polars as pl
import pytest

import rooflax
from rooflax.calibration.fit import split_by_shape
from rooflax.calibration.measurements import validation_measurements
from rooflax.calibration.predict import fitted_family, predict_measurements, work
from rooflax.validate.kernels import TIMED_OPS
from rooflax.validate.run import calibrate

#: A measured profile as validate builds one on the CPU (no tile or wave quantization).
PROFILE = rooflax.Hardware(
    name="dev-measured",
    label="dev (measured)",
    peak_flops={"fp32": 1e11},  # the ridge at 10 FLOP/byte: Toy Llama's products fall on both sides
    bandwidth_bytes_per_s=1e10,
    memory_bytes=1e12,
    sm_count=1,
    tile_m=1,
    tile_n=1,
    tile_k=1,
    source="a test",
)
GEMM = {"kernel_overhead_s": 4e-6, "compute_efficiency": 0.7, "bandwidth_efficiency": 0.6}
PREFILL = {"kernel_overhead_s": 1e-5, "compute_efficiency": 0.4, "bandwidth_efficiency": 0.8}
DECODE = {"kernel_overhead_s": 2e-5, "compute_efficiency": 0.9, "bandwidth_efficiency": 0.5}
TRUTH = replace(
    PROFILE,
    group_terms=dict.fromkeys(("qkv mlp", "up/gate/down", "lm_head"), GEMM),
    phase_terms={"prefill": {"qk/pv": PREFILL}, "verify": {"qk/pv": PREFILL}, "decode": {"qk/pv": DECODE}},
)
POINTS = [("decode", b, s) for b in (1, 8, 64, 512) for s in (256, 2048, 8192)] + [
    ("prefill", b, s) for b in (1, 4) for s in (64, 256, 1024, 4096)
]


def _validation(truth: rooflax.Hardware, noise: float = 0.0, seed: int = 0) -> pl.DataFrame:
    """A validate frame of Toy Llama's timed ops whose times are ``truth``'s achieved times (times lognormal noise)."""
    rng = np.random.default_rng(seed)
    rows = []
    for phase, batch, seq_len in POINTS:
        ops = rooflax.evaluate(
            model="toy-llama", hardware=truth, dtype="fp32", phase=phase, batch=batch, seq_len=seq_len
        )
        for op in TIMED_OPS:
            time = float(ops.ops[op].achieved_time_s) * float(rng.lognormal(0.0, noise) if noise else 1.0)
            point = {"phase": phase, "batch": batch, "seq_len": seq_len, "spec_k": None}
            rows.append(
                {"device": "cpu", "hardware": None, "dtype": "fp32", "model": "toy-llama", **point}
                | {"op": op, "measured_time_s": time}
                | {key: float(getattr(ops.ops[op], key)) for key in ("flops", "bytes")}
                | {"spent_flops": float(ops.ops[op].flops)}  # 1×1×1 tiles: no quantization
            )
    return pl.DataFrame(rows, schema_overrides={"hardware": pl.String, "spec_k": pl.Int64})


def test_validate_ops_fit_the_families_whose_terms_price_them():
    rows = validation_measurements(_validation(TRUTH), PROFILE.name)
    family = rows.with_columns(fitted_family(rows)).group_by("kind", "phase").agg(pl.col("family").first())
    got = {(k, p): f for k, p, f in family.iter_rows()}
    assert got[("qkv_proj", "decode")] == got[("down_proj", "prefill")] == "gemm"
    assert got[("qk", "decode")] == got[("pv", "decode")] == "attention_decode"
    assert got[("qk", "prefill")] == "attention_prefill"
    # work() of a validate op is what the achieved model multiplies: the profile's own times back
    one = rows.filter(kind="o_proj", phase="prefill")
    w = work("o_proj", one, TRUTH, "fp32")
    assert w is not None
    u, v = 1 / GEMM["compute_efficiency"], 1 / GEMM["bandwidth_efficiency"]
    expected = GEMM["kernel_overhead_s"] + np.maximum(u * w["compute_s"], v * w["memory_s"])[:, 0]
    np.testing.assert_allclose(expected, one["measured_time_s"].to_numpy(), rtol=1e-12)


def test_the_fit_recovers_the_terms_that_made_a_validate_frame():
    fitted = calibrate(_validation(TRUTH), PROFILE)
    for key, value in GEMM.items():
        for group in ("qkv mlp", "up/gate/down", "lm_head"):
            assert fitted.terms(group)[key] == pytest.approx(value, rel=2e-3), (group, key)
    # prefill attention is compute-bound here, decode attention memory-bound: the slopes the shapes show
    for phase, truth, keys in (
        ("prefill", PREFILL, ("kernel_overhead_s", "compute_efficiency")),
        ("decode", DECODE, ("kernel_overhead_s", "bandwidth_efficiency")),
    ):
        for key in keys:
            assert fitted.terms("qk/pv", phase)[key] == pytest.approx(truth[key], rel=2e-3), (phase, key)
    assert fitted.terms("qk/pv", "verify") == fitted.terms("qk/pv", "prefill")
    # the measured ceilings stay, the label and source say what was fitted, and the band is a point (no noise)
    assert (fitted.peak_flops, fitted.bandwidth_bytes_per_s) == (PROFILE.peak_flops, PROFILE.bandwidth_bytes_per_s)
    assert (
        fitted.label == "dev (measured, calibrated)" and f"fit_hardware to {len(POINTS) * 7} timed ops" in fitted.source
    )
    assert fitted.terms("qkv mlp")["band_low"] == pytest.approx(1, rel=1e-4)  # the ratio grid's resolution
    assert fitted.l2_resident_bytes == 0  # validate rotates its operands: no L2 term


def test_the_fitted_profile_prices_a_sweep_with_the_fits_times(tmp_path):
    frame = _validation(TRUTH, noise=0.05, seed=3)
    fitted = calibrate(frame, PROFILE)
    path = tmp_path / "profile.toml"
    path.write_text(rooflax.config.hardware.hardware_to_toml(fitted))
    swept = rooflax.sweep(
        model="toy-llama", hardware=str(path), dtype="fp32", phases=["decode"], batch=[8], seq_len=[2048]
    )
    priced = predict_measurements(validation_measurements(frame, fitted.name), rooflax.load_hardware(path))
    one = priced.filter(kind="qkv_proj", phase="decode", batch=8, seq_len=2048)
    assert swept.filter(op="qkv_proj")["achieved_time_s"].item() == pytest.approx(one["predicted_time_s"].item(), 1e-12)


def test_a_fit_on_half_the_shapes_predicts_the_other_half_through_the_noise():
    rows = validation_measurements(_validation(TRUTH, noise=0.1, seed=1), PROFILE.name)
    train, test = split_by_shape(rows, seed=2)
    fitted = rooflax.calibration.fit.fit_hardware(train, PROFILE)

    def median_error(hardware: rooflax.Hardware) -> float:
        return float(predict_measurements(test, hardware)["error"].abs().median())

    assert median_error(fitted) < 0.12 < median_error(PROFILE)


def test_ceilings_the_timed_ops_beat_are_raised_to_their_fastest_rate():
    frame = _validation(TRUTH)
    fastest = float((frame["bytes"] / frame["measured_time_s"]).max())
    slow_copy = replace(PROFILE, bandwidth_bytes_per_s=fastest / 3)  # a copy kernel three times slower than the ops
    fitted = calibrate(frame, slow_copy)
    assert fitted.bandwidth_bytes_per_s == fastest and fitted.peak_flops == PROFILE.peak_flops
    assert all(0 < fitted.terms(g)["bandwidth_efficiency"] <= 1 for g in ("qkv mlp", "qk/pv"))


def test_too_few_timed_ops_is_one_line():
    few = _validation(TRUTH).head(5)
    with pytest.raises(rooflax.SpecError, match=r"^measurements: no products.*needs 8 measured shapes; kinds: "):
        calibrate(few, PROFILE)
