"""Exporting datasets to CSV and NDJSON: streamed, atomic, never overwriting unasked."""

from __future__ import annotations

import json

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import rooflax
from rooflax.cli.commands import main

KEYS = dict(phases=["decode", "verify"], batch=[1, 8], seq_len=[64, 512], spec_k=[32])


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return rooflax.sweep_to_parquet(None, tmp_path_factory.mktemp("export") / "ds", chunk_size=3, **KEYS)


def test_csv_holds_every_row(dataset, tmp_path):
    out = tmp_path / "rows.csv"
    assert rooflax.export_dataset(dataset, out) == rooflax.check_dataset(dataset).rows
    expected = rooflax.sweep(**KEYS, chunk_size=3)
    got = pl.read_csv(
        out,
        schema_overrides={name: pl.String for name in ("model", "hardware", "dtype", "phase", "op", "group", "bound")},
    )
    assert got.height == expected.height == len(out.read_text().splitlines()) - 1
    assert_frame_equal(got, expected.with_columns(pl.col(pl.Enum).cast(pl.String)), check_dtypes=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rows.csv"]  # no temporary left behind


def test_ndjson_holds_every_row(dataset, tmp_path):
    out = tmp_path / "rows.ndjson"
    assert main(["export", str(dataset), "-o", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert len(lines) == rooflax.sweep(**KEYS).height
    first = json.loads(lines[0])
    assert first["model"] == "llama-13b" and first["phase"] == "decode" and first["spec_k"] is None
    assert isinstance(first["flops"], float) and isinstance(first["batch"], int)


def test_export_refuses_to_overwrite_and_bad_names(dataset, tmp_path, capsys):
    out = tmp_path / "rows.csv"
    out.write_text("keep me")
    assert main(["export", str(dataset), "-o", str(out)]) == 2
    assert (
        capsys.readouterr().err == f"error: output: {str(out)!r} already exists; pass overwrite (--overwrite) "
        "to replace it\n"
    )
    assert out.read_text() == "keep me"
    assert main(["export", str(dataset), "-o", str(out), "--overwrite", "--quiet"]) == 0
    assert pl.read_csv(out).height == rooflax.check_dataset(dataset).rows and capsys.readouterr().out == ""
    assert main(["export", str(dataset), "-o", str(tmp_path / "rows.xlsx")]) == 2
    assert "has format '.xlsx'; allowed: .csv, .ndjson" in capsys.readouterr().err


def test_export_of_an_incomplete_dataset_writes_nothing(dataset, tmp_path, capsys):
    broken = tmp_path / "broken"
    broken.mkdir()
    for part in sorted(dataset.iterdir())[1:]:
        (broken / part.name).write_bytes(part.read_bytes())
    assert main(["export", str(broken), "-o", str(tmp_path / "rows.csv")]) == 2
    assert "part-000000.parquet' is missing" in capsys.readouterr().err
    assert not (tmp_path / "rows.csv").exists()
