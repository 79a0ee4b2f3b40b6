"""Validation on the CPU with small shapes: timing logic, kernels, frame, chart, profile."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import polars as pl
import pytest

import rooflax
from rooflax.cli import main
from rooflax.validate import preset_for_kind, time_call, validate
from rooflax.validate.kernels import kernel_for, random_sets, run_checked

TINY = rooflax.Model(name="tiny", hidden=128, layers=2, heads=4, kv_heads=2, head_dim=32, intermediate=352, vocab=500)


class FakeWork:
    """A 'device call' that takes a known time on a fake clock, recording the buffers it saw."""

    def __init__(self, seconds_per_call):
        self.now, self.cost, self.seen = 0.0, seconds_per_call, []

    def clock(self):
        return self.now

    def __call__(self, buffer):
        self.now += self.cost
        self.seen.append(buffer)
        return self

    def block_until_ready(self):
        return self


@pytest.mark.parametrize("seconds", [1e-6, 5e-4, 0.01])
def test_timer_measures_a_known_workload(seconds):
    work = FakeWork(seconds)
    assert time_call(work, [("a",), ("b",), ("c",)], repeats=5, clock=work.clock) == pytest.approx(seconds)
    twice = FakeWork(2 * seconds)
    assert time_call(twice, [("a",)], repeats=5, clock=twice.clock) == pytest.approx(2 * seconds)


def test_timer_rotates_buffers_and_takes_the_median():
    costs = itertools.cycle([1.0, 1.0, 9.0])  # one slow outlier in three samples

    class Jittery(FakeWork):
        def __call__(self, buffer):
            self.now += next(costs)
            self.seen.append(buffer)
            return self

    work = Jittery(0)
    assert time_call(work, [("a",), ("b",)], repeats=3, warmup=0, clock=work.clock) == 1.0
    assert work.seen[1:] == ["a", "b", "a"]  # after the batch-size probe, calls rotate through the buffers


def test_kernels_match_the_cost_model_shapes():
    k = kernel_for("qkv_proj", TINY, batch=2, new=3, attended=10)
    assert k.shapes == ((6, 128), (128, (4 + 4) * 32))
    k = kernel_for("pv", TINY, batch=2, new=1, attended=10)
    assert k.shapes == ((2, 2, 2, 1, 10), (2, 2, 10, 32))
    buffers = random_sets(k.shapes, "fp32", 2)
    fn, error = run_checked(k, "fp32", buffers)
    assert error < 1e-5 and fn(*buffers[0]).shape == (2, 2, 2, 1, 32)


def test_a_wrong_kernel_cannot_look_fast(monkeypatch):
    from rooflax.validate import kernels

    monkeypatch.setattr(kernels, "_compiled", lambda eq: jax.jit(lambda a, b: jnp.zeros_like(jnp.einsum(eq, a, b))))
    k = kernel_for("up_proj", TINY, batch=1, new=4, attended=4)
    with pytest.raises(rooflax.DeviceError, match="is wrong: relative error"):
        run_checked(k, "fp32", random_sets(k.shapes, "fp32", 1))


def test_points_without_a_model_are_kept(monkeypatch):
    from rooflax.validate import run

    seen = []

    def record(op, model, **shape):
        seen.append((model.name, shape))
        raise rooflax.DeviceError("stop")

    monkeypatch.setattr(run, "kernel_for", record)
    with pytest.raises(rooflax.DeviceError, match="stop"):
        validate(points=(("decode", 3, 48, None),), repeats=1, matmul_n=64, copy_bytes=2**16)
    assert seen[0] == ("llama-13b", {"batch": 3, "new": 1, "attended": 48})


def test_validate_on_cpu_end_to_end(tmp_path):
    points = (("decode", 2, 64, None), ("prefill", 1, 32, None), ("verify", 1, 64, 8))
    result = validate(model=TINY, points=points, repeats=2, matmul_n=128, copy_bytes=2**20, rotate_bytes=2**20)
    frame = result.frame
    assert frame.height == 3 * 7
    assert set(frame.get_column("op")) == {"qkv_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "qk", "pv"}
    point = rooflax.evaluate(model=TINY, hardware=result.profile, dtype="fp32", phase="decode", batch=2, seq_len=64)
    row = frame.filter(phase="decode", op="qk").row(0, named=True)
    assert row["flops"] == point["ops"]["qk"]["flops"] and row["bytes"] == point["ops"]["qk"]["bytes"]
    assert row["efficiency"] == pytest.approx(row["predicted_time_s"] / row["measured_time_s"])
    assert row["achieved_flops"] == pytest.approx(row["flops"] / row["measured_time_s"])
    assert (frame.get_column("measured_time_s") > 0).all()
    assert frame.get_column("datasheet_time_s").null_count() == frame.height  # no datasheet for a CPU
    assert result.profile.peak("fp32") > 0 and result.profile.bandwidth_bytes_per_s > 0
    assert result.timer_ratio > 0
    fig = rooflax.plot.measured(frame, result.profile)
    ax = fig.axes[0]
    measured = [c for c in ax.collections if c.get_gid() == "measured"]
    assert sum(len(c.get_offsets()) for c in measured) == frame.height
    fig.savefig(tmp_path / "v.png")


def test_validate_cli_writes_frame_chart_profile(tmp_path, capsys):
    (tmp_path / "tiny.toml").write_text("name = 'tiny'\nhidden = 128\nlayers = 2\nheads = 4\nkv_heads = 2\n"
                                        "intermediate = 352\nvocab = 500\n")
    (tmp_path / "spec.toml").write_text("model = 'tiny.toml'\ndtype = 'fp32'\nphases = ['decode']\n"
                                        "[axes]\nbatch = [1, 4]\nseq_len = [32, 64]\n")
    out, chart, profile = tmp_path / "v.parquet", tmp_path / "v.png", tmp_path / "p.toml"
    assert main(["validate", "--spec", str(tmp_path / "spec.toml"), "--repeats", "2", "--max-points", "3", "-o",
                 str(out), "--plot", str(chart), "--profile", str(profile)]) == 0
    assert pl.read_parquet(out).height == 3 * 7
    assert "decode   qkv mlp" in capsys.readouterr().out
    hw = rooflax.load_hardware(profile)
    assert hw.name == "cpu-measured" and "fp32" in hw.dtypes
    # the profile is a hardware that sweeps accept
    (tmp_path / "use.toml").write_text("hardware = 'p.toml'\ndtype = 'fp32'\n[axes]\nbatch = [1]\nseq_len = [8]\n")
    assert rooflax.sweep(tmp_path / "use.toml").get_column("hardware").unique().to_list() == ["cpu-measured"]


@pytest.mark.parametrize(("argv", "message"), [
    (["validate", "-o", "{tmp}/v.parquet", "--require-accelerator"], "an accelerator was required"),
    (["validate", "-o", "{tmp}/v.parquet", "--dtype", "fp64"], "unknown name 'fp64'"),
    (["validate", "-o", "{tmp}/v.csv"], "expected a .parquet file name"),
    (["validate", "-o", "{tmp}/v.parquet", "--repeats", "0", "--spec", "{tmp}/s.toml"], "--repeats: expected"),
])
def test_validate_bad_input(tmp_path, capsys, argv, message):
    (tmp_path / "s.toml").write_text("[axes]\nbatch = [1]\nseq_len = [8]\n")
    assert main([a.format(tmp=tmp_path) for a in argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "v.parquet").exists()


def test_shapes_that_do_not_fit_are_refused():
    from rooflax.validate.kernels import check_fits

    k = kernel_for("up_proj", rooflax.get_model("llama-65b"), batch=64, new=4096, attended=4096)
    with pytest.raises(rooflax.DeviceError, match="more than 80% of the device's"):
        check_fits([k], "fp32", 1, 24e9)


def test_device_kinds_map_to_presets():
    assert preset_for_kind("NVIDIA H200").name == "h200"
    assert preset_for_kind("NVIDIA H100 PCIe").name == "h100-pcie"
    assert preset_for_kind("NVIDIA A40").name == "a40"
    assert preset_for_kind("NVIDIA L40S").name == "l40s"
    assert preset_for_kind("NVIDIA L4").name == "l4"
    assert preset_for_kind("NVIDIA A100-PCIE-40GB").name == "a100-40gb-pcie"
