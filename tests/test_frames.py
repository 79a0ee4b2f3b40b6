"""Sweeps into frames: schema, point-by-point equality, chunking, devices, compile cache."""

from __future__ import annotations

import jax
import polars as pl
import pytest
from compiles import compilations
from devices import on_devices
from polars.testing import assert_frame_equal

import rooflax
from rooflax.data.frames import OPS_SCHEMA, SUMMARY_SCHEMA

SMALL = dict(
    model=["llama-13b", "llama-3-8b"],
    hardware=["a40", "h100-sxm"],
    dtype=["fp16", "bf16"],
    phases=["prefill", "decode", "verify"],
    batch=[1, 3, 16],
    seq_len=[8, 40, 100],
    spec_k=[4, 48],
)


def test_schema_is_the_frame_contract():
    df = rooflax.sweep()
    assert df.schema == OPS_SCHEMA
    assert list(df.columns) == [
        "model",
        "hardware",
        "dtype",
        "batch",
        "seq_len",
        "hidden",
        "tp",
        "pp",
        "ep",
        "spec_k",
        "phase",
        "layer",
        "op",
        "group",
        "flops",
        "bytes",
        "intensity",
        "attainable_flops",
        "time_s",
        "achieved_flops",
        "achieved_time_s",
        "bound",
    ]
    assert df.height == 7 * 7 * 2 * 15  # batch × seq_len × phases × ops
    assert rooflax.sweep(summary=True).schema == SUMMARY_SCHEMA


def test_small_sweep_equals_point_by_point():
    df = rooflax.sweep(**SMALL)
    seen = 0
    for (model, hw, dtype, phase, k, b, s), rows in df.group_by(
        "model", "hardware", "dtype", "phase", "spec_k", "batch", "seq_len", maintain_order=True
    ):
        point = rooflax.evaluate(model=model, hardware=hw, dtype=dtype, phase=phase, batch=b, seq_len=s, spec_k=k)
        assert rows.get_column("op").cast(pl.String).to_list() == list(point["ops"])
        for row in rows.iter_rows(named=True):
            want = point["ops"][row["op"]]
            assert row["group"] == want["group"] and row["bound"] == want["bound"]
            for col in ("flops", "bytes", "intensity", "attainable_flops", "time_s"):
                assert row[col] == pytest.approx(want[col], rel=1e-12), col
            seen += 1
    assert seen == df.height
    # verify rows only where seq_len >= spec_k; spec_k null outside verify
    verify = df.filter(phase="verify")
    assert (verify.get_column("seq_len") >= verify.get_column("spec_k")).all()
    assert verify.filter(spec_k=48).get_column("seq_len").unique().to_list() == [100]
    assert (
        df.filter(pl.col("phase") != "verify").get_column("spec_k").null_count()
        == df.filter(pl.col("phase") != "verify").height
    )


def test_summary_equals_point_totals():
    df = rooflax.sweep(**SMALL, summary=True)
    for row in df.iter_rows(named=True):
        point = rooflax.evaluate(
            model=row["model"],
            hardware=row["hardware"],
            dtype=row["dtype"],
            phase=row["phase"],
            batch=row["batch"],
            seq_len=row["seq_len"],
            spec_k=row["spec_k"],
        )["totals"]
        for col, want in point.items():
            assert row[col] == pytest.approx(want, rel=1e-12), col


@pytest.mark.slow
@pytest.mark.parametrize("chunk_size", [1, 5, 64, 1 << 16])
def test_chunk_size_does_not_change_results(chunk_size):
    """The same rows; within a chunk they come op by op, so their order follows the chunks."""
    keys = ["model", "hardware", "dtype", "tp", "pp", "ep", "phase", "spec_k", "batch", "seq_len", "hidden", "op"]
    got, expected = rooflax.sweep(**SMALL, chunk_size=chunk_size), rooflax.sweep(**SMALL)
    assert got.sort(keys).equals(expected.sort(keys))


def test_hidden_scaling_follows_llama_rule():
    df = rooflax.sweep(phases=["decode"], batch=[1], seq_len=[16], hidden=[4096, 5120, 6656, 8192], summary=True)
    for hidden, row in zip([4096, 5120, 6656, 8192], df.iter_rows(named=True), strict=True):
        scaled = rooflax.get_model("llama-13b").at_hidden(hidden)
        assert row["hidden"] == hidden
        assert row["weight_bytes"] == 2 * scaled.params
    assert [rooflax.get_model("llama-13b").at_hidden(h).intermediate for h in (4096, 5120, 6656, 8192)] == [
        11008,
        13824,
        17920,
        22016,
    ]


@pytest.mark.slow
def test_second_sweep_does_not_recompile():
    with compilations() as forced:
        jax.jit(lambda x: x * 3)(1.0)  # a new function: the capture sees it traced and compiled
    assert any(message.startswith("Compiling ") for message in forced), forced
    rooflax.sweep(**SMALL)
    with compilations() as second:
        rooflax.sweep(**{**SMALL, "batch": [2, 5, 9]})  # same shapes, other values
    assert second == []


def test_in_memory_limit_is_a_clear_error():
    with pytest.raises(rooflax.SpecError, match=r"would take about .* GiB in memory.*stream it to parquet"):
        rooflax.sweep(batch={"start": 1, "stop": 10_000, "step": 1}, seq_len={"start": 1, "stop": 10_000, "step": 1})


def _on(monkeypatch, devices: int, **keys) -> pl.DataFrame:
    """The sweep of ``keys`` sharded over ``devices`` of the test process's CPU devices (and checked to be)."""
    spread = on_devices(monkeypatch, devices)
    df = rooflax.sweep(**keys)
    assert spread and set(spread) == {devices}, spread
    return df


def test_four_devices_give_identical_results(monkeypatch):
    one = _on(monkeypatch, 1, **SMALL, chunk_size=7)
    assert_frame_equal(_on(monkeypatch, 4, **SMALL, chunk_size=7), one, check_exact=True)


# One layout holding every collective (each layout is a compile of its own): tp's all-reduces, pp's send.
LAYOUTS = dict(
    model=["llama-13b"],
    hardware=["a100-80gb-sxm"],
    tp=[4],
    pp=[2],
    phases=["prefill", "decode"],
    batch=[1, 2, 5],
    seq_len=[9, 100],
)


@pytest.mark.slow
def test_collectives_are_identical_on_three_devices(monkeypatch):
    """Link latencies are multiplied on the host: XLA must not fuse them differently per device count."""
    for summary in (False, True):
        one = _on(monkeypatch, 1, **LAYOUTS, chunk_size=7, summary=summary)
        comm = set(one.filter(group="comm").get_column("op").cast(pl.String)) if not summary else None
        assert summary or comm == {"attn_allreduce", "mlp_allreduce", "pp_send"}
        assert_frame_equal(_on(monkeypatch, 3, **LAYOUTS, chunk_size=7, summary=summary), one, check_exact=True)


def test_importing_rooflax_leaves_jax_config_alone():
    import jax

    rooflax.sweep(batch=[1], seq_len=[8])
    assert not jax.config.jax_enable_x64


# Dense with tensor and pipeline parallelism, and a mixture of experts with expert parallelism: every kind of
# op row (products, elementwise, collectives, the LM head, the pipeline send) on the memory and compute roofs.
AGREE = [
    dict(
        model="llama-2-70b",
        hardware="h100-sxm",
        phases=["prefill", "decode", "verify"],
        batch=[1, 16],
        seq_len=[512],
        spec_k=[8],
        tp=[2],
        pp=[2],
    ),
    dict(
        model="mixtral-8x7b", hardware="a40", phases=["prefill", "decode"], batch=[1, 64], seq_len=[256], tp=[2], ep=[2]
    ),
]


@pytest.mark.parametrize("keys", AGREE, ids=["dense-layouts", "moe"])
def test_engine_evaluate_and_frames_agree_on_every_row(keys):
    """One row function: the long frame's rows equal evaluate's bit for bit (collectives and bounds included),
    and the summary's totals (the same sums, fused differently by XLA) agree to rounding."""
    long, summary = rooflax.sweep(**keys), rooflax.sweep(**keys, summary=True)
    point = ("model", "hardware", "phase", "batch", "seq_len", "spec_k", "tp", "pp", "ep")
    for at, rows in long.group_by(*point, maintain_order=True):
        ops = rooflax.evaluate(**dict(zip(point, at, strict=True)))["ops"]
        assert rows.get_column("op").cast(pl.String).to_list() == list(ops)
        for row in rows.iter_rows(named=True):
            assert {name: row[name] for name in ops[row["op"]]} == ops[row["op"]], row["op"]
    assert set(long.get_column("bound")) == {"memory", "compute", "network"}
    for row in summary.iter_rows(named=True):
        totals = rooflax.evaluate(**{name: row[name] for name in point})["totals"]
        assert {name: row[name] for name in ("flops", "bytes", "fits_in_memory")} == {
            name: totals[name] for name in ("flops", "bytes", "fits_in_memory")
        }
        for name, want in totals.items():
            assert row[name] == pytest.approx(want, rel=1e-14, abs=0), name
