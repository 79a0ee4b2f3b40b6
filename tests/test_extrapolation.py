"""A sweep far outside every shape a profile was fitted on is flagged (rooflax.answers.extrapolation)."""

from __future__ import annotations

import polars as pl

import rooflax
from rooflax.answers.extrapolation import FACTOR, extrapolated, extrapolation_notes
from rooflax.calibration.fit import fit_hardware
from rooflax.calibration.measurements import MEASUREMENT_SCHEMA
from rooflax.calibration.predict import predict_measurements
from rooflax.config.hardware import hardware_to_toml, load_hardware, uncalibrated_preset

#: Products of 16..128 tokens against a 5120 × 5120 weight: decode-sized, nothing like a long prefill.
M = (16, 24, 32, 48, 64, 80, 96, 128)


def _fitted() -> rooflax.Hardware:
    base = uncalibrated_preset("h100-sxm")
    rows = pl.DataFrame(
        [
            {**{c: None for c in MEASUREMENT_SCHEMA}, "repeats": 1, "hardware": "h100-sxm", "kind": "gemm"}
            | {"kernel": "k", "dtype": "bf16", "m": m, "n": 5120, "k": 5120, "measured_time_s": 1.0}
            for m in M
        ],
        schema=MEASUREMENT_SCHEMA,
    )
    timed = rows.with_columns(predict_measurements(rows, base)["predicted_time_s"].alias("measured_time_s") * 1.3)
    return fit_hardware(timed, base, name="h100-fitted")


def test_a_fit_records_the_range_of_work_it_was_fitted_on():
    terms = _fitted().terms("up/gate/down", "prefill")
    # [m, 5120] × [5120, 5120] in bf16: 2·m·5120² FLOPs, 2·(5120² + 2·m·5120) bytes
    assert terms["fitted_flops_min"] == 2 * 16 * 5120**2 and terms["fitted_flops_max"] == 2 * 128 * 5120**2
    assert terms["fitted_bytes_min"] == 2 * (5120**2 + 2 * 16 * 5120)
    assert terms["fitted_bytes_max"] == 2 * (5120**2 + 2 * 128 * 5120)


def test_a_sweep_far_outside_the_fitted_shapes_is_flagged_and_one_inside_is_not(tmp_path):
    path = tmp_path / "h100-fitted.toml"
    path.write_text(hardware_to_toml(_fitted()))
    assert load_hardware(path).terms("qkv mlp")["fitted_flops_max"] == 2 * 128 * 5120**2  # survives the file
    near = rooflax.parse_spec(
        model="llama-13b", hardware=str(path), dtype="bf16", phases=["decode"], batch=[32], seq_len=[1024]
    )
    assert extrapolated(near).height == 0 and extrapolation_notes(near) == []
    # prefill of 64 × 8192 tokens: 524288-token products, 4096× the largest measured
    far = rooflax.parse_spec(
        model="llama-13b", hardware=str(path), dtype="bf16", phases=["prefill"], batch=[64], seq_len=[8192]
    )
    flagged = extrapolated(far)
    # lm_head runs on the last token of each sequence (64 tokens): 2·64·5120·32000 is within 10× of 6.7e9
    assert set(flagged.filter(quantity="flops")["op"]) == {"qkv_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    top = flagged.filter(op="up_proj", quantity="flops").row(0, named=True)
    assert top["swept_max"] == 2 * 64 * 8192 * 5120 * 13824 > top["fitted_max"] * FACTOR
    # attention and elementwise ops have no fitted range here: never flagged
    assert not set(flagged["group"]) & {"qk/pv", "elementwise"}
    (note,) = [n for n in extrapolation_notes(far) if "up/gate/down" in n and "FLOPs" in n]
    assert note.startswith("h100-fitted: gate_proj, up_proj, down_proj (up/gate/down, prefill) reach ")
    assert note.endswith(
        "more than 10× outside the 8.39e+08–6.71e+09 the terms were fitted on: their achieved times are extrapolated"
    )


def test_a_profile_without_measurements_flags_nothing():
    assert extrapolated(rooflax.parse_spec(hardware="mi300x", batch=[1024], seq_len=[8192])).height == 0


def test_the_cli_prints_the_note(tmp_path, capsys):
    from rooflax.cli.commands import main

    path = tmp_path / "h100-fitted.toml"
    path.write_text(hardware_to_toml(_fitted()))
    assert main(["compare", "h100-sxm", str(path), "--batch", "64", "--seq-len", "8192", "--phases", "prefill"]) == 0
    err = capsys.readouterr().err
    assert "note: h100-fitted: qkv_proj, o_proj (qkv mlp, prefill) reach" in err
