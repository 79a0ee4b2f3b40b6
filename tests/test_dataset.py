"""Streamed parquet datasets: contents, metadata, atomic output, resume."""

from __future__ import annotations

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import rooflax
from rooflax import dataset as dataset_module
from rooflax.frames import OPS_SCHEMA

KEYS = dict(phases=["prefill", "decode", "verify"], batch=[1, 2, 4, 8], seq_len=[16, 64, 256], spec_k=[16, 32],
            hardware=["a40", "l4"])


def test_dataset_equals_in_memory_frame(tmp_path):
    out = rooflax.sweep_to_parquet(None, tmp_path / "ds", chunk_size=5, **KEYS)
    assert sorted(p.name for p in out.iterdir()) == [f"part-{i:06d}.parquet" for i in range(len(list(out.iterdir())))]
    got = pl.scan_parquet(out).collect()
    assert got.schema == OPS_SCHEMA
    assert_frame_equal(got, rooflax.sweep(**KEYS), check_exact=True, categorical_as_str=True)
    assert not (tmp_path / "ds.partial").exists()


def test_metadata_explains_the_dataset(tmp_path):
    out = rooflax.sweep_to_parquet(None, tmp_path / "ds", summary=True, **KEYS)
    meta = rooflax.dataset_metadata(out)
    assert meta["version"] == rooflax.__version__ and meta["kind"] == "summary"
    assert meta["spec"]["axes"]["batch"] == [1, 2, 4, 8]
    assert meta["model"]["hidden"] == 5120 and meta["hardware"]["name"] in ("a40", "l4")
    assert meta["dtype"]["act_bytes"] == 2
    assert {h["name"] for h in meta["spec"]["hardware"]} == {"a40", "l4"}


def test_resume_after_interruption_equals_clean_run(tmp_path, monkeypatch):
    clean = rooflax.sweep_to_parquet(None, tmp_path / "clean", chunk_size=3, **KEYS)
    real = dataset_module.chunk_frame
    written = []

    def dies_after_four(chunk, spec, summary):
        if len(written) == 4:
            raise KeyboardInterrupt  # what a Ctrl-C or a kill leaves behind
        written.append(chunk.task.index)
        return real(chunk, spec, summary)

    monkeypatch.setattr(dataset_module, "chunk_frame", dies_after_four)
    with pytest.raises(KeyboardInterrupt):
        rooflax.sweep_to_parquet(None, tmp_path / "ds", chunk_size=3, **KEYS)
    monkeypatch.setattr(dataset_module, "chunk_frame", real)
    partial = tmp_path / "ds.partial"
    assert len(list(partial.glob("part-*.parquet"))) == 4 and not (tmp_path / "ds").exists()
    (partial / ".part-000099.parquet.tmp").write_bytes(b"half a file")  # a write cut off mid-way
    with pytest.raises(rooflax.SpecError, match="pass resume"):
        rooflax.sweep_to_parquet(None, tmp_path / "ds", chunk_size=3, **KEYS)
    with pytest.raises(rooflax.SpecError, match="different spec"):
        rooflax.sweep_to_parquet(None, tmp_path / "ds", chunk_size=3, resume=True, **{**KEYS, "batch": [1]})
    out = rooflax.sweep_to_parquet(None, tmp_path / "ds", chunk_size=3, resume=True, **KEYS)
    assert not list(out.glob(".*"))
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in clean.iterdir())
    assert_frame_equal(pl.scan_parquet(out).collect(), pl.scan_parquet(clean).collect(), check_exact=True,
                       categorical_as_str=True)


def test_existing_output_needs_overwrite(tmp_path):
    out = rooflax.sweep_to_parquet(None, tmp_path / "ds", batch=[1], seq_len=[8])
    with pytest.raises(rooflax.SpecError, match="already exists; pass overwrite"):
        rooflax.sweep_to_parquet(None, out, batch=[2], seq_len=[8])
    rooflax.sweep_to_parquet(None, out, overwrite=True, batch=[2], seq_len=[8])
    assert pl.scan_parquet(out).collect().get_column("batch").unique().to_list() == [2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]


def test_unknown_codec_is_a_clear_error(tmp_path):
    with pytest.raises(rooflax.SpecError, match="compression: unknown name 'lz5'; did you mean 'lz4'"):
        rooflax.sweep_to_parquet(None, tmp_path / "ds", compression="lz5", batch=[1], seq_len=[8])
    assert not list(tmp_path.iterdir())


def test_metadata_of_foreign_files_is_an_error(tmp_path):
    pl.DataFrame({"a": [1]}).write_parquet(tmp_path / "x.parquet")
    with pytest.raises(rooflax.SpecError, match="not written by rooflax"):
        rooflax.dataset_metadata(tmp_path / "x.parquet")
