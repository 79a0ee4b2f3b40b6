"""Comparing accelerators: rooflax.compare, the compare command, spec flags on sweep."""

from __future__ import annotations

import polars as pl
import pytest

import rooflax
from rooflax.answers.compare import compare
from rooflax.cli.commands import main

A40, H100 = rooflax.HARDWARE["a40"], rooflax.HARDWARE["h100-sxm"]


@pytest.mark.slow
def test_memory_bound_decode_speeds_up_by_the_bandwidth_ratio():
    df = compare(a="a40", b="h100-sxm", phases=["decode"], batch=[1, 4], seq_len=[512, 2048])
    ratio = H100.bandwidth_bytes_per_s / A40.bandwidth_bytes_per_s
    single_device = [group for group in rooflax.GROUPS if group != "comm"]  # no collectives at tp = pp = ep = 1
    assert df.get_column("group").to_list() == [*single_device, "total"]
    assert df.get_column("speedup").to_list() == pytest.approx([ratio] * 6, rel=1e-12)
    assert df.get_column("speedup_min").to_list() == pytest.approx([ratio] * 6, rel=1e-12)
    assert df.get_column("points").to_list() == [4 * n for n in (2, 3, 2, 7, 1)] + [
        4
    ]  # grid points × ops in the group; total: grid points
    assert set(df.get_column("a")) == {"a40"} and set(df.get_column("b")) == {"h100-sxm"}


def test_compute_bound_prefill_speeds_up_by_the_peak_ratio_and_total_adds_whole_model_times():
    df = compare(a="a40", b="h100-sxm", phases=["prefill"], batch=[64], seq_len=[2048])
    mlp = df.filter(group="up/gate/down").row(0, named=True)
    assert mlp["speedup"] == pytest.approx(H100.peak("fp16") / A40.peak("fp16"), rel=1e-12)
    tot = rooflax.sweep(hardware=["a40", "h100-sxm"], phases=["prefill"], batch=[64], seq_len=[2048], summary=True)
    times = dict(zip(tot.get_column("hardware").cast(pl.String), tot.get_column("time_s"), strict=True))
    total = df.filter(group="total").row(0, named=True)
    assert total["time_a_s"] == pytest.approx(times["a40"]) and total["time_b_s"] == pytest.approx(times["h100-sxm"])
    assert total["speedup"] == pytest.approx(times["a40"] / times["h100-sxm"])
    assert all(row["achieved_speedup"] > 0 for row in df.iter_rows(named=True))


def test_speedup_range_spans_the_grid():
    df = compare(a="a40", b="h100-sxm", phases=["prefill"], batch=[1, 64], seq_len=[16, 2048])
    mlp = df.filter(group="up/gate/down").row(0, named=True)
    # batch 1 × 16 tokens is memory-bound (bandwidth ratio), 64 × 2048 compute-bound (peak ratio)
    assert mlp["speedup_min"] == pytest.approx(H100.bandwidth_bytes_per_s / A40.bandwidth_bytes_per_s)
    assert mlp["speedup_max"] == pytest.approx(H100.peak("fp16") / A40.peak("fp16"))
    assert mlp["speedup_min"] < mlp["speedup"] < mlp["speedup_max"]


def test_compare_refuses_a_hardware_key():
    with pytest.raises(rooflax.SpecError, match=r"^hardware: compare takes the accelerators as a and b"):
        compare(a="a40", b="l4", hardware=["a40"])


def test_compare_command_prints_the_table_and_writes_it(tmp_path, capsys):
    out = tmp_path / "cmp.csv"
    assert (
        main(
            ["compare", "a40", "h100-sxm", "--phases", "decode", "--batch", "1,8", "--seq-len", "1024", "-o", str(out)]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert text.startswith("speedup of h100-sxm over a40 (llama-13b, fp16): time on a40 / time on h100-sxm")
    ratio = H100.bandwidth_bytes_per_s / A40.bandwidth_bytes_per_s
    lines = [line for line in text.splitlines() if line.startswith("decode")]
    assert len(lines) == 6 and all(f"{ratio:.2f}×" in line for line in lines)
    assert pl.read_csv(out).height == 6 and f"wrote 6 rows to {out}" in text
    assert main(["compare", "a40", "h100-sxm", "--phases", "decode", "-o", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err


def test_compare_command_with_a_spec_file(tmp_path, capsys):
    spec = tmp_path / "s.toml"
    spec.write_text(
        "model = ['llama-7b', 'toy-llama']\nhardware = 'l4'\nphases = ['decode']\n"
        "[axes]\nbatch = [1]\nseq_len = [256]\n"
    )
    assert main(["compare", "l4", "a40", "--spec", str(spec)]) == 0
    text = capsys.readouterr().out
    assert "model" in text.splitlines()[1] and sum(line.startswith("toy-llama") for line in text.splitlines()) == 6


def test_sweep_flags_override_the_spec(tmp_path):
    spec = tmp_path / "s.toml"
    spec.write_text("hardware = 'l4'\nphases = ['prefill']\n[axes]\nbatch = [2]\nseq_len = [64, 128]\n")
    assert (
        main(
            [
                "sweep",
                str(spec),
                "-o",
                str(tmp_path / "ds"),
                "--hardware",
                "a40,h100-sxm",
                "--phases",
                "decode",
                "--batch",
                "1,4",
                "--quiet",
            ]
        )
        == 0
    )
    df = rooflax.scan_dataset(tmp_path / "ds").collect()
    assert sorted(df.get_column("hardware").cast(pl.String).unique()) == ["a40", "h100-sxm"]
    assert df.get_column("phase").unique().to_list() == ["decode"]
    assert sorted(df.get_column("batch").unique()) == [1, 4] and sorted(df.get_column("seq_len").unique()) == [64, 128]
    assert main(["sweep", "-o", str(tmp_path / "x"), "--batch", "1,two"]) == 2


@pytest.mark.slow
def test_compare_keeps_parallel_layouts_apart(capsys):
    df = compare("sweeps/llama70b_tp.toml", a="a40", b="h100-sxm", phases=["decode"], batch=[1], seq_len=[512])
    assert sorted(df.get_column("tp").unique()) == [1, 2, 4, 8]
    tot = rooflax.sweep(
        "sweeps/llama70b_tp.toml",
        hardware=["a40", "h100-sxm"],
        phases=["decode"],
        batch=[1],
        seq_len=[512],
        summary=True,
    )
    for tp in (1, 2, 4, 8):
        times = dict(
            zip(
                tot.filter(tp=tp).get_column("hardware").cast(pl.String),
                tot.filter(tp=tp).get_column("time_s"),
                strict=True,
            )
        )
        total = df.filter(tp=tp, group="total").row(0, named=True)
        assert total["points"] == 1
        assert total["time_a_s"] == pytest.approx(times["a40"])
        assert total["time_b_s"] == pytest.approx(times["h100-sxm"])
        assert ("comm" in df.filter(tp=tp).get_column("group").to_list()) == (tp > 1)
    assert (
        main(["compare", "a40", "h100-sxm", "--spec", "sweeps/llama70b_tp.toml", "--batch", "1", "--seq-len", "512"])
        == 0
    )
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split()[:3] == ["tp", "phase", "group"]
    assert {line.split()[0] for line in lines[2:] if line.strip()} == {"1", "2", "4", "8"}


def test_compare_bands_sum_each_ops_band_and_take_the_ratios_ends_apart():
    df = rooflax.compare(a="a40", b="h100-sxm", phases=["decode"], batch=[1, 8], seq_len=[2048])
    long = rooflax.sweep(model="llama-13b", hardware="a40", phases=["decode"], batch=[1, 8], seq_len=[2048])
    row = df.filter(group="qkv mlp").row(0, named=True)
    low = rooflax.get_hardware("a40").terms("qkv mlp", "decode")["band_low"]
    expected = long.filter(group="qkv mlp")["achieved_time_s"].sum() * low
    assert row["achieved_time_a_lo_s"] == pytest.approx(expected, rel=1e-12)
    # each accelerator on its own fit: a's fast end over b's slow end, to a's slow end over b's fast end
    assert row["achieved_speedup_lo"] == pytest.approx(row["achieved_time_a_lo_s"] / row["achieved_time_b_hi_s"])
    assert row["achieved_speedup_hi"] == pytest.approx(row["achieved_time_a_hi_s"] / row["achieved_time_b_lo_s"])
    for r in df.iter_rows(named=True):
        assert r["achieved_speedup_lo"] <= r["achieved_speedup"] <= r["achieved_speedup_hi"], r["group"]
    # the total rows sum the summary frames' bands
    summary = rooflax.sweep(
        model="llama-13b", hardware="a40", phases=["decode"], batch=[1, 8], seq_len=[2048], summary=True
    )
    total = df.filter(group="total").row(0, named=True)
    assert total["achieved_time_a_hi_s"] == pytest.approx(summary["achieved_time_hi_s"].sum(), rel=1e-12)


def test_compare_has_no_band_on_a_profile_without_measurements():
    df = rooflax.compare(a="a40", b="mi300x", phases=["decode"], batch=[1], seq_len=[2048])
    assert df["achieved_speedup_lo"].null_count() == df.height
    assert df["achieved_time_a_lo_s"].null_count() == 0  # a40's own band is there
    assert "achieved band" not in rooflax.answers.compare.compare_table(df).header


def test_a_routed_experts_band_is_the_moe_kernels_not_its_chart_groups():
    from rooflax.answers.bands import op_band

    spec = rooflax.parse_spec(model="mixtral-8x7b", hardware="h100-sxm", batch=[8], seq_len=[512], phases=["decode"])
    hw = spec.hardware[0]
    moe, products = hw.terms("moe", "decode"), hw.terms("up/gate/down", "decode")
    assert moe["band_low"] != products["band_low"]  # the fit gave the experts' kernel a band of its own
    long = op_band(rooflax.sweep(spec), spec).with_columns(pl.col("op").cast(pl.String))
    for op, terms in (("expert_up", moe), ("expert_down", moe), ("qkv_proj", hw.terms("qkv mlp", "decode"))):
        row = long.filter(pl.col("op") == op).row(0, named=True)
        assert row["achieved_time_lo_s"] == row["achieved_time_s"] * terms["band_low"]
        assert row["achieved_time_hi_s"] == row["achieved_time_s"] * terms["band_high"]
