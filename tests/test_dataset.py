"""Streamed parquet datasets: contents, metadata, atomic output, resume."""

from __future__ import annotations

import datetime
import errno
import fcntl
import json
import os
import re
import shutil
from pathlib import Path

import polars as pl
import pytest
from locks import lock_held_elsewhere
from polars.testing import assert_frame_equal

import rooflax
from rooflax.data import dataset as dataset_module
from rooflax.data.frames import OPS_SCHEMA

KEYS = dict(
    phases=["prefill", "decode", "verify"],
    batch=[1, 2, 4, 8],
    seq_len=[16, 64, 256],
    spec_k=[16, 32],
    hardware=["a40", "l4"],
)


def test_dataset_equals_in_memory_frame(tmp_path):
    out = rooflax.sweep_to_parquet(None, tmp_path / "ds", chunk_size=5, **KEYS)
    assert sorted(p.name for p in out.iterdir()) == [f"part-{i:06d}.parquet" for i in range(len(list(out.iterdir())))]
    got = pl.scan_parquet(out).collect()
    assert got.schema == OPS_SCHEMA
    assert_frame_equal(got, rooflax.sweep(**KEYS, chunk_size=5), check_exact=True, categorical_as_str=True)
    assert not (tmp_path / "ds.partial").exists()


def test_metadata_explains_the_dataset(tmp_path):
    out = rooflax.sweep_to_parquet(None, tmp_path / "ds", summary=True, **KEYS)
    meta = rooflax.dataset_metadata(out)
    assert meta["version"] == rooflax.__version__ and meta["kind"] == "summary"
    assert meta["spec"]["axes"]["batch"] == [1, 2, 4, 8]
    assert meta["model"]["hidden"] == 5120 and meta["hardware"]["name"] in ("a40", "l4")
    assert meta["dtype"]["act_bytes"] == 2
    assert {h["name"] for h in meta["spec"]["hardware"]} == {"a40", "l4"}


@pytest.mark.slow
def test_resume_after_interruption_equals_clean_run(tmp_path, monkeypatch):
    clean = rooflax.sweep_to_parquet(None, tmp_path / "clean", chunk_size=3, **KEYS)
    started = rooflax.dataset_metadata(clean)["created"]

    class Later(datetime.datetime):  # the interrupted run starts an hour after the clean one
        @classmethod
        def now(cls, tz=None):
            return datetime.datetime.fromisoformat(started) + datetime.timedelta(hours=1)

    monkeypatch.setattr(dataset_module, "datetime", Later)
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
    with pytest.raises(rooflax.SpecError, match="chunk size"):
        rooflax.sweep_to_parquet(None, tmp_path / "ds", chunk_size=4, resume=True, **KEYS)
    manifest = partial / ".rooflax-run.json"
    kept = manifest.read_text()
    older = json.loads(kept)
    del older["rows"]  # a partial written before rows came op by op: never continued in another order
    manifest.write_text(json.dumps(older, sort_keys=True))
    with pytest.raises(rooflax.SpecError, match="rooflax version"):
        rooflax.sweep_to_parquet(None, tmp_path / "ds", chunk_size=3, resume=True, **KEYS)
    manifest.write_text(kept)
    monkeypatch.setattr(dataset_module, "datetime", datetime.datetime)  # resumed later still: a real clock
    out = rooflax.sweep_to_parquet(None, tmp_path / "ds", resume=True, **KEYS)  # the interrupted run's chunk size
    created = {pl.read_parquet_metadata(p)["rooflax.created"] for p in out.iterdir()}
    assert created == {
        json.dumps(
            (datetime.datetime.fromisoformat(started) + datetime.timedelta(hours=1)).isoformat(timespec="seconds")
        )
    }  # one run, one start time, on every part
    monkeypatch.setattr(dataset_module, "datetime", Later)
    clean = rooflax.sweep_to_parquet(None, tmp_path / "clean", chunk_size=3, overwrite=True, **KEYS)
    assert not list(out.glob(".*"))
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in clean.iterdir())
    assert all((out / p.name).read_bytes() == p.read_bytes() for p in clean.iterdir())  # byte-identical parts
    assert_frame_equal(
        pl.scan_parquet(out).collect(), pl.scan_parquet(clean).collect(), check_exact=True, categorical_as_str=True
    )


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


# --- reading: a damaged dataset is an error naming the file --------------------------------------------------------

SMALL = dict(phases=["prefill", "decode"], batch=[1, 2, 4], seq_len=[16, 64])


def _whole(tmp_path):
    out = rooflax.sweep_to_parquet(None, tmp_path / "ds", chunk_size=2, **SMALL)
    assert len(list(out.iterdir())) == 6  # 2 phases × 6 points (3 batch × 2 seq_len), 2 points a part
    return out


def _foreign_sweep(tmp_path, part):
    other = rooflax.sweep_to_parquet(None, tmp_path / "other", chunk_size=2, **{**SMALL, "batch": [1, 2, 8]})
    part.write_bytes((other / part.name).read_bytes())


def _rows_cut(tmp_path, part):
    meta = pl.read_parquet_metadata(part)
    pl.read_parquet(part).head(1).write_parquet(part, metadata={k: v for k, v in meta.items() if k != "ARROW:schema"})


@pytest.mark.slow
@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda tmp, part: part.unlink(), r"part-000001\.parquet' is missing \(5 of 6 parts present\)"),
        (lambda tmp, part: part.write_bytes(b""), r"part-000001\.parquet' is empty \(0 bytes\)"),
        (
            lambda tmp, part: part.write_bytes(part.read_bytes()[:-200]),
            r"part-000001\.parquet' is not a readable parquet",
        ),
        (_foreign_sweep, r"part-000001\.parquet' belongs to another sweep \(its spec differs"),
        (lambda tmp, part: pl.DataFrame({"a": [1]}).write_parquet(part), r"part-000001\.parquet' was not written by"),
        (
            lambda tmp, part: part.write_bytes((part.parent / "part-000000.parquet").read_bytes()),
            r"part-000001\.parquet' holds part 0 of its sweep, not the part its name says",
        ),
        (_rows_cut, r"part-000001\.parquet' holds 1 rows; its sweep wrote \d+"),
        (
            lambda tmp, part: pl.DataFrame({"a": [1]}).write_parquet(part.parent / "extra.parquet"),
            r"extra\.parquet' is not a part of a rooflax dataset",
        ),
    ],
)
def test_damaged_dataset_is_an_error_naming_the_file(tmp_path, damage, message):
    out = _whole(tmp_path)
    rows = pl.scan_parquet(out).collect().height
    damage(tmp_path, out / "part-000001.parquet")
    with pytest.raises(rooflax.SpecError, match=message) as info:
        rooflax.scan_dataset(out)
    assert str(info.value).startswith("dataset: ") and "\n" not in str(info.value)
    with pytest.raises(rooflax.SpecError, match=message):
        rooflax.dataset_metadata(out)
    assert rows == rooflax.sweep(**SMALL).height


def test_scan_dataset_reads_a_whole_dataset_or_one_part(tmp_path):
    out = _whole(tmp_path)
    expected = rooflax.sweep(**SMALL, chunk_size=2)
    info = rooflax.check_dataset(out)
    assert info.rows == expected.height and [p.name for p in info.parts] == sorted(p.name for p in out.iterdir())
    assert_frame_equal(rooflax.scan_dataset(out).collect(), expected, check_exact=True, categorical_as_str=True)
    part = out / "part-000002.parquet"
    assert rooflax.scan_dataset(part).collect().height == pl.read_parquet(part).height > 0


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda tmp: Path(__file__).parent.parent / "README.md", r"README\.md' is not a readable parquet file"),
        (lambda tmp: tmp, r"holds no part-NNNNNN\.parquet files"),
        (lambda tmp: tmp / "nothing", r"does not exist"),
        (lambda tmp: "", r"expected a dataset folder or part file path, got ''"),
    ],
)
def test_what_is_not_a_dataset(tmp_path, make, message):
    with pytest.raises(rooflax.SpecError, match=message):
        rooflax.scan_dataset(make(tmp_path))


def test_an_unfinished_sweep_is_not_a_dataset(tmp_path, monkeypatch):
    monkeypatch.setattr(dataset_module, "chunk_frame", _dies_after(2))
    with pytest.raises(KeyboardInterrupt):
        rooflax.sweep_to_parquet(None, tmp_path / "ds", chunk_size=2, **SMALL)
    with pytest.raises(rooflax.SpecError, match=r"ds\.partial' is an unfinished sweep; run the same sweep with"):
        rooflax.scan_dataset(tmp_path / "ds.partial")


def _dies_after(parts):
    real = dataset_module.chunk_frame
    seen = []

    def frame(chunk, spec, summary):
        if len(seen) == parts:
            raise KeyboardInterrupt
        seen.append(chunk.task.index)
        return real(chunk, spec, summary)

    return frame


# --- the output folder: overwrite, recovery, lock, bad paths, full disk ---------------------------------------------


def _batches(out):
    return sorted(rooflax.scan_dataset(out).collect().get_column("batch").unique().to_list())


@pytest.mark.slow
def test_overwrite_after_ctrl_c_starts_over(tmp_path, monkeypatch):
    monkeypatch.setattr(dataset_module, "chunk_frame", _dies_after(2))
    with pytest.raises(KeyboardInterrupt):
        rooflax.sweep_to_parquet(None, tmp_path / "ds", chunk_size=2, **SMALL)
    monkeypatch.undo()
    assert len(list((tmp_path / "ds.partial").glob("part-*"))) == 2
    out = rooflax.sweep_to_parquet(None, tmp_path / "ds", chunk_size=2, overwrite=True, **{**SMALL, "batch": [8]})
    assert _batches(out) == [8] and sorted(p.name for p in tmp_path.iterdir()) == ["ds"]


def test_overwrite_recovers_from_a_kill_between_the_renames(tmp_path, monkeypatch):
    out = rooflax.sweep_to_parquet(None, tmp_path / "ds", **SMALL)
    real = os.replace

    def killed_before_the_new_one_moves_in(src, dst):
        if Path(src).name == "ds.partial":
            raise KeyboardInterrupt
        real(src, dst)

    monkeypatch.setattr(os, "replace", killed_before_the_new_one_moves_in)
    with pytest.raises(KeyboardInterrupt):
        rooflax.sweep_to_parquet(None, out, overwrite=True, **{**SMALL, "batch": [8]})
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds.old", "ds.partial"]
    with pytest.raises(rooflax.SpecError, match="already exists"):  # the old dataset is put back first
        rooflax.sweep_to_parquet(None, out, **{**SMALL, "batch": [8]})
    assert _batches(out) == [1, 2, 4]
    rooflax.sweep_to_parquet(None, out, overwrite=True, **{**SMALL, "batch": [8]})
    assert _batches(out) == [8] and sorted(p.name for p in tmp_path.iterdir()) == ["ds"]


@pytest.mark.parametrize("stranger", ["notes.txt", ".git", "part-000000.parquet"])
def test_overwrite_never_deletes_a_folder_rooflax_did_not_write(tmp_path, stranger):
    folder = tmp_path / "ds"
    folder.mkdir()
    pl.DataFrame({"a": [1]}).write_parquet(folder / stranger)
    for target in (folder, tmp_path / "other.partial"):
        if target.name.endswith(".partial"):
            target.mkdir()
            (target / stranger).write_bytes((folder / stranger).read_bytes())
        out = tmp_path / target.name.removesuffix(".partial")
        with pytest.raises(rooflax.SpecError, match=f"holds '{stranger}', which rooflax did not write; refusing"):
            rooflax.sweep_to_parquet(None, out, overwrite=True, batch=[1], seq_len=[8])
        assert [p.name for p in target.iterdir()] == [stranger]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds", "other.partial"]


def test_overwrite_refuses_an_old_folder_it_did_not_leave(tmp_path):
    out = rooflax.sweep_to_parquet(None, tmp_path / "ds", batch=[1], seq_len=[8])
    shutil.copytree(out, tmp_path / "ds.old")  # the user's own backup
    with pytest.raises(rooflax.SpecError, match=r"ds\.old' is in the way of replacing .* rooflax did not leave it"):
        rooflax.sweep_to_parquet(None, out, overwrite=True, batch=[2], seq_len=[8])
    assert _batches(tmp_path / "ds.old") == [1] and _batches(out) == [1]


def _hold_lock(partial):
    partial.mkdir(exist_ok=True)
    fd = os.open(partial / ".rooflax.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fd


def test_a_second_writer_is_refused_while_the_first_runs(tmp_path, monkeypatch):
    real = dataset_module.chunk_frame
    refusals = []

    def second_sweep_meanwhile(chunk, spec, summary):
        for resume in (False, True):
            with pytest.raises(rooflax.SpecError) as info:
                rooflax.sweep_to_parquet(None, tmp_path / "ds", chunk_size=2, resume=resume, **SMALL)
            refusals.append(str(info.value))
        return real(chunk, spec, summary)

    monkeypatch.setattr(dataset_module, "chunk_frame", second_sweep_meanwhile)
    out = rooflax.sweep_to_parquet(None, tmp_path / "ds", chunk_size=2, **SMALL)
    assert len(refusals) == 12 and all("another sweep is writing to" in r and "ds.partial" in r for r in refusals)
    monkeypatch.undo()
    assert_frame_equal(
        rooflax.scan_dataset(out).collect(), rooflax.sweep(**SMALL, chunk_size=2), categorical_as_str=True
    )


def test_a_lock_held_by_another_process_refuses_the_sweep(tmp_path):
    partial = tmp_path / "ds.partial"
    with lock_held_elsewhere(partial), pytest.raises(rooflax.SpecError, match=r"another sweep is writing to .*ds'"):
        rooflax.sweep_to_parquet(None, tmp_path / "ds", resume=True, batch=[1], seq_len=[8])
    assert [p.name for p in partial.iterdir()] == [".rooflax.lock"]
    out = rooflax.sweep_to_parquet(None, tmp_path / "ds", resume=True, batch=[1], seq_len=[8])  # lock released
    assert _batches(out) == [1]


def _read_only(tmp_path, monkeypatch):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    if os.geteuid() == 0:  # root writes anyway: make the kernel's answer explicit
        real = os.mkdir

        def mkdir(path, *args, **kwargs):
            if Path(path).parent == folder:
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
            return real(path, *args, **kwargs)

        monkeypatch.setattr(os, "mkdir", mkdir)
    return folder / "ds"


@pytest.mark.parametrize(
    ("out", "message"),
    [
        (None, "output: expected a dataset folder path, got None"),
        ("", "output: empty path"),
        (".", "output: '.' is not a name for a new dataset folder"),
        ("{tmp}/..", r"output: '.*/\.\.' is not a name for a new dataset folder"),
        ("{tmp}/ref.csv", "'.*ref.csv' looks like a .csv file name; a dataset is a folder of parquet parts"),
        ("{tmp}/x.parquet", "looks like a .parquet file name"),
        ("{tmp}/file/ds", "file' is a file, so no folder"),
        ("{tmp}/file", "file' exists and is not a folder"),
        (_read_only, "output: cannot create '.*ro/ds.partial': Permission denied"),
    ],
)
def test_unusable_output_is_a_one_line_error(tmp_path, monkeypatch, out, message):
    (tmp_path / "file").write_text("a file")
    out = out(tmp_path, monkeypatch) if callable(out) else out and out.format(tmp=tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(rooflax.SpecError, match=message) as info:
        rooflax.sweep_to_parquet(None, out, batch=[1], seq_len=[8])
    assert "\n" not in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == before and not list(tmp_path.rglob("*.partial"))


def test_flags_are_booleans(tmp_path):
    with pytest.raises(rooflax.SpecError, match="summary: expected true or false, got 'yes'"):
        rooflax.sweep_to_parquet(None, tmp_path / "ds", summary="yes", batch=[1], seq_len=[8])
    assert not list(tmp_path.iterdir())


def test_a_full_disk_keeps_the_finished_parts_for_resume(tmp_path, monkeypatch):
    real = dataset_module.atomic_write
    written = []

    def disk_fills_at_the_third_part(path, write):
        if len(written) == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        written.append(path.name)
        return real(path, write)

    monkeypatch.setattr(dataset_module, "atomic_write", disk_fills_at_the_third_part)
    with pytest.raises(rooflax.SpecError) as info:
        rooflax.sweep_to_parquet(None, tmp_path / "ds", chunk_size=2, **SMALL)
    message = str(info.value)
    assert "the disk holding" in message and "is full (No space left on device) writing part-000002.parquet" in message
    assert f"kept in {str(tmp_path / 'ds.partial')!r}" in message and "--resume" in message and "\n" not in message
    monkeypatch.undo()
    assert sorted(p.name for p in (tmp_path / "ds.partial").glob("part-*")) == written
    out = rooflax.sweep_to_parquet(None, tmp_path / "ds", chunk_size=2, resume=True, **SMALL)
    assert_frame_equal(
        rooflax.scan_dataset(out).collect(), rooflax.sweep(**SMALL, chunk_size=2), categorical_as_str=True
    )


# --- how large a sweep is, said before it starts --------------------------------------------------------------------

_SIZE = re.compile(r"sweep: ([\d,]+) rows in ([\d,]+) parts, about ([\d.]+)([kMGT]?)B on disk \(zstd, ")


@pytest.mark.slow
def test_the_sweep_says_its_size_before_writing(tmp_path, capsys, monkeypatch):
    keys = dict(phases=["decode"], batch=list(range(1, 33)), seq_len=list(range(16, 1040, 16)))
    out = rooflax.sweep_to_parquet(None, tmp_path / "ds", chunk_size=256, compression="zstd", progress=True, **keys)
    rows, parts, size, prefix = _SIZE.search(capsys.readouterr().err).groups()
    height = rooflax.sweep(**keys).height
    assert int(rows.replace(",", "")) == height and int(parts) == len(list(out.iterdir()))
    estimate = float(size) * {"": 1, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}[prefix]
    actual = sum(p.stat().st_size for p in out.iterdir())
    assert 0.8 < estimate / actual < 1.25  # parts of equal size: the first part's bytes per row hold for all

    monkeypatch.setattr(dataset_module, "chunk_frame", _dies_after(3))
    with pytest.raises(KeyboardInterrupt):
        rooflax.sweep_to_parquet(None, tmp_path / "again", chunk_size=256, compression="zstd", **keys)
    monkeypatch.undo()
    done = sum(pl.read_parquet(p).height for p in (tmp_path / "again.partial").glob("part-*"))
    rooflax.sweep_to_parquet(
        None, tmp_path / "again", chunk_size=256, compression="zstd", resume=True, progress=True, **keys
    )
    rows, parts, *_ = _SIZE.search(capsys.readouterr().err).groups()
    assert int(rows.replace(",", "")) == height - done
    assert int(parts) == len(list(out.iterdir())) - 3


def test_a_disk_without_room_is_refused_before_writing(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**12, 10**12 - 5000, 5000))
    with pytest.raises(
        rooflax.SpecError,
        match=r"output: the sweep needs about [\d.]+[kMG]?B \(1,470 rows at "
        r"[\d.]+ B/row in lz4\) but the disk holding '.*ds.partial' has 5.0kB",
    ):
        rooflax.sweep_to_parquet(None, tmp_path / "ds")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda df: df.drop("bytes"), "lacks column 'bytes'"),
        (
            lambda df: df.with_columns(pl.col("time_s").cast(pl.Float32)),
            "holds column 'time_s' as Float32; its sweep writes Float64",
        ),
        (lambda df: df.with_columns(pl.lit(1).alias("extra")), "holds column 'extra', which its sweep does not write"),
    ],
)
def test_a_part_rewritten_with_other_columns_is_refused(tmp_path, change, message):
    out = rooflax.sweep_to_parquet(None, tmp_path / "ds", chunk_size=5, **KEYS)
    part = out / "part-000001.parquet"
    metadata = pl.read_parquet_metadata(part)  # the rooflax footer is kept
    change(pl.read_parquet(part)).write_parquet(part, metadata=metadata)
    for read in (rooflax.check_dataset, lambda p: rooflax.scan_dataset(p).collect(), rooflax.describe):
        with pytest.raises(rooflax.SpecError) as info:
            read(out)
        assert str(info.value) == f"dataset: {str(part)!r} {message} (rewritten after the sweep?); re-run the sweep"
