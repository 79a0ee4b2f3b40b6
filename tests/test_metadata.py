"""Self-describing datasets: axes as given, units and scope per column, numbers as numbers, provenance."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

import rooflax
from rooflax.cli.commands import main
from rooflax.data.frames import OPS_SCHEMA, SUMMARY_SCHEMA
from rooflax.errors import SpecError

SPEC = """\
phases = ["decode"]
[axes]
batch = { start = 1, stop = 1024, step = 1 }
seq_len = { start = 128, stop = 512, powers_of = 2 }
"""


@pytest.mark.slow
def test_metadata_round_trip(tmp_path):
    (tmp_path / "s.toml").write_text(SPEC)
    before = datetime.now(UTC).replace(microsecond=0)
    out = rooflax.sweep_to_parquet(tmp_path / "s.toml", tmp_path / "ds", chunk_size=500, command="made by a test")
    meta = rooflax.dataset_metadata(out)
    assert meta["axes"] == {
        "batch": {"start": 1, "stop": 1024, "step": 1},
        "seq_len": {"start": 128, "stop": 512, "powers_of": 2},
        "hidden": None,
        "spec_k": None,
    }
    # the expanded spec (resume and the identity checks compare it) keeps evenly spaced axes as tables, so its size
    # follows the axes, not their values; other axes as their values
    assert meta["spec"]["axes"]["batch"] == {"start": 1, "stop": 1024, "step": 1}
    assert meta["spec"]["axes"]["seq_len"] == [128, 256, 512]
    assert rooflax.SweepSpec.from_dict(meta["spec"]).batch == tuple(range(1, 1025))
    assert meta["command"] == "made by a test"
    assert before <= datetime.fromisoformat(meta["created"]) <= datetime.now(UTC) + timedelta(seconds=1)
    for key in ("part", "parts", "rows", "chunk_size"):
        assert type(meta[key]) is int, key
    assert meta["chunk_size"] == 500 and meta["parts"] == len(list(out.iterdir()))
    assert meta["rows"] == pl.read_parquet(out / "part-000000.parquet").height
    raw = pl.read_parquet_metadata(out / "part-000000.parquet")
    assert raw["rooflax.rows"] == str(meta["rows"]) and json.loads(raw["rooflax.axes"]) == meta["axes"]


@pytest.mark.parametrize("summary", [False, True])
def test_every_column_has_a_unit_and_scope(tmp_path, summary):
    out = rooflax.sweep_to_parquet(None, tmp_path / "ds", summary=summary, batch=[1], seq_len=[64])
    columns = rooflax.dataset_metadata(out)["columns"]
    assert list(columns) == list((SUMMARY_SCHEMA if summary else OPS_SCHEMA).names())
    assert all(set(entry) == {"unit", "scope"} and entry["scope"] for entry in columns.values())
    assert columns["time_s"]["unit"] == "s" and columns["flops"]["unit"] == "FLOP"
    if summary:
        assert "whole model" in columns["flops"]["scope"] and columns["tokens_per_s"]["unit"] == "token/s"
    else:
        assert columns["flops"]["scope"].startswith("one layer") and "lm_head" in columns["flops"]["scope"]


def test_cli_records_its_command_line(tmp_path):
    out = str(tmp_path / "ds")
    assert main(["sweep", "-o", out, "--batch", "1,8", "--seq-len", "128", "--quiet"]) == 0
    meta = rooflax.dataset_metadata(out)
    assert meta["command"] == f"rooflax sweep -o {out} --batch 1,8 --seq-len 128 --quiet"
    assert meta["axes"]["batch"] == [1, 8]


def test_axes_as_given_survive_with_keys_and_ranges():
    spec = rooflax.parse_spec(batch=range(1, 65), seq_len={"start": 128, "stop": 4096, "step": 128})
    assert spec.axes_as_given()["batch"] == {"start": 1, "stop": 64, "step": 1}
    changed = spec.with_keys(batch=[2, 4])
    assert changed.axes_as_given() == {
        "batch": [2, 4],
        "seq_len": {"start": 128, "stop": 4096, "step": 128},
        "hidden": None,
        "spec_k": None,
    }
    assert changed == rooflax.parse_spec(batch=[2, 4], seq_len=list(range(128, 4097, 128)))  # not in the identity
    built = rooflax.SweepSpec(
        models=spec.models, hardware=spec.hardware, dtypes=spec.dtypes, phases=("decode",), batch=(1, 2), seq_len=(8,)
    )
    assert built.axes_as_given()["batch"] == [1, 2]
    with pytest.raises(SpecError, match=r"given_axes: batch = \[1, 3\] does not give the spec's batch axis"):
        rooflax.SweepSpec(
            models=spec.models,
            hardware=spec.hardware,
            dtypes=spec.dtypes,
            phases=("decode",),
            batch=(1, 2),
            seq_len=(8,),
            given_axes={"batch": [1, 3]},
        )
