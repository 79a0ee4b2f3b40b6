"""Validation on the CPU with small shapes: timing logic, kernels, frame, chart, profile."""

from __future__ import annotations

import dataclasses
import itertools
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import polars as pl
import pytest

import rooflax
from rooflax.answers.tables import Table
from rooflax.cli.commands import main
from rooflax.config.hardware import DEFAULT_ACHIEVED
from rooflax.validate import preset_for_kind, time_call, validate
from rooflax.validate.cli import summary_table
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
    assert k.shapes == ((6, 128), (128, (4 + 4) * 32)) and k.output_shape == (6, 256)
    k = kernel_for("pv", TINY, batch=2, new=1, attended=10)
    assert k.shapes == ((2, 2, 2, 1, 10), (2, 2, 10, 32)) and k.output_shape == (2, 2, 2, 1, 32)
    buffers = random_sets(k.shapes, "fp32", 2)
    fn, error = run_checked(k, "fp32", buffers)
    assert error < 1e-5 and fn(*buffers[0]).shape == (2, 2, 2, 1, 32)


@pytest.mark.parametrize(
    ("phase", "batch", "seq_len", "spec_k"), [("decode", 3, 48, None), ("prefill", 2, 40, None), ("verify", 2, 64, 8)]
)
def test_kernel_flops_match_jax_roofline_and_the_cost_model(phase, batch, seq_len, spec_k):
    from jax.experimental import roofline

    from rooflax.validate.kernels import TIMED_OPS

    point = rooflax.evaluate(
        model=TINY, hardware="a40", dtype="fp32", phase=phase, batch=batch, seq_len=seq_len, spec_k=spec_k
    ).ops
    new = {"decode": 1, "prefill": seq_len, "verify": spec_k}[phase]
    for op in TIMED_OPS:
        k = kernel_for(op, TINY, batch=batch, new=new, attended=seq_len)
        operands = [jax.ShapeDtypeStruct(shape, jnp.float32) for shape in k.shapes]
        _, counted = roofline.roofline(lambda a, b, eq=k.equation: jnp.einsum(eq, a, b))(*operands)
        assert counted.flops == point[op].flops, op


@pytest.mark.slow
def test_operand_sets_are_distinct_and_made_by_one_compiled_call():
    from rooflax.validate.kernels import _filler

    shapes = ((3, 5), (5, 7))
    sets = random_sets(shapes, "bf16", 3, seed=4)
    assert [tuple(a.shape for a in s) for s in sets] == [shapes] * 3
    assert all(a.dtype == jnp.bfloat16 for s in sets for a in s)
    values = [tuple(float(v) for v in s[0].astype(jnp.float32).ravel()) for s in sets]
    assert len(set(values)) == 3  # the rotated copies differ
    assert all(-1 <= v < 1 for v in values[0]) and len(set(values[0])) > 10
    random_sets(shapes, "bf16", 2, seed=5)
    assert _filler(shapes, "bf16")._cache_size() == 1  # one compiled function for every set and seed


def test_a_wrong_kernel_cannot_look_fast(monkeypatch):
    from rooflax.validate import kernels

    monkeypatch.setattr(kernels, "_compiled", lambda eq: jax.jit(lambda a, b: jnp.zeros_like(jnp.einsum(eq, a, b))))
    k = kernel_for("up_proj", TINY, batch=1, new=4, attended=4)
    with pytest.raises(rooflax.DeviceError, match="is wrong: relative error"):
        run_checked(k, "fp32", random_sets(k.shapes, "fp32", 1))


@pytest.mark.slow
def test_running_out_of_memory_names_the_point_its_need_and_the_device(monkeypatch):
    from rooflax.validate import kernels

    def exhausted(equation):
        def fn(a, b):
            raise jax.errors.JaxRuntimeError("RESOURCE_EXHAUSTED: Out of memory while trying to allocate 9.0GiB.")

        return fn

    monkeypatch.setattr(kernels, "_compiled", exhausted)
    with pytest.raises(rooflax.DeviceError) as info:
        validate(model=TINY, points=(("decode", 4, 64, None),), quick=True)
    message = str(info.value)
    set_bytes = 4 * (4 * 128 + 128 * 256)  # fp32 [4,128] and [128,256]
    copies = math.ceil(2**20 / set_bytes)  # --quick rotates 1 MiB of operands
    need = copies * set_bytes + 2 * 4 * (4 * 256)  # and two [4,256] results
    assert message.startswith(
        f"validate: decode B=4 S=64: qkv_proj [4,128] × [128,256] in fp32 needs "
        f"{need / 2**20:.1f} MiB ({copies} operand sets and results), ran out of the device's "
    )
    assert "--max-points" in message and "--dtype" not in message and "\n" not in message


@pytest.mark.slow
def test_points_without_a_model_are_kept(monkeypatch):
    from rooflax.validate import run

    seen = []

    def record(op, model, **shape):
        seen.append((model.name, shape))
        raise rooflax.DeviceError("stop")

    monkeypatch.setattr(run, "kernel_for", record)
    with pytest.raises(rooflax.DeviceError, match="stop"):
        validate(points=(("decode", 3, 48, None),), quick=True)
    assert seen[0] == ("toy-llama", {"batch": 3, "new": 1, "attended": 48})  # the CPU's default model


def test_timer_self_check_does_twice_the_work(monkeypatch):
    from jax.experimental import roofline

    from rooflax.validate import run

    def flops_for_seconds(fn, buffers, *, repeats):  # a clock that ticks once per FLOP
        return roofline.roofline(fn)(*buffers[0])[1].flops

    monkeypatch.setattr(run, "time_call", flops_for_seconds)
    assert run._timer_check("fp32", 48, repeats=1) == 2.0


@pytest.mark.slow
def test_validate_on_cpu_end_to_end(tmp_path):
    points = (("decode", 2, 64, None), ("prefill", 1, 32, None), ("verify", 1, 64, 8))
    result = validate(model=TINY, points=points, repeats=2, matmul_n=128, copy_bytes=2**20, rotate_bytes=2**16)
    frame = result.frame
    ops = ("qkv_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "qk", "pv")
    # one row per requested point and op, nothing else
    assert sorted(frame.select("phase", "batch", "seq_len", "spec_k", "op").rows()) == sorted(
        (*p, op) for p in points for op in ops
    )
    shapes = dict(
        zip(
            frame.filter(phase="verify").get_column("op"), frame.filter(phase="verify").get_column("shape"), strict=True
        )
    )
    assert shapes == {
        "qkv_proj": "[8,128] × [128,256]",
        "o_proj": "[8,128] × [128,128]",
        "gate_proj": "[8,128] × [128,352]",
        "up_proj": "[8,128] × [128,352]",
        "down_proj": "[8,352] × [352,128]",
        "qk": "[1,2,2,8,32] × [1,2,64,32]",
        "pv": "[1,2,2,8,64] × [1,2,64,32]",
    }
    peak, bandwidth = result.profile.peak("fp32"), result.profile.bandwidth_bytes_per_s
    for phase, batch, seq_len, spec_k in points:  # predictions are the measured profile's roofline
        point = rooflax.evaluate(
            model=TINY, hardware="a40", dtype="fp32", phase=phase, batch=batch, seq_len=seq_len, spec_k=spec_k
        ).ops
        for row in frame.filter(phase=phase).iter_rows(named=True):
            p = point[row["op"]]
            assert (row["flops"], row["bytes"]) == (p.flops, p.bytes)
            assert row["predicted_time_s"] == pytest.approx(max(p.flops / peak, p.bytes / bandwidth))
            assert row["efficiency"] == pytest.approx(row["predicted_time_s"] / row["measured_time_s"])
            assert row["measured_flops"] == pytest.approx(row["flops"] / row["measured_time_s"])
            # no datasheet for a CPU: the achieved model at the measured profile (no quantization on the CPU)
            d = DEFAULT_ACHIEVED
            below = max(p.flops / (peak * d["compute_efficiency"]), p.bytes / (bandwidth * d["bandwidth_efficiency"]))
            assert row["spent_flops"] == p.flops
            assert row["predicted_achieved_time_s"] == pytest.approx(d["kernel_overhead_s"] + below)
    assert frame.get_column("datasheet_time_s").null_count() == frame.height  # no datasheet for a CPU
    assert "128³ fp32 matmul, 1048576 B copy, median of 2" in result.profile.source
    fig = rooflax.plot.measured(frame, result.profile)
    ax = fig.axes[0]
    measured = [c for c in ax.collections if c.get_gid() == "measured"]
    drawn = sorted(tuple(xy) for c in measured for xy in c.get_offsets().tolist())
    assert drawn == sorted(frame.select("intensity", "measured_flops").rows())
    rooflax.plot.save(fig, tmp_path / "v.png")


@pytest.mark.slow
def test_validate_cli_writes_frame_chart_profile(tmp_path, capsys):
    (tmp_path / "tiny.toml").write_text(
        "name = 'tiny'\nhidden = 128\nlayers = 2\nheads = 4\nkv_heads = 2\nintermediate = 352\nvocab = 500\n"
    )
    (tmp_path / "spec.toml").write_text(
        "model = 'tiny.toml'\ndtype = 'fp32'\nphases = ['decode']\n[axes]\nbatch = [1, 4]\nseq_len = [32, 64]\n"
    )
    out, chart, profile = tmp_path / "v.parquet", tmp_path / "v.png", tmp_path / "p.toml"
    argv = [
        "validate",
        "--spec",
        str(tmp_path / "spec.toml"),
        "--quick",
        "--max-points",
        "3",
        "-o",
        str(out),
        "--plot",
        str(chart),
        "--profile",
        str(profile),
    ]
    assert main(argv) == 0
    frame = pl.read_parquet(out)
    assert sorted(set(frame.select("batch", "seq_len").rows())) == [(1, 32), (4, 32), (4, 64)]  # 3 of 4, spread
    meta = pl.read_parquet_metadata(out)
    assert meta["rooflax.kind"] == "validate" and float(meta["rooflax.timer_ratio"]) > 0
    # the summary is the shared table printer's (rooflax.answers.tables.Table): columns two spaces apart, the text
    # columns left-aligned to their widest cell, the numbers right-aligned
    printed = capsys.readouterr().out.splitlines()
    table = summary_table(frame)
    assert isinstance(table, Table) and printed[: len(table.rows) + 1] == table.text().splitlines()
    assert printed[0].startswith("phase   group         ops  median") and printed[0].endswith("calibrated err")
    starts = {line[:16] for line in printed[1 : len(table.rows) + 1]}
    assert starts == {"decode  qkv mlp ", "decode  up/gate/", "decode  qk/pv   "}
    hw = rooflax.load_hardware(profile)
    assert hw.name == "cpu-measured" and "256³ fp32 matmul, 4194304 B copy, median of 2" in hw.source
    # the profile is a hardware that sweeps accept
    (tmp_path / "use.toml").write_text("hardware = 'p.toml'\ndtype = 'fp32'\n[axes]\nbatch = [1]\nseq_len = [8]\n")
    assert rooflax.sweep(tmp_path / "use.toml").get_column("hardware").unique().to_list() == ["cpu-measured"]
    # every output is refused before anything is timed unless --overwrite; then all are replaced
    base, fresh = argv[:6], str(tmp_path / "new.parquet")
    before = {p: (p.read_bytes(), p.stat().st_ino) for p in (out, chart, profile)}
    for flag, rest in (
        ("-o/--output", ["-o", str(out)]),
        ("--plot", ["-o", fresh, "--plot", str(chart)]),
        ("--profile", ["-o", fresh, "--profile", str(profile)]),
    ):
        capsys.readouterr()
        assert main([*base, *rest]) == 2
        path = rest[-1]
        assert (
            capsys.readouterr().err == f"error: {flag}: '{path}' already exists; pass overwrite (--overwrite) to "
            "replace it\n"
        )
    assert {p: (p.read_bytes(), p.stat().st_ino) for p in before} == before and not Path(fresh).exists()
    assert main([*argv, "--overwrite", "--quiet"]) == 0
    assert all(p.stat().st_ino != before[p][1] for p in before)  # each was written anew and renamed into place


def test_max_points_applies_to_the_default_points(tmp_path, monkeypatch):
    from rooflax.validate import DEFAULT_POINTS, run

    seen = []

    def record(**kwargs):
        seen.append(kwargs)
        raise rooflax.DeviceError("stop")

    monkeypatch.setattr(run, "validate", record)
    assert main(["validate", "-o", str(tmp_path / "d.parquet"), "--max-points", "4", "--quick"]) == 2
    # four of the defaults, evenly spread: the first, the last, and two between, decode and prefill alike
    assert seen[0]["points"] == tuple(DEFAULT_POINTS[round(i * (len(DEFAULT_POINTS) - 1) / 3)] for i in range(4))
    assert {p[0] for p in seen[0]["points"]} == {"decode", "prefill"} and seen[0]["model"] is None
    assert seen[0]["quick"] is True


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["validate", "-o", "{tmp}/v.parquet", "--require-accelerator"], "an accelerator was required"),
        (["validate", "-o", "{tmp}/v.parquet", "--dtype", "fp64"], "unknown name 'fp64'"),
        (["validate", "-o", "{tmp}/v.csv"], "-o/--output: '{tmp}/v.csv' has format '.csv'; allowed: .parquet"),
        (["validate", "-o", "{tmp}"], "-o/--output: '{tmp}' is a folder"),
        (
            ["validate", "-o", "{tmp}/v.parquet", "--plot", "{tmp}/v.parquet.png", "--profile", "{tmp}/p.txt"],
            "--profile: '{tmp}/p.txt' has format '.txt'; allowed: .toml",
        ),
        (["validate", "-o", "{tmp}/v.parquet", "--repeats", "0", "--spec", "{tmp}/s.toml"], "--repeats: expected"),
        (
            ["validate", "-o", "{tmp}/v.parquet", "--max-points", "0"],
            "--max-points: expected a positive integer, got 0",
        ),
    ],
)
def test_validate_bad_input(tmp_path, capsys, argv, message):
    (tmp_path / "s.toml").write_text("[axes]\nbatch = [1]\nseq_len = [8]\n")
    assert main([a.format(tmp=tmp_path) for a in argv]) == 2
    err = capsys.readouterr().err
    assert message.format(tmp=tmp_path) in err and err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.toml"]


def test_shapes_that_do_not_fit_are_refused():
    from rooflax.validate.kernels import check_fits

    k = kernel_for("up_proj", rooflax.get_model("llama-65b"), batch=64, new=4096, attended=4096)
    m, h, i = 64 * 4096, 8192, 22016
    need = 4 * (m * h + h * i + 2 * m * i)  # fp32: one operand set, two results
    with pytest.raises(
        rooflax.DeviceError,
        match=f"needs {need / 2**30:.1f} GiB .*, more than 80% of the device's 22.4 GiB; time smaller points",
    ):
        check_fits([k], "fp32", 1, 24e9)


def test_device_kinds_map_to_presets():
    assert preset_for_kind("NVIDIA H200").name == "h200"
    assert preset_for_kind("NVIDIA H100 PCIe").name == "h100-pcie"
    assert preset_for_kind("NVIDIA A40").name == "a40"
    assert preset_for_kind("NVIDIA L40S").name == "l40s"
    assert preset_for_kind("NVIDIA L4").name == "l4"
    assert preset_for_kind("NVIDIA B200").name == "b200"
    assert preset_for_kind("NVIDIA A100-PCIE-40GB").name == "a100-40gb-pcie"


@pytest.mark.parametrize(
    ("phase", "batch", "seq_len", "spec_k"), [("decode", 3, 48, None), ("prefill", 2, 40, None), ("verify", 2, 64, 8)]
)
def test_kernel_products_are_the_cost_models_products(phase, batch, seq_len, spec_k):
    from rooflax.config.dtypes import get_dtype
    from rooflax.cost.ops import layer_ops, make_step
    from rooflax.cost.shape import Shape
    from rooflax.validate.kernels import TIMED_OPS

    step = make_step(Shape.of(TINY, get_dtype("fp32"), phase=phase, batch=batch, seq_len=seq_len, spec_k=spec_k))
    gemms = {op.name: op.gemms(step) for op in layer_ops()}
    point = rooflax.evaluate(
        model=TINY, hardware="a40", dtype="fp32", phase=phase, batch=batch, seq_len=seq_len, spec_k=spec_k
    ).ops
    new = {"decode": 1, "prefill": seq_len, "verify": spec_k}[phase]
    for op in TIMED_OPS:
        k = kernel_for(op, TINY, batch=batch, new=new, attended=seq_len)
        assert gemms[op] == (k.gemm,), op
        count, m, n, inner = k.gemm  # count·m·n outputs, each a sum of inner products
        assert count * m * n == math.prod(k.output_shape)
        assert 2 * count * m * n * inner == point[op].flops, op


def test_a_measured_gpu_profile_keeps_the_presets_tiles_and_sm_count():
    from types import SimpleNamespace

    from rooflax.validate.device import DeviceInfo
    from rooflax.validate.run import _quantization

    a40 = rooflax.get_hardware("a40")
    info = DeviceInfo(device=SimpleNamespace(), platform="gpu", kind="NVIDIA A40", preset=a40, memory_bytes=48e9)
    assert _quantization(info) == {"sm_count": 84, "tile_m": a40.tile_m, "tile_n": a40.tile_n, "tile_k": a40.tile_k}
    some = DeviceInfo(
        device=SimpleNamespace(core_count=100), platform="gpu", kind="Some GPU", preset=None, memory_bytes=1e9
    )
    assert _quantization(some) == {"sm_count": 100}
    cpu = DeviceInfo(device=SimpleNamespace(), platform="cpu", kind="cpu", preset=None, memory_bytes=1e9)
    assert _quantization(cpu)["tile_m"] == 1


@pytest.mark.slow
def test_the_written_profile_makes_sweeps_predict_the_measured_times(tmp_path):
    from rooflax.calibration.measurements import validation_measurements
    from rooflax.calibration.predict import predict_measurements

    out, profile, spec = tmp_path / "v.parquet", tmp_path / "p.toml", tmp_path / "s.toml"
    spec.write_text(
        "model = 'toy-llama'\ndtype = 'fp32'\nphases = ['prefill', 'decode']\n"
        "[axes]\nbatch = [1, 8]\nseq_len = [128, 512]\n"
    )
    assert (
        main(
            [
                "validate",
                "--spec",
                str(spec),
                "--quick",
                "--quiet",
                "--max-points",
                "8",
                "-o",
                str(out),
                "--profile",
                str(profile),
            ]
        )
        == 0
    )
    frame, hw = pl.read_parquet(out), rooflax.load_hardware(profile)
    # 8 points, 4 a phase: 40 linear ops fit the products, 8 qk/pv ops a phase fit its attention terms
    assert {group for group, _ in hw.group_terms} == {"qkv mlp", "up/gate/down", "lm_head"}
    assert hw.source.endswith(
        "(per group: qkv mlp, up/gate/down, lm_head, qk/pv in prefill, qk/pv in decode, qk/pv in verify)"
    )
    assert "(measured, calibrated)" in hw.label
    assert all(
        0 < hw.terms(g)[k] <= 1 for g in ("qkv mlp", "qk/pv") for k in ("compute_efficiency", "bandwidth_efficiency")
    )
    # the sweep, at every validated shape, gives the calibrated model's time (the fit's own prediction)
    (tmp_path / "use.toml").write_text(spec.read_text().replace("[axes]", "hardware = 'p.toml'\n[axes]"))
    swept = rooflax.sweep(tmp_path / "use.toml")
    joined = frame.join(
        swept.select(pl.col("phase", "op").cast(pl.String), "batch", "seq_len", "achieved_time_s"),
        on=["phase", "batch", "seq_len", "op"],
    )
    assert joined.height == frame.height
    expected = (
        predict_measurements(validation_measurements(joined.drop("achieved_time_s"), hw.name), hw)
        .get_column("predicted_time_s")
        .to_numpy()
    )
    np.testing.assert_allclose(joined.get_column("achieved_time_s").to_numpy(), expected, rtol=1e-5)
    np.testing.assert_allclose(joined.get_column("calibrated_time_s").to_numpy(), expected, rtol=1e-9)
    # and those are near the measured times (loosely: a quick run on a shared CPU is noisy)
    error = np.abs(
        joined.get_column("achieved_time_s").to_numpy() / joined.get_column("measured_time_s").to_numpy() - 1
    )
    assert np.median(error) < 0.6


@pytest.mark.slow
def test_calibration_on_half_predicts_the_other_half():
    """Real timings on a shared CPU, fitted as rooflax calibrate fits (half the shapes held out): a loose bound
    only; that the fit beats the uncalibrated model is checked deterministically on noisy synthetic times in
    test_calibrate.py."""
    from rooflax.calibration.fit import split_by_shape
    from rooflax.calibration.measurements import validation_measurements
    from rooflax.calibration.predict import predict_measurements
    from rooflax.validate.run import calibrate

    points = (
        ("decode", 1, 256, None),
        ("decode", 16, 256, None),
        ("prefill", 1, 256, None),
        ("decode", 64, 256, None),
        ("decode", 1, 2048, None),
        ("prefill", 2, 512, None),
        ("decode", 16, 2048, None),
        ("decode", 64, 2048, None),
    )
    result = validate(
        model=rooflax.get_model("toy-llama"),
        points=points,
        repeats=3,
        matmul_n=512,
        copy_bytes=2**26,
        rotate_bytes=2**24,
    )
    train, test = split_by_shape(result.frame)  # whole grid points held out
    priced = predict_measurements(validation_measurements(test, "cpu"), calibrate(train, result.profile))
    assert float(priced["error"].abs().median()) < 0.6


def test_validate_needs_points():
    # too few timed ops to fit: tests/test_calibrate.py (the fit is rooflax calibrate's)
    with pytest.raises(rooflax.SpecError, match=r"^points: expected at least one"):
        validate(model=TINY, points=(), quick=True)


@pytest.mark.slow
def test_points_that_do_not_fit_are_skipped_when_asked(monkeypatch):
    from rooflax.validate import run
    from rooflax.validate.kernels import TIMED_OPS, needed_bytes

    small, large = ("decode", 1, 32, None), ("prefill", 4, 256, None)
    need = {
        p: max(
            needed_bytes(
                kernel_for(op, TINY, batch=p[1], new=1 if p[0] == "decode" else p[2], attended=p[2]), "fp32", 1
            )
            for op in TIMED_OPS
        )
        for p in (small, large)
    }
    memory = 2 * need[small] / 0.8  # the small point fits in 80% of it, the large one does not
    assert need[large] > 0.8 * memory
    info = run.detect_device()
    monkeypatch.setattr(
        run,
        "detect_device",
        lambda **_: dataclasses.replace(info, platform="cpu", kind="cpu", preset=None, memory_bytes=memory),
    )
    lines = []
    result = validate(
        model=TINY,
        points=(small, large),
        repeats=1,
        matmul_n=64,
        copy_bytes=2**16,
        rotate_bytes=1,
        skip_unfit=True,
        progress=lines.append,
    )
    assert set(result.frame.select("phase", "batch", "seq_len").rows()) == {small[:3]}
    assert any(line.startswith("skipped: validate: prefill B=4 S=256: ") for line in lines)
    with pytest.raises(rooflax.DeviceError, match="prefill B=4 S=256"):
        validate(model=TINY, points=(small, large), repeats=1, matmul_n=64, copy_bytes=2**16, rotate_bytes=1)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("model = 'mixtral-8x7b'", "--spec: model 'mixtral-8x7b' is a mixture of experts; validate times dense"),
        ("model = 'qwen1.5-moe-a2.7b'", "--spec: model 'qwen1.5-moe-a2.7b' is a mixture of experts"),
        ("model = 'toy-llama'\n[axes]\ntp = [2]", "--spec: tp = [2]; validate times single-device products"),
        ("model = 'toy-llama'\n[axes]\npp = [1, 2]", "--spec: pp = [1, 2]; validate times single-device products"),
    ],
)
def test_validate_refuses_specs_it_cannot_time(tmp_path, monkeypatch, capsys, spec, message):
    from rooflax.validate import run

    monkeypatch.setattr(run, "validate", lambda **kwargs: pytest.fail("validate ran"))
    text = spec if "[axes]" in spec else spec + "\n[axes]"
    (tmp_path / "s.toml").write_text(text + "\nbatch = [1]\nseq_len = [64]\n")
    assert main(["validate", "--spec", str(tmp_path / "s.toml"), "-o", str(tmp_path / "v.parquet"), "--quick"]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.toml"]


@pytest.mark.parametrize(
    ("spec_dtype", "given", "timed", "note"),
    [
        ("'fp16'", None, "fp16", None),
        ("'bf16'", None, "bf16", None),
        ("'fp16'", "fp32", "fp32", "dtype: the spec sweeps fp16; timing fp32 as --dtype asks"),
        ("'int8'", None, None, "dtype: the spec sweeps int8, which validate cannot run; timing the device's default"),
        ("['fp16', 'bf16']", None, None, "dtype: the spec sweeps several (fp16, bf16); timing the device's default"),
    ],
)
def test_validate_times_the_specs_dtype_or_says_why_not(tmp_path, monkeypatch, capsys, spec_dtype, given, timed, note):
    from rooflax.validate import run

    seen = []

    def record(**kwargs):
        seen.append(kwargs)
        raise rooflax.DeviceError("stop")

    monkeypatch.setattr(run, "validate", record)
    (tmp_path / "s.toml").write_text(
        f"model = 'toy-llama'\nhardware = 'h100-sxm'\ndtype = {spec_dtype}\n[axes]\nbatch = [1]\nseq_len = [64]\n"
    )
    argv = ["validate", "--spec", str(tmp_path / "s.toml"), "-o", str(tmp_path / "v.parquet"), "--quick"]
    assert main(argv + (["--dtype", given] if given else [])) == 2
    assert seen[0]["dtype"] == timed
    err = capsys.readouterr().err
    assert (note in err) if note else ("dtype:" not in err)


@pytest.mark.slow
@pytest.mark.parametrize("raised", [True, False])
def test_a_raised_ceiling_is_said_in_the_profile_and_the_table(tmp_path, capsys, monkeypatch, raised):
    """The fit raises a ceiling the timed ops beat: the profile file and the printed table say by how much."""
    from dataclasses import replace

    from rooflax.validate import run

    real = run.validate

    def faster(**kwargs):
        result = real(**kwargs)
        scale = 39.0 if raised else 1.0
        calibrated = replace(result.profile, bandwidth_bytes_per_s=result.profile.bandwidth_bytes_per_s * scale)
        return replace(result, calibrated=calibrated)

    monkeypatch.setattr(run, "validate", faster)
    spec, profile = tmp_path / "s.toml", tmp_path / "p.toml"
    spec.write_text(
        "model = 'toy-llama'\ndtype = 'fp32'\nphases = ['decode']\n[axes]\nbatch = [1, 8]\nseq_len = [128]\n"
    )
    assert (
        main(
            [
                "validate",
                "--spec",
                str(spec),
                "--quick",
                "--max-points",
                "2",
                "-o",
                str(tmp_path / "v.parquet"),
                "--profile",
                str(profile),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    text = profile.read_text()
    hw = rooflax.load_hardware(profile)
    copy = hw.bandwidth_bytes_per_s / (39.0 if raised else 1.0)
    line = (
        f"bandwidth_bytes_per_s = {hw.bandwidth_bytes_per_s / 1e9:.4g} GB/s is 39× the measured copy "
        f"({copy / 1e9:.4g} GB/s)"
    )
    assert (f"# {line}" in text) is raised and (f"note: profile {line}" in out) is raised
