"""Integrity of dataset parts: a checksum sealed in every part, checked deep, on resume, by export and readers."""

from __future__ import annotations

import hashlib
import json
import shutil
import struct
from pathlib import Path

import polars as pl
import pytest
from interrupt import interrupt_after
from one_line import one_line_error

import rooflax
from rooflax.cli.commands import main
from rooflax.data import dataset as dataset_module
from rooflax.data.scan import MANIFEST, part_name

KEYS = dict(phases=["prefill", "decode"], batch=[1, 2, 4], seq_len=[16, 64])
CHUNK = 2  # 2 phases × 6 points, 2 points a part: 6 parts
CODECS = ["lz4", "zstd", "uncompressed"]


def _data_pages(part: Path) -> tuple[int, int]:
    """The byte range of a parquet file's pages: after the leading magic, before the footer
    (whose length the 4 bytes before the trailing magic give)."""
    size = part.stat().st_size
    with part.open("rb") as f:
        f.seek(size - 8)
        footer = struct.unpack("<i", f.read(4))[0]
    return 4, size - 8 - footer


def _flip(part: Path, at: int, count: int = 16) -> None:
    """Invert ``count`` bytes of ``part`` from offset ``at``."""
    data = bytearray(part.read_bytes())
    for i in range(at, at + count):
        data[i] ^= 0xFF
    part.write_bytes(bytes(data))


def _rot(part: Path) -> None:
    """16 flipped bytes in the middle of the part's data pages, its footer untouched."""
    start, end = _data_pages(part)
    assert end - start > 64
    _flip(part, (start + end) // 2 - 8)


def _undecodable(part: Path, columns: tuple[str, ...] = ("phase", "op", "batch", "flops", "bytes", "time_s")) -> None:
    """Flip 16 bytes of the data pages wherever polars can then no longer decode one of ``columns`` (the
    first such offset for each), so that any reader of the part meets a damaged page."""
    start, end = _data_pages(part)
    for column in columns:
        kept = part.read_bytes()
        for at in range(start, end - 16, 16):
            _flip(part, at)
            try:
                pl.read_parquet(part, columns=[column])
            except pl.exceptions.ComputeError:
                break
            part.write_bytes(kept)
        else:
            raise AssertionError(f"no flip makes column {column} of {part} undecodable")


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> dict[str, Path]:
    """One dataset per codec."""
    root = tmp_path_factory.mktemp("clean")
    return {c: rooflax.sweep_to_parquet(None, root / c, chunk_size=CHUNK, compression=c, **KEYS) for c in CODECS}


def _copy(dataset: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(dataset, tmp_path / "ds"))


def _unsealed_sha256(part: Path) -> tuple[str, str]:
    """The checksum a part records, and the SHA-256 of its bytes with that checksum's digits as zeros,
    found by polars' reading of the footer and a plain byte search (independently of rooflax's reader)."""
    recorded = json.loads(pl.read_parquet_metadata(part)["rooflax.sha256"])
    data = part.read_bytes()
    assert data.count(recorded.encode()) == 1
    return recorded, hashlib.sha256(data.replace(recorded.encode(), b"0" * 64)).hexdigest()


@pytest.mark.slow
def test_every_part_records_the_sha256_of_its_bytes(clean):
    for dataset in clean.values():
        parts = sorted(dataset.iterdir())
        assert [p.name for p in parts] == [part_name(i) for i in range(6)]  # nothing but parts
        for part in parts:
            recorded, actual = _unsealed_sha256(part)
            assert recorded == actual
        assert rooflax.check_dataset(dataset, deep=True).checked == "sha256"
        assert rooflax.check_dataset(dataset).checked == "footers"
        assert pl.scan_parquet(dataset).collect().height == rooflax.check_dataset(dataset).rows  # any reader reads it


def _unseal_one(part: Path) -> None:
    """Rewrite ``part`` as rooflax wrote parts before they recorded a checksum."""
    meta = {k: v for k, v in pl.read_parquet_metadata(part).items() if k not in ("ARROW:schema", "rooflax.sha256")}
    pl.read_parquet(part).write_parquet(part, compression="lz4", metadata=meta)


def _unseal(dataset: Path) -> None:
    for part in dataset.iterdir():
        _unseal_one(part)


@pytest.mark.parametrize("codec", CODECS)
def test_bit_rot_in_data_pages_is_caught_by_check_deep_and_export(clean, tmp_path, capsys, codec):
    ds = _copy(clean[codec], tmp_path)
    _rot(ds / part_name(3))
    damaged = "part-000003.parquet' is damaged (its bytes differ from those written"
    one_line_error(lambda: rooflax.check_dataset(ds, deep=True), "dataset: ", damaged, "re-run the sweep")
    one_line_error(lambda: rooflax.export_dataset(ds, tmp_path / "rows.csv"), damaged)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]  # nothing exported, no temporary left
    capsys.readouterr()
    for argv in (["check", "--deep", str(ds)], ["export", str(ds), "-o", str(tmp_path / "rows.csv")]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: dataset: ") and damaged in err and err.count("\n") == 1
    assert not (tmp_path / "rows.csv").exists()


@pytest.mark.slow
def test_check_deep_of_a_dataset_without_sums_decodes_every_page(clean, tmp_path, capsys):
    ds = _copy(clean["lz4"], tmp_path)
    _unseal(ds)
    assert main(["check", "--deep", str(ds)]) == 0
    assert "checksums: none" in capsys.readouterr().out
    assert rooflax.check_dataset(ds, deep=True).checked == "decoded"
    _undecodable(ds / part_name(2))
    one_line_error(
        lambda: rooflax.check_dataset(ds, deep=True), "part-000002.parquet' is damaged (its data cannot be decoded"
    )


@pytest.mark.slow
@pytest.mark.parametrize("codec", ["lz4", "zstd"])
@pytest.mark.parametrize("sums", [True, False])
def test_readers_name_a_part_whose_pages_cannot_be_decoded(clean, tmp_path, capsys, codec, sums):
    ds = _copy(clean[codec], tmp_path)
    if not sums:
        _unseal(ds)
    _undecodable(ds / part_name(4))
    rooflax.check_dataset(ds)  # the footers are intact: only reading the rows finds it
    for argv in (
        ["show", str(ds)],
        ["plot", str(ds), "-o", str(tmp_path / "chart.png")],
        ["export", str(ds), "-o", str(tmp_path / "rows.csv")],
    ):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("error: dataset: ") and err.count("\n") == 1, err
        assert "part-000004.parquet' is damaged (" in err, err
        assert argv[0] == "export" or "rooflax check --deep" in err, err  # export checks deep before reading
    assert not (tmp_path / "chart.png").exists() and not (tmp_path / "rows.csv").exists()
    # the library's describe (what show prints) names the part too, not a polars error
    one_line_error(lambda: rooflax.describe(ds), "dataset: ", "part-000004.parquet' is damaged (")


def _interrupted(tmp_path: Path, monkeypatch, codec: str, after: int) -> Path:
    """A run of KEYS into tmp_path/ds killed after ``after`` parts: its OUT.partial."""
    real = dataset_module.chunk_frame
    interrupt_after(monkeypatch, after)
    with pytest.raises(KeyboardInterrupt):
        rooflax.sweep_to_parquet(None, tmp_path / "ds", chunk_size=CHUNK, compression=codec, **KEYS)
    monkeypatch.setattr(dataset_module, "chunk_frame", real)
    partial = tmp_path / "ds.partial"
    assert (partial / MANIFEST).exists() and len(list(partial.glob("part-*.parquet"))) == after
    return partial


def _truncate(part: Path) -> None:
    part.write_bytes(part.read_bytes()[: part.stat().st_size // 2])


@pytest.mark.parametrize("codec", CODECS)
def test_resume_recomputes_damaged_kept_parts(clean, tmp_path, monkeypatch, capsys, codec):
    partial = _interrupted(tmp_path, monkeypatch, codec, after=5)
    (partial / part_name(0)).write_bytes(b"")  # emptied
    _truncate(partial / part_name(1))  # cut in half
    _rot(partial / part_name(3))  # rotted
    _unseal_one(partial / part_name(4))  # a part without its checksum cannot be trusted either
    computed, real = [], dataset_module.chunk_frame

    def recording(chunk, spec, summary):
        computed.append(chunk.task.index)
        return real(chunk, spec, summary)

    monkeypatch.setattr(dataset_module, "chunk_frame", recording)
    capsys.readouterr()
    rooflax.sweep_to_parquet(
        None, tmp_path / "ds", chunk_size=CHUNK, compression=codec, resume=True, progress=True, **KEYS
    )
    assert sorted(computed) == [0, 1, 3, 4, 5]  # the damaged four and the one never written
    said = [line for line in capsys.readouterr().err.splitlines() if line.startswith("resume: ")]
    assert [line.split("'")[1] for line in said] == [str(partial / part_name(i)) for i in (0, 1, 3, 4)]
    assert all("is damaged (" in line and line.endswith("computing it again") for line in said)
    ds = tmp_path / "ds"
    assert rooflax.check_dataset(ds, deep=True).checked == "sha256"
    assert rooflax.scan_dataset(ds).collect().equals(rooflax.scan_dataset(clean[codec]).collect())


def test_resume_from_the_cli_with_quiet_recomputes_damaged_parts_silently(clean, tmp_path, monkeypatch, capsys):
    partial = _interrupted(tmp_path, monkeypatch, "lz4", after=4)
    _truncate(partial / part_name(2))
    monkeypatch.chdir(tmp_path)
    argv = [
        "sweep",
        "-o",
        "ds",
        "--batch",
        "1,2,4",
        "--seq-len",
        "16,64",
        "--phases",
        "prefill,decode",
        "--chunk-size",
        str(CHUNK),
        "--resume",
        "--quiet",
    ]
    capsys.readouterr()
    assert main(argv) == 0
    assert capsys.readouterr() == ("", "")
    assert rooflax.scan_dataset(tmp_path / "ds").collect().equals(rooflax.scan_dataset(clean["lz4"]).collect())


def _parts_of(path: Path, batch: list[int]) -> Path:
    return rooflax.sweep_to_parquet(None, path, chunk_size=6, **{**KEYS, "batch": batch})  # 6 points a part


@pytest.mark.parametrize("foreign", [0, 1])
def test_a_foreign_part_of_a_two_part_dataset_is_named_by_its_own_number(tmp_path, foreign):
    ds, other = _parts_of(tmp_path / "ds", [1, 2, 4]), _parts_of(tmp_path / "other", [1, 2, 4, 8, 16, 32])
    assert len(rooflax.check_dataset(ds).parts) == 2 and len(rooflax.check_dataset(other).parts) == 4
    shutil.copyfile(other / part_name(foreign), ds / part_name(foreign))
    message = one_line_error(lambda: rooflax.check_dataset(ds), "belongs to another sweep (its spec differs")
    assert f"{part_name(foreign)}' belongs" in message and part_name(1 - foreign) not in message


def test_a_tie_between_two_sweeps_names_both_parts(tmp_path):
    ds, other = _parts_of(tmp_path / "ds", [1, 2, 4]), _parts_of(tmp_path / "other", [1, 2, 8])
    shutil.copyfile(other / part_name(0), ds / part_name(0))  # one part each, both of two parts: no majority
    one_line_error(
        lambda: rooflax.check_dataset(ds),
        "part-000000.parquet' and ",
        "part-000001.parquet' belong to different sweeps (their spec differs)",
    )
