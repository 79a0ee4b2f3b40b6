"""read_measurements: aiconfigurator tables and validate results as one frame of measured-op rows."""

from __future__ import annotations

import polars as pl
import pytest

from rooflax.calibration.measurements import MEASUREMENT_SCHEMA, fastest_kernels, read_measurements
from rooflax.errors import SpecError
from rooflax.validate import validate

H100 = "NVIDIA H100 80GB HBM3"
_COMMON = {"framework": "VLLM", "version": "0.24.0", "device": H100}


def _table(path, op_name, kernel, rows):
    """An aiconfigurator-style table: the common columns plus ``rows`` (a list of dicts)."""
    frame = pl.DataFrame([{**_COMMON, "op_name": op_name, "kernel_source": kernel, **row} for row in rows])
    frame.write_parquet(path)
    return path


def _gemm(path, rows):
    return _table(
        path,
        "gemm",
        "torch.nn.functional.linear",
        [{"gemm_dtype": d, "m": m, "n": n, "k": k, "latency": ms} for d, m, n, k, ms in rows],
    )


def _attention(path, op_name, rows, kernel="vllm_flash_attn_fa3"):
    return _table(
        path,
        op_name,
        kernel,
        [
            {
                "batch_size": b,
                "isl": isl,
                "num_heads": 32,
                "num_key_value_heads": 8,
                "head_dim": 128,
                "beam_width": 1,
                "attn_dtype": "bfloat16",
                "kv_cache_dtype": kv,
                "step": step,
                "window_size": window,
                "latency": ms,
            }
            for b, isl, step, kv, window, ms in rows
        ],
    )


def test_gemm_rows_in_seconds_with_the_median_of_repeats(tmp_path):
    path = _gemm(
        tmp_path / "gemm_perf.parquet",
        [
            ("bfloat16", 8, 4096, 4096, 0.010),
            ("bfloat16", 8, 4096, 4096, 0.030),
            ("bfloat16", 8, 4096, 4096, 0.020),
            ("fp8", 16, 1024, 512, 0.004),
        ],
    )
    frame = read_measurements(path)
    assert frame.schema == MEASUREMENT_SCHEMA
    assert frame.select("hardware", "kind", "dtype", "m", "n", "k", "repeats").rows() == [
        ("h100-sxm", "gemm", "bf16", 8, 4096, 4096, 3),
        ("h100-sxm", "gemm", "fp8", 16, 1024, 512, 1),
    ]
    assert frame.get_column("measured_time_s").to_list() == pytest.approx([20e-6, 4e-6], rel=1e-12)
    assert frame.get_column("kernel").unique().to_list() == ["torch.nn.functional.linear"]
    assert frame.get_column("source").unique().to_list() == [str(path)]


def test_attention_tokens_follow_the_sweep_convention(tmp_path):
    prefill = _attention(
        tmp_path / "context_attention_perf.parquet", "context_attention", [(4, 2048, 0, "bfloat16", 0, 1.5)]
    )
    decode = _attention(
        tmp_path / "generation_attention_perf.parquet", "generation_attention", [(64, 1, 1023, "fp8", 128, 0.05)]
    )
    frame = read_measurements([prefill, decode])
    rows = {r["kind"]: r for r in frame.iter_rows(named=True)}
    p, d = rows["attention_prefill"], rows["attention_decode"]
    assert (p["batch"], p["seq_len"], p["new_tokens"], p["heads"], p["kv_heads"], p["head_dim"], p["window"]) == (
        4,
        2048,
        2048,
        32,
        8,
        128,
        0,
    )
    assert (p["dtype"], p["kv_dtype"], p["measured_time_s"]) == ("bf16", "bf16", pytest.approx(1.5e-3))
    # decode: 1023 tokens already cached, so the new token attends 1024 (a sweep's seq_len after the step)
    assert (d["batch"], d["seq_len"], d["new_tokens"], d["window"], d["kv_dtype"]) == (64, 1024, 1, 128, "fp8")


def test_collective_messages_are_counted_in_bytes(tmp_path):
    path = _table(
        tmp_path / "nccl_perf.parquet",
        "all_reduce",
        "NCCL",
        [
            {"nccl_dtype": "half", "num_gpus": 8, "message_size": 1 << 20, "latency": 0.1},
            {"nccl_dtype": "int8", "num_gpus": 2, "message_size": 3000, "latency": 0.02},
        ],
    )
    frame = read_measurements(path)
    assert sorted(frame.select("kind", "dtype", "gpus", "message_bytes").rows()) == [
        ("all_reduce", "fp16", 8, 2 << 20),
        ("all_reduce", "int8", 2, 3000),
    ]


def test_moe_rows(tmp_path):
    path = _table(
        tmp_path / "moe_perf.parquet",
        "moe",
        "vllm_fused_moe",
        [
            {
                "moe_dtype": "bfloat16",
                "num_tokens": 128,
                "hidden_size": 4096,
                "inter_size": 1536,
                "topk": 8,
                "num_experts": 128,
                "moe_tp_size": 1,
                "moe_ep_size": 4,
                "distribution": "balanced",
                "latency": 0.25,
            }
        ],
    )
    row = read_measurements(path).row(0, named=True)
    assert (
        row["kind"],
        row["tokens"],
        row["hidden"],
        row["intermediate"],
        row["topk"],
        row["experts"],
        row["moe_tp"],
        row["moe_ep"],
        row["distribution"],
    ) == ("moe", 128, 4096, 1536, 8, 128, 1, 4, "balanced")
    assert row["m"] is None and row["gpus"] is None


def test_a_folder_reads_every_table_under_it_and_hardware_overrides_the_device(tmp_path):
    (tmp_path / "gpu").mkdir()
    _gemm(tmp_path / "gpu" / "gemm_perf.parquet", [("bfloat16", 1, 2, 3, 1.0)])
    _attention(
        tmp_path / "gpu" / "generation_attention_perf.parquet", "generation_attention", [(1, 1, 0, "bfloat16", 0, 1.0)]
    )
    frame = read_measurements(tmp_path, hardware="my-gpu")
    assert sorted(frame.get_column("kind").to_list()) == ["attention_decode", "gemm"]
    assert frame.get_column("hardware").unique().to_list() == ["my-gpu"]


def test_fastest_kernel_per_shape(tmp_path):
    a = _attention(
        tmp_path / "a.parquet", "generation_attention", [(8, 1, 511, "bfloat16", 0, 0.02)], kernel="vllm_flash_attn_fa3"
    )
    b = _attention(
        tmp_path / "b.parquet",
        "generation_attention",
        [(8, 1, 511, "bfloat16", 0, 0.03), (8, 1, 1023, "bfloat16", 0, 0.01)],
        kernel="vllm_flash_attn_fa4",
    )
    fastest = fastest_kernels(read_measurements([a, b]))
    assert fastest.select("seq_len", "kernel", "measured_time_s").rows() == [
        (512, "vllm_flash_attn_fa3", pytest.approx(2e-5)),
        (1024, "vllm_flash_attn_fa4", pytest.approx(1e-5)),
    ]


@pytest.mark.slow
def test_a_validation_result_reads_as_measured_op_rows(tmp_path):
    validation = validate(points=(("decode", 1, 64, None),), quick=True, repeats=1).frame
    path = tmp_path / "v.parquet"
    validation.write_parquet(path)
    frame = read_measurements(path, hardware="cpu-measured")
    assert frame.height == validation.height
    assert sorted(frame.get_column("kind").to_list()) == sorted(validation.get_column("op").to_list())
    assert (
        frame.get_column("measured_time_s").sort().to_list()
        == validation.get_column("measured_time_s").sort().to_list()
    )
    assert set(frame.select("phase", "batch", "seq_len").rows()) == {("decode", 1, 64)}
    with pytest.raises(SpecError, match="has no preset; give hardware="):
        read_measurements(path)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: pl.DataFrame({"a": [1]}).write_parquet(p), "neither an aiconfigurator table"),
        (lambda p: p.write_text("not parquet"), "cannot read it as parquet"),
        (
            lambda p: pl.DataFrame(
                [
                    {
                        **_COMMON,
                        "op_name": "gemm",
                        "kernel_source": "x",
                        "gemm_dtype": "bfloat16",
                        "m": 1,
                        "n": 1,
                        "latency": 1.0,
                    }
                ]
            ).write_parquet(p),
            "need column 'k'",
        ),
        (
            lambda p: pl.DataFrame(
                [{**_COMMON, "op_name": "gemmm", "kernel_source": "x", "latency": 1.0}]
            ).write_parquet(p),
            "unknown table 'gemmm'; did you mean 'gemm'",
        ),
        (
            lambda p: pl.DataFrame(
                [
                    {
                        **_COMMON,
                        "device": "NVIDIA X100",
                        "op_name": "gemm",
                        "kernel_source": "x",
                        "gemm_dtype": "bfloat16",
                        "m": 1,
                        "n": 1,
                        "k": 1,
                        "latency": 1.0,
                    }
                ]
            ).write_parquet(p),
            "device 'NVIDIA X100' is no GPU rooflax has a preset for",
        ),
        (
            lambda p: pl.DataFrame(
                [
                    {
                        **_COMMON,
                        "op_name": "all_reduce",
                        "kernel_source": "NCCL",
                        "nccl_dtype": "fp4",
                        "num_gpus": 2,
                        "message_size": 8,
                        "latency": 1.0,
                    }
                ]
            ).write_parquet(p),
            "unknown element type 'fp4'",
        ),
        (
            lambda p: pl.DataFrame(
                [
                    {
                        **_COMMON,
                        "op_name": "gemm",
                        "kernel_source": "x",
                        "gemm_dtype": "bfloat16",
                        "m": 1,
                        "n": 1,
                        "k": 1,
                        "latency": -1.0,
                    }
                ]
            ).write_parquet(p),
            "no positive finite time",
        ),
        (
            lambda p: pl.DataFrame(
                [
                    {
                        **_COMMON,
                        "op_name": "gemm",
                        "kernel_source": "x",
                        "gemm_dtype": "bfloat16",
                        "m": 0,
                        "n": 1,
                        "k": 1,
                        "latency": 1.0,
                    }
                ]
            ).write_parquet(p),
            "m must be positive",
        ),
    ],
)
def test_bad_files_get_one_line_naming_the_file(tmp_path, make, message):
    path = tmp_path / "t.parquet"
    make(path)
    with pytest.raises(SpecError, match=message) as info:
        read_measurements(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("paths", "message"),
    [
        (None, "expected parquet files or folders"),
        ([], "no paths given"),
        ("missing.parquet", "does not exist"),
        ([1], "expected a file or folder path"),
    ],
)
def test_bad_paths(tmp_path, paths, message):
    with pytest.raises(SpecError, match=message):
        read_measurements(paths)


def test_an_empty_folder_is_refused(tmp_path):
    with pytest.raises(SpecError, match=r"holds no \.parquet file"):
        read_measurements(tmp_path)
