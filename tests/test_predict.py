"""predict_measurements, fit_hardware and the calibrated presets (issue 19)."""

from __future__ import annotations

import tomllib
from dataclasses import replace

import numpy as np
import polars as pl
import pytest

import rooflax
from rooflax.calibration.fit import accuracy, fit_hardware, split_by_shape
from rooflax.calibration.measurements import MEASUREMENT_SCHEMA, read_measurements
from rooflax.calibration.predict import power_law_load, predict_measurements
from rooflax.calibration.presets import CALIBRATED_TOML, SUBSET, calibrated_toml
from rooflax.config.hardware import ARCHITECTURE, FITTED, hardware_to_toml, load_hardware, uncalibrated_preset
from rooflax.errors import SpecError


def _measured(rows: list[dict]) -> pl.DataFrame:
    """Measured rows in the reader's schema (absent columns null)."""
    return pl.DataFrame(
        [{**{c: None for c in MEASUREMENT_SCHEMA}, "repeats": 1, **row} for row in rows], schema=MEASUREMENT_SCHEMA
    )


def _op(df: pl.DataFrame, name: str) -> dict:
    return df.filter(op=name).row(0, named=True)


@pytest.mark.parametrize("hardware", ["a40", "h100-sxm"])
def test_a_measured_product_and_the_same_swept_product_get_one_time(hardware):
    """Decode o_proj of Llama-13B at batch 8 is [8, 5120] x [5120, 5120]: a measured GEMM of that shape."""
    swept = _op(rooflax.sweep(hardware=hardware, phases=["decode"], batch=[8], seq_len=[1024]), "o_proj")
    measured = _measured(
        [{"hardware": hardware, "kind": "gemm", "dtype": "fp16", "m": 8, "n": 5120, "k": 5120, "measured_time_s": 1e-5}]
    )
    row = predict_measurements(measured, replayed=False).row(0, named=True)
    assert (row["flops"], row["bytes"]) == (swept["flops"], swept["bytes"])
    assert row["predicted_time_s"] == pytest.approx(swept["achieved_time_s"], rel=1e-12)
    assert row["ideal_time_s"] == pytest.approx(swept["time_s"], rel=1e-12)
    assert row["error"] == pytest.approx(swept["achieved_time_s"] / 1e-5 - 1, rel=1e-12)


@pytest.mark.parametrize(
    ("kind", "phase", "seq_len"), [("attention_decode", "decode", 1024), ("attention_prefill", "prefill", 512)]
)
def test_measured_attention_is_the_swept_fused_attention(kind, phase, seq_len):
    swept = _op(
        rooflax.sweep(
            hardware="h100-sxm",
            phases=[phase],
            batch=[4],
            seq_len=[seq_len],
            fused_attention=True,
            causal=phase == "prefill",
        ),
        "attention",
    )
    measured = _measured(
        [
            {
                "hardware": "h100-sxm",
                "kind": kind,
                "dtype": "fp16",
                "kv_dtype": "fp16",
                "batch": 4,
                "seq_len": seq_len,
                "heads": 40,
                "kv_heads": 40,
                "head_dim": 128,
                "window": 0,
                "measured_time_s": 1e-4,
            }
        ]
    )
    row = predict_measurements(measured).row(0, named=True)
    assert (row["flops"], row["bytes"], row["family"]) == (swept["flops"], swept["bytes"], kind)
    assert row["predicted_time_s"] == pytest.approx(swept["achieved_time_s"], rel=1e-12)


@pytest.mark.parametrize("tokens", [1, 64, 4096])
def test_a_measured_moe_layer_is_the_swept_routed_experts(tokens):
    """Qwen3-30B-A3B's experts (h 2048, I 768, 128 experts, top 8) on one GPU, balanced routing: the measured
    fused MoE layer is the sweep's four expert ops at the same tokens, each priced with the fitted ``moe`` terms."""
    swept = rooflax.sweep(model="qwen3-30b-a3b", hardware="h100-sxm", phases=["prefill"], batch=[1], seq_len=[tokens])
    experts = swept.filter(pl.col("op").cast(pl.String).str.starts_with("expert_"))
    assert experts.height == 4
    measured = _measured(
        [
            {
                "hardware": "h100-sxm",
                "kind": "moe",
                "dtype": "bf16",
                "tokens": tokens,
                "hidden": 2048,
                "intermediate": 768,
                "topk": 8,
                "experts": 128,
                "moe_tp": 1,
                "moe_ep": 1,
                "distribution": "balanced",
                "measured_time_s": 1e-4,
            }
        ]
    )
    row = predict_measurements(measured, replayed=False).row(0, named=True)
    assert row["family"] == "moe"
    assert row["flops"] == pytest.approx(experts["flops"].sum(), rel=1e-12)
    assert row["bytes"] == pytest.approx(experts["bytes"].sum(), rel=1e-12)
    assert row["predicted_time_s"] == pytest.approx(experts["achieved_time_s"].sum(), rel=1e-12)
    # the moe terms are the profile's own, not the dense products' (a fitted preset has both)
    h100 = rooflax.get_hardware("h100-sxm")
    assert h100.terms("moe")["kernel_overhead_s"] != h100.terms("up/gate/down")["kernel_overhead_s"]
    assert uncalibrated_preset("h100-sxm").terms("moe") == uncalibrated_preset("h100-sxm").terms("up/gate/down")


def test_a_measured_all_reduce_is_the_swept_one():
    """tp = 2 decode at batch 4: attn_allreduce sums a 4 x 5120 fp16 message."""
    swept = _op(
        rooflax.sweep(hardware="h100-sxm", phases=["decode"], batch=[4], seq_len=[1024], tp=[2]), "attn_allreduce"
    )
    measured = _measured(
        [
            {
                "hardware": "h100-sxm",
                "kind": "all_reduce",
                "dtype": "fp16",
                "gpus": 2,
                "message_bytes": 2 * 4 * 5120,
                "measured_time_s": 1e-5,
            }
        ]
    )
    row = predict_measurements(measured).row(0, named=True)
    assert row["bytes"] == swept["bytes"] == 2 * (2 - 1) * 2 * 4 * 5120 / 2
    assert row["predicted_time_s"] == pytest.approx(swept["achieved_time_s"], rel=1e-12)
    assert row["ideal_time_s"] == pytest.approx(swept["time_s"], rel=1e-12)


def test_a_pcie_all_reduce_slows_with_the_gpu_count_at_its_link_scaling():
    """L40S (PCIe, fitted γ > 0), 8 GPUs, 2**28 bytes: the ring's 2·7/8 of it over the link, (8/2)^γ slower."""
    l40s = rooflax.get_hardware("l40s")
    comm = l40s.terms("comm")
    assert comm["link_scaling"] > 1
    message = 2**28
    measured = _measured(
        [
            {"hardware": "l40s", "kind": "all_reduce", "dtype": "fp16", "gpus": 8, "message_bytes": message}
            | {"measured_time_s": 1e-2}
        ]
    )
    link = l40s.interconnect_bytes_per_s * comm["bandwidth_efficiency"]
    expected = (
        comm["kernel_overhead_s"]
        + 2 * 7 / 8 * message / link * 4 ** comm["link_scaling"]
        + 2 * 7 * l40s.interconnect_latency_s
    )
    assert predict_measurements(measured)["predicted_time_s"][0] == pytest.approx(expected, rel=1e-12)


def test_unpriced_rows_stay_null_and_keep_their_order():
    measured = _measured(
        [
            {
                "hardware": "h100-sxm",
                "kind": "gemm",
                "dtype": "nvfp4",
                "m": 1,
                "n": 64,
                "k": 64,
                "measured_time_s": 1e-6,
            },
            {
                "hardware": "h100-sxm",
                "kind": "attention_decode",
                "dtype": "bf16",
                "kv_dtype": "bf16",
                "batch": 1,
                "seq_len": 100,
                "heads": 8,
                "kv_heads": 8,
                "head_dim": 128,
                "window": 64,
                "measured_time_s": 1e-5,
            },
            {
                "hardware": "h100-sxm",
                "kind": "gemm",
                "dtype": "bf16",
                "m": 1,
                "n": 64,
                "k": 64,
                "measured_time_s": 2e-6,
            },
        ]
    )
    out = predict_measurements(measured)
    assert out.get_column("predicted_time_s").is_null().to_list() == [True, True, False]
    assert out.get_column("measured_time_s").to_list() == [1e-6, 1e-5, 2e-6]
    assert out.get_column("flops").to_list()[2] == 2 * 64 * 64


def test_power_law_load_is_the_heaviest_rank_of_the_generator():
    # one rank: every pair, and every expert touched once each holds a load of at least 1
    assert power_law_load(4096, 8, 2, 1, 1.2) == (8192.0, 8.0)
    # two experts on two ranks, T·k large (rounding negligible): the expected larger share of two
    # independent draws of x^-α on [1, 0.8T], here by quadrature of the joint density (no sampling)
    tokens, alpha = 4096, 1.2
    x = np.geomspace(1, 0.8 * tokens, 4001)
    density = x**-alpha
    weight = density * np.gradient(x)
    weight /= weight.sum()
    share = np.maximum.outer(x, x) / np.add.outer(x, x)
    expected = 2 * tokens * float(weight @ share @ weight)
    routed, touched = power_law_load(tokens, 2, 2, 2, alpha)
    assert touched == 1.0
    assert routed == pytest.approx(expected, rel=0.05)  # 64 draws of a heavy tail: a few percent
    assert 0.5 * 2 * tokens < routed < 2 * tokens  # the heavier rank: above the even split


def _synthetic(profile: rooflax.Hardware, noise: float = 0.0) -> pl.DataFrame:
    """Products, attention and collectives timed by ``profile``'s own achieved model (times noise)."""
    rng = np.random.default_rng(1)
    rows = [
        {"kind": "gemm", "m": m, "n": n, "k": k} for m in (1, 16, 256, 4096) for n in (1024, 8192) for k in (1024, 8192)
    ]
    rows += [
        {
            "kind": kind,
            "kv_dtype": "bf16",
            "batch": b,
            "seq_len": s,
            "heads": 32,
            "kv_heads": 8,
            "head_dim": 128,
            "window": 0,
        }
        for kind in ("attention_prefill", "attention_decode")
        for b in (1, 8, 64)
        for s in (128, 1024, 8192)
    ]
    rows += [
        {"kind": kind, "dtype": "fp16", "gpus": g, "message_bytes": m}
        for kind in ("all_reduce", "alltoall")
        for g in (2, 4, 8)
        for m in (2**12, 2**20, 2**28)
    ]
    frame = _measured([{"hardware": "h100-sxm", "dtype": "bf16", "measured_time_s": 1.0, **row} for row in rows])
    times = predict_measurements(frame, profile)["predicted_time_s"].to_numpy()
    return frame.with_columns(measured_time_s=pl.Series(times * (1 + noise * rng.standard_normal(len(times)))))


def test_a_fit_recovers_the_terms_that_made_the_times():
    base = uncalibrated_preset("h100-sxm")
    truth = replace(
        base,
        interconnect_latency_s=1.2e-6,
        group_terms={
            group: {"kernel_overhead_s": 3e-6, "compute_efficiency": 0.7, "bandwidth_efficiency": 0.6, "corner": 0.2}
            for group in ("qkv mlp", "up/gate/down", "lm_head")
        }
        | {"comm": {"kernel_overhead_s": 8e-6, "bandwidth_efficiency": 0.5, "link_scaling": 1.5}},
        phase_terms={
            "prefill": {
                "qk/pv": {
                    "kernel_overhead_s": 1e-5,
                    "compute_efficiency": 0.5,
                    "bandwidth_efficiency": 0.9,
                    "corner": 0.8,
                }
            },
            "decode": {"qk/pv": {"kernel_overhead_s": 2e-5, "compute_efficiency": 0.8, "bandwidth_efficiency": 0.7}},
        },
    )
    fitted = fit_hardware(_synthetic(truth), base)
    for group in ("qkv mlp", "comm"):
        for key, value in dict(dict(truth.group_terms)[group]).items():
            assert dict(dict(fitted.group_terms)[group])[key] == pytest.approx(value, rel=2e-3), (group, key)
    assert dict(dict(dict(fitted.phase_terms)["prefill"])["qk/pv"])["compute_efficiency"] == pytest.approx(0.5, 1e-2)
    assert dict(dict(dict(fitted.phase_terms)["decode"])["qk/pv"])["bandwidth_efficiency"] == pytest.approx(0.7, 1e-2)
    assert dict(dict(dict(fitted.phase_terms)["prefill"])["qk/pv"])["corner"] == pytest.approx(0.8, abs=2e-2)
    assert dict(dict(dict(fitted.phase_terms)["decode"])["qk/pv"])["corner"] == pytest.approx(0.0, abs=2e-2)
    assert fitted.interconnect_latency_s == pytest.approx(1.2e-6, rel=2e-3)
    # verify runs the prefill kind of kernel
    assert dict(fitted.phase_terms)["verify"] == dict(fitted.phase_terms)["prefill"]
    # the datasheet ceilings stay
    assert (fitted.peak_flops, fitted.bandwidth_bytes_per_s) == (base.peak_flops, base.bandwidth_bytes_per_s)


def test_a_fit_on_noisy_times_scores_near_the_noise():
    base = uncalibrated_preset("h100-sxm")
    terms = {"kernel_overhead_s": 2e-6, "compute_efficiency": 0.5, "bandwidth_efficiency": 0.5}
    truth = replace(base, group_terms=dict.fromkeys(("qkv mlp", "up/gate/down", "lm_head"), terms))
    measured = _synthetic(truth, noise=0.05)
    score = accuracy(measured.filter(kind="gemm"), fit_hardware(measured, base)).row(0, named=True)
    assert score["n"] == 16
    assert score["predicted_median"] < 0.06 < accuracy(measured.filter(kind="gemm"), base)["predicted_median"][0]


def test_efficiencies_never_pass_one_even_when_kernels_beat_the_datasheet():
    base = uncalibrated_preset("h100-sxm")
    fast = _synthetic(base).with_columns(pl.col("measured_time_s") / 3)
    fitted = fit_hardware(fast, base)
    for _, terms in fitted.group_terms:
        assert all(value <= 1 for key, value in terms if key.endswith("efficiency"))


def test_split_by_shape_keeps_every_kernel_of_a_shape_on_one_side():
    frame = _measured(
        [
            {
                "hardware": "h100-sxm",
                "kind": "gemm",
                "dtype": "bf16",
                "kernel": kernel,
                "m": m,
                "n": 64,
                "k": 64,
                "measured_time_s": 1e-6,
            }
            for m in range(1, 201)
            for kernel in ("a", "b")
        ]
    )
    train, test = split_by_shape(frame)
    assert set(train["m"]).isdisjoint(set(test["m"]))
    assert 60 < test.height / 2 < 140
    again_train, _ = split_by_shape(frame)
    assert again_train.equals(train)
    assert not split_by_shape(frame, seed=1)[0].equals(train)
    with pytest.raises(SpecError, match="held_out"):
        split_by_shape(frame, held_out=1.5)


def test_phase_terms_replace_group_terms_in_their_phase_and_round_trip_through_toml(tmp_path):
    hw = replace(
        uncalibrated_preset("a40"),
        name="mine",
        group_terms={"qk/pv": {"kernel_overhead_s": 1e-5}},
        phase_terms={"decode": {"qk/pv": {"bandwidth_efficiency": 0.5}}},
    )
    terms = hw.terms("qk/pv", "decode")
    assert np.isnan(terms.pop("band_low")) and np.isnan(terms.pop("band_high"))  # no band fitted
    assert all(np.isnan(terms.pop(key)) for key in rooflax.config.hardware.RANGE_TERMS)  # nor a range
    assert terms == {
        "kernel_overhead_s": 1e-5,
        "compute_efficiency": 0.8,
        "bandwidth_efficiency": 0.5,
        "l2_speedup": 1.0,
        "corner": 0.0,
        "link_scaling": 0.0,
    }
    assert hw.terms("qk/pv", "prefill")["bandwidth_efficiency"] == 0.85
    path = tmp_path / "mine.toml"
    path.write_text(hardware_to_toml(hw))
    assert load_hardware(path) == hw
    with pytest.raises(SpecError, match=r"phase_terms: unknown phase 'decod'.*decode"):
        replace(hw, phase_terms={"decod": {}})


def test_the_shipped_presets_are_the_fit_on_the_shipped_measurements():
    shipped, refit = tomllib.loads(CALIBRATED_TOML.read_text()), tomllib.loads(calibrated_toml())
    assert set(shipped) == set(refit) == set(FITTED)

    def flat(table, prefix=""):
        for key, value in table.items():
            yield from flat(value, f"{prefix}{key}.") if isinstance(value, dict) else [(prefix + key, value)]

    a, b = dict(flat(shipped)), dict(flat(refit))
    assert a.keys() == b.keys()
    for key in a:
        assert a[key] == pytest.approx(b[key], rel=1e-9), key


def test_presets_take_their_architectures_terms():
    for name, (fitted, same_link) in ARCHITECTURE.items():
        hw, source = rooflax.get_hardware(name), rooflax.get_hardware(fitted)
        assert hw.terms("qkv mlp") == source.terms("qkv mlp"), name
        assert hw.terms("qk/pv", "decode") == source.terms("qk/pv", "decode"), name
        assert (hw.terms("comm") == source.terms("comm")) == same_link, name
        assert fitted in hw.source and "aiconfigurator" in hw.source
    assert rooflax.get_hardware("mi300x").group_terms == ()
    assert "defaults" in rooflax.get_hardware("mi300x").source


def test_the_calibrated_presets_beat_the_defaults_on_held_out_shipped_shapes():
    measured = read_measurements(SUBSET)
    train, test = split_by_shape(measured, seed=7)
    for name, folder in FITTED.items():
        rows = train.filter(hardware=name)
        fitted = fit_hardware(rows, uncalibrated_preset(name))
        held = test.filter(hardware=name, kind="gemm")
        assert (
            accuracy(held, fitted)["predicted_median"][0]
            <= accuracy(held, uncalibrated_preset(name))["predicted_median"][0]
        ), folder


def test_replayed_operands_that_fit_in_l2_read_faster_than_a_forward_pass():
    """L40S: products of at most its fitted L2-resident bytes read at its l2_speedup when replayed."""
    l40s = rooflax.get_hardware("l40s")
    assert l40s.l2_resident_bytes > 0 and l40s.terms("qkv mlp")["l2_speedup"] > 1
    small = 2 * (1 * 1024 + 1024 * 1024 + 1 * 1024)  # bytes of [1, 1024] x [1024, 1024]
    assert small <= l40s.l2_resident_bytes
    big = {"m": 1, "n": 16384, "k": 16384}  # 512 MiB of weights: never resident
    measured = _measured(
        [
            {
                "hardware": "l40s",
                "kind": "gemm",
                "dtype": "bf16",
                "m": 1,
                "n": 1024,
                "k": 1024,
                "measured_time_s": 1e-5,
            },
            {"hardware": "l40s", "kind": "gemm", "dtype": "bf16", "measured_time_s": 1e-4, **big},
        ]
    )
    replayed, cold = predict_measurements(measured), predict_measurements(measured, replayed=False)
    terms = l40s.terms("qkv mlp")
    memory = small / (l40s.bandwidth_bytes_per_s * terms["bandwidth_efficiency"])
    # 8 tiles of 16x128 split 17 ways over K (142 SMs): one wave of 142 units of 2 K steps of 32
    compute = 142 * 2 * 16 * 128 * 64 / (l40s.peak("bf16") * terms["compute_efficiency"])
    assert compute < memory / terms["l2_speedup"]  # memory-bound either way: the corner adds a share of compute

    def achieved(memory_s: float) -> float:
        return terms["kernel_overhead_s"] + memory_s + terms["corner"] * compute

    assert cold["predicted_time_s"][0] == pytest.approx(achieved(memory), rel=1e-9)
    assert replayed["predicted_time_s"][0] == pytest.approx(achieved(memory / terms["l2_speedup"]), rel=1e-9)
    assert replayed["predicted_time_s"][1] == cold["predicted_time_s"][1]


def test_bands_cover_four_in_five_of_held_out_times_with_known_noise():
    """Times from known terms with 20% lognormal noise: a fit's p10-p90 band holds about 80% of new shapes."""
    base = uncalibrated_preset("h100-sxm")
    measured = _synthetic(base).filter(kind="gemm")
    rng = np.random.default_rng(5)
    rows = pl.concat([measured] * 25).with_columns(m=pl.Series(rng.integers(1, 8192, 25 * measured.height)))
    rows = rows.unique(subset=["m", "n", "k"], maintain_order=True)  # in order, so each row gets the same noise
    times = predict_measurements(rows, base)["predicted_time_s"].to_numpy()
    rows = rows.with_columns(measured_time_s=pl.Series(times * np.exp(0.2 * rng.standard_normal(rows.height))))
    train, test = split_by_shape(rows)
    fitted = fit_hardware(train, base)
    low, high = (dict(dict(fitted.group_terms)["qkv mlp"])[key] for key in ("band_low", "band_high"))
    assert low == pytest.approx(np.exp(0.2 * -1.2816), rel=0.15) and high == pytest.approx(np.exp(0.2 * 1.2816), 0.15)
    coverage = accuracy(test, fitted)["band_coverage"][0]
    assert 0.72 < coverage < 0.88


def test_summary_bands_sum_every_op_at_its_groups_band():
    a40 = rooflax.get_hardware("a40")
    keys = dict(phases=["decode"], batch=[8], seq_len=[1024])
    ops, total = rooflax.sweep(**keys), rooflax.sweep(summary=True, **keys).row(0, named=True)
    factor = {group: a40.terms(group, "decode") for group in rooflax.GROUPS}
    low = high = 0.0
    for row in ops.iter_rows(named=True):
        times = 1 if row["op"] == "lm_head" else 40  # Llama-13B: 40 layers, the LM head once
        t = factor[row["group"]]
        measured = not np.isnan(t["band_low"])  # elementwise ops: no measurements, their own time at both ends
        low += times * row["achieved_time_s"] * (t["band_low"] if measured else 1)
        high += times * row["achieved_time_s"] * (t["band_high"] if measured else 1)
    assert total["achieved_time_lo_s"] == pytest.approx(low, rel=1e-12)
    assert total["achieved_time_hi_s"] == pytest.approx(high, rel=1e-12)
    assert total["achieved_time_lo_s"] < total["achieved_time_s"] < total["achieved_time_hi_s"]
    bare = rooflax.sweep(summary=True, hardware="mi300x", **keys)  # no measurements: no band
    assert bare["achieved_time_lo_s"].null_count() == bare.height == 1


def test_cli_calibrate_writes_a_profile_that_sweeps_use_and_accuracy_scores(tmp_path, capsys):
    from rooflax.cli import main

    profile = tmp_path / "h100.toml"
    assert main(["calibrate", str(SUBSET / "h100_sxm"), "-o", str(profile), "--quiet"]) == 0
    fitted = load_hardware(profile)
    again = calibrate_from_subset("h100-sxm")
    assert fitted.group_terms == again.group_terms and fitted.name == "h100-sxm-fitted"
    df = rooflax.sweep(hardware=str(profile), phases=["decode"], batch=[1], seq_len=[512], summary=True)
    assert df["achieved_time_lo_s"][0] < df["achieved_time_s"][0] < df["achieved_time_hi_s"][0]
    assert main(["calibrate", str(SUBSET / "h100_sxm"), "-o", str(profile)]) == 2  # exists: --overwrite
    assert "already exists" in capsys.readouterr().err
    chart = tmp_path / "acc.png"
    assert main(["accuracy", str(SUBSET / "h100_sxm"), "--hardware", str(profile), "--plot", str(chart)]) == 0
    out = capsys.readouterr().out
    assert "h100-sxm" in out and "gemm" in out and "in band" in out
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["calibrate", str(SUBSET), "-o", str(tmp_path / "all.toml")]) == 2  # four GPUs at once
    assert "calibrate one at a time" in capsys.readouterr().err


def calibrate_from_subset(name: str) -> rooflax.Hardware:
    from rooflax.calibration.fit import calibrate

    return calibrate(read_measurements(SUBSET / FITTED[name]), name)
