"""A sweep's output folders (OUT, OUT.partial, OUT.old): nothing of the user's is lost, every kill recovers."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from interrupt import interrupt_after
from polars.testing import assert_frame_equal

import rooflax
from rooflax.cli.commands import main
from rooflax.data import _output
from rooflax.data import dataset as dataset_module

SMALL = dict(phases=["prefill", "decode"], batch=[1, 2, 4], seq_len=[16, 64])
NEW = {**SMALL, "batch": [8]}


def _batches(out):
    return sorted(rooflax.scan_dataset(out).collect().get_column("batch").unique().to_list())


def _tree(folder):
    """Every path under ``folder`` (links not followed) with what it is: a link's target, a file's bytes."""
    seen = {}
    for path in sorted(folder.rglob("*")):
        rel = str(path.relative_to(folder))
        if path.is_symlink():
            seen[rel] = ("link", os.readlink(path))
        elif path.is_file():
            seen[rel] = ("file", path.read_bytes())
        else:
            seen[rel] = ("folder", None)
    return seen


def _no_work(monkeypatch):
    """Make computing any chunk fail the test: what is refused must be refused before the sweep runs."""

    def computed(*args, **kwargs):
        raise AssertionError("the sweep ran before the output was refused")

    monkeypatch.setattr(dataset_module, "chunk_frame", computed)


# --- item 1: a folder named OUT.old is the user's unless rooflax marked it -------------------------------------------


def _notes(old):
    old.mkdir()
    (old / "notes.txt").write_text("notes")


def _backup(old):
    """A copy of a dataset rooflax had marked for deletion: the marker came along, but it names the original."""
    ds = old.with_name("src")
    rooflax.sweep_to_parquet(None, ds, **SMALL)
    (ds / _output.REPLACED).write_text(_output._identity(ds))
    shutil.copytree(ds, old)
    shutil.rmtree(ds)


def _subfolder(old):
    old.mkdir()
    (old / "sub").mkdir()


@pytest.mark.parametrize(
    "make",
    [
        _notes,
        _backup,
        _subfolder,
        lambda old: old.write_text("a file"),
        lambda old: old.symlink_to(old.with_name("elsewhere")),
    ],
    ids=["notes", "marked-copy", "subfolder", "file", "symlink"],
)
def test_a_folder_named_old_is_never_deleted(tmp_path, monkeypatch, make):
    old = tmp_path / "res.old"
    make(old)
    mine = _tree(tmp_path)
    out = rooflax.sweep_to_parquet(None, tmp_path / "res", **SMALL)  # a fresh sweep does not need res.old
    assert _batches(out) == [1, 2, 4]
    assert {k: v for k, v in _tree(tmp_path).items() if not k.startswith("res/") and k != "res"} == mine
    _no_work(monkeypatch)  # replacing res would move it onto res.old: refused before any work
    with pytest.raises(
        rooflax.SpecError,
        match=r"output: '.*res\.old'.* is in the way of replacing '.*res' and "
        r"rooflax did not leave it; move it away",
    ) as info:
        rooflax.sweep_to_parquet(None, out, overwrite=True, **NEW)
    assert "\n" not in str(info.value)
    assert {k: v for k, v in _tree(tmp_path).items() if not k.startswith("res/") and k != "res"} == mine
    assert _batches(out) == [1, 2, 4]


def test_the_cli_keeps_a_folder_named_old(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _notes(tmp_path / "res.old")
    assert main(["sweep", "-o", "res", "--quiet"]) == 0
    assert (tmp_path / "res.old" / "notes.txt").read_text() == "notes"
    assert main(["sweep", "-o", "res", "--quiet", "--overwrite"]) == 2
    assert capsys.readouterr().err.count("\n") == 1 and (tmp_path / "res.old" / "notes.txt").read_text() == "notes"


# --- item 3: a dataset that appears while a sweep starts or runs is never replaced without overwrite -----------------


def _finished_elsewhere(tmp_path):
    """A finished dataset of another sweep, ready to be renamed into place as a concurrent sweep would."""
    return rooflax.sweep_to_parquet(None, tmp_path / "elsewhere", **{**SMALL, "batch": [2]})


def test_a_dataset_that_appears_before_the_lock_is_not_replaced(tmp_path, monkeypatch):
    other, out = _finished_elsewhere(tmp_path), tmp_path / "ds"
    real = _output.lock_partial

    def another_sweep_finishes_first(path):
        os.replace(other, out)  # after this sweep's first look at OUT, before it holds the lock
        return real(path)

    monkeypatch.setattr(_output, "lock_partial", another_sweep_finishes_first)
    with pytest.raises(rooflax.SpecError, match=r"output: '.*ds' already exists; pass overwrite"):
        rooflax.sweep_to_parquet(None, out, **NEW)
    assert _batches(out) == [2] and sorted(p.name for p in tmp_path.iterdir()) == ["ds"]


def test_a_dataset_that_appears_during_the_sweep_is_not_replaced(tmp_path, monkeypatch):
    other, out = _finished_elsewhere(tmp_path), tmp_path / "ds"
    real = dataset_module.chunk_frame

    def another_sweep_finishes_meanwhile(chunk, spec, summary):
        if other.exists():
            os.replace(other, out)
        return real(chunk, spec, summary)

    monkeypatch.setattr(dataset_module, "chunk_frame", another_sweep_finishes_meanwhile)
    with pytest.raises(rooflax.SpecError) as info:
        rooflax.sweep_to_parquet(None, out, chunk_size=2, **NEW)
    message = str(info.value)
    assert message.startswith(f"output: {str(out)!r} already exists; pass overwrite") and "\n" not in message
    assert f"its parts are kept in {str(tmp_path / 'ds.partial')!r}" in message and "--resume" in message
    assert _batches(out) == [2]
    monkeypatch.undo()
    _no_work(monkeypatch)  # every part is kept: finishing computes nothing
    with pytest.raises(rooflax.SpecError, match="already exists; pass overwrite"):
        rooflax.sweep_to_parquet(None, out, chunk_size=2, resume=True, **NEW)
    rooflax.sweep_to_parquet(None, out, chunk_size=2, resume=True, overwrite=True, **NEW)
    monkeypatch.undo()
    assert_frame_equal(rooflax.scan_dataset(out).collect(), rooflax.sweep(**NEW, chunk_size=2), categorical_as_str=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"] and not list(out.glob(".*"))


def test_a_lock_on_a_folder_renamed_meanwhile_is_taken_again(tmp_path, monkeypatch):
    """Sweep A renames its OUT.partial to OUT just after sweep B opened the lock file in it."""
    out, partial = tmp_path / "ds", tmp_path / "ds.partial"

    def killed_before_the_swap(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(_output, "finalize", killed_before_the_swap)
    with pytest.raises(KeyboardInterrupt):
        rooflax.sweep_to_parquet(None, out, **SMALL)  # A: every part written, about to swap
    monkeypatch.undo()
    real_flock, calls = fcntl.flock, []

    def a_finishes_first(fd, operation):
        if not calls:
            calls.append(fd)
            os.replace(partial, out)  # A's swap: its lock file goes with its folder
            for name in (".rooflax-run.json", ".rooflax.lock"):
                (out / name).unlink()
        return real_flock(fd, operation)

    monkeypatch.setattr(fcntl, "flock", a_finishes_first)
    rooflax.sweep_to_parquet(None, out, overwrite=True, **NEW)  # B replaces A's dataset, as asked
    monkeypatch.undo()
    assert calls and _batches(out) == [8] and sorted(p.name for p in tmp_path.iterdir()) == ["ds"]
    assert not list(out.glob(".*"))


# --- item 4: names of rooflax's own folders; a .partial without a manifest is not an interrupted run -----------------


@pytest.mark.parametrize("name", ["foo.partial", "foo.old"])
def test_an_output_named_like_rooflax_folders_is_refused(tmp_path, name):
    with pytest.raises(
        rooflax.SpecError,
        match=rf"output: '.*{name}' ends in '\.\w+', which rooflax keeps for its own "
        r"folders .* name it otherwise \(e\.g\. '.*foo'\)",
    ):
        rooflax.sweep_to_parquet(None, tmp_path / name, **SMALL)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(("resume", "overwrite"), [(False, False), (True, False), (False, True), (True, True)])
def test_a_partial_folder_without_a_manifest_is_never_used_or_cleared(tmp_path, monkeypatch, resume, overwrite):
    # what an older rooflax wrote for `sweep -o foo.partial`: a finished dataset under that name
    made = rooflax.sweep_to_parquet(None, tmp_path / "made", chunk_size=2, **SMALL)
    os.replace(made, tmp_path / "foo.partial")
    before = _tree(tmp_path)
    _no_work(monkeypatch)
    with pytest.raises(
        rooflax.SpecError,
        match=r"output: '.*foo\.partial' holds no rooflax run manifest, so it is "
        r"not an interrupted sweep .* will neither use nor delete it",
    ):
        rooflax.sweep_to_parquet(None, tmp_path / "foo", chunk_size=2, resume=resume, overwrite=overwrite, **SMALL)
    assert _tree(tmp_path) == before


# --- item 7 and the swap: a kill at any step loses nothing and the next sweep finishes it ----------------------------

_STEPS = ("replace", "rename", "unlink", "rmdir")


def _kill_in_the_swap(monkeypatch, at):
    """Stop the final swap (as SIGKILL would: nothing after runs) at its ``at``-th change to the filesystem."""
    steps, inside = [], []
    for name in _STEPS:
        real = getattr(os, name)

        def step(*args, _real=real, _name=name, **kwargs):
            if inside:
                steps.append((_name, args))
                if len(steps) == at:
                    inside.clear()
                    raise KeyboardInterrupt
            return _real(*args, **kwargs)

        monkeypatch.setattr(os, name, step)
    real_finalize = _output.finalize

    def finalize(*args, **kwargs):
        inside.append(True)
        try:
            return real_finalize(*args, **kwargs)
        finally:
            inside.clear()

    monkeypatch.setattr(_output, "finalize", finalize)
    return steps


@pytest.mark.slow
def test_a_kill_at_any_step_of_the_swap_is_recovered(tmp_path, monkeypatch):
    at, killed = 0, True
    while killed:
        at += 1
        here = tmp_path / str(at)
        out = rooflax.sweep_to_parquet(None, here / "ds", chunk_size=2, **SMALL)
        steps = _kill_in_the_swap(monkeypatch, at)
        try:
            rooflax.sweep_to_parquet(None, out, chunk_size=2, overwrite=True, **NEW)
            killed = False
        except KeyboardInterrupt:
            pass
        monkeypatch.undo()
        if out.exists():  # the old dataset or the new one, whole: readers take it as it is
            assert _batches(out) in ([1, 2, 4], [8]), at
        else:  # only between moving the old one aside and the new one in
            assert (here / "ds.old").is_dir() and (here / "ds.partial").is_dir(), at
        # a plain sweep to it refuses, after putting back or finishing what the kill left
        with pytest.raises(rooflax.SpecError, match="already exists; pass overwrite"):
            rooflax.sweep_to_parquet(None, out, chunk_size=2, **NEW)
        assert _batches(out) in ([1, 2, 4], [8]), at
        rooflax.sweep_to_parquet(None, out, chunk_size=2, overwrite=True, resume=True, **NEW)  # the command again
        assert _batches(out) == [8] and sorted(p.name for p in here.iterdir()) == ["ds"], at
        assert not list(out.glob(".*")), at
    # the run not killed took every step: the two renames, a deletion per old part, and more
    assert len(steps) == at - 1 > 2 + len(list(out.iterdir())), steps


_KILLED_AFTER_THE_RENAME = """
import os, signal, sys
import rooflax
real = os.replace
def replace(src, dst):
    real(src, dst)
    if str(src).endswith(".partial"):  # OUT.partial is OUT now, its manifest and lock still in it
        os.kill(os.getpid(), signal.SIGKILL)
os.replace = replace
rooflax.sweep_to_parquet(None, sys.argv[1], chunk_size=2, phases=["prefill", "decode"], batch=[1, 2, 4],
                         seq_len=[16, 64])
"""


@pytest.mark.slow
def test_a_sweep_killed_after_its_last_rename_is_a_dataset(tmp_path, monkeypatch, capsys):
    out = tmp_path / "ds"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(Path(rooflax.__file__).parent.parent), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        [sys.executable, "-c", _KILLED_AFTER_THE_RENAME, str(out)], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"] and (out / ".rooflax-run.json").exists()
    expected = rooflax.sweep(**SMALL, chunk_size=2)
    assert_frame_equal(rooflax.scan_dataset(out).collect(), expected, categorical_as_str=True)
    assert main(["check", str(out)]) == 0
    capsys.readouterr()
    _no_work(monkeypatch)  # it is complete: resume computes nothing, it only tidies
    assert rooflax.sweep_to_parquet(None, out, resume=True, **SMALL) == out  # its chunk size taken from the run
    assert not list(out.glob(".*")) and sorted(p.name for p in tmp_path.iterdir()) == ["ds"]
    assert_frame_equal(rooflax.scan_dataset(out).collect(), expected, categorical_as_str=True)


# --- item 12: symbolic links and files where rooflax keeps its folders -----------------------------------------------


def _dataset(path):
    rooflax.sweep_to_parquet(None, path, **SMALL)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda t: (_dataset(t / "real"), (t / "ds").symlink_to(t / "real")),
            r"output: '.*ds' is a symbolic link \(to '.*real'\); rooflax renames .* give the real path of the folder "
            r"to write \(-o '.*real'\)$",
        ),
        (lambda t: (t / "ds").symlink_to(t / "nowhere"), r"output: '.*ds' is a symbolic link \(to '.*nowhere'\)"),
        (lambda t: (t / "ds").symlink_to(t / "ds"), r"output: '.*ds' is a symbolic link \(to '.*ds'\)"),
        (
            lambda t: (t / "ds.partial").write_text("x"),
            r"output: '.*ds\.partial' is a file, where rooflax keeps the "
            r"unfinished parts of a sweep to '.*ds'; move it away",
        ),
        (
            lambda t: ((t / "dir").mkdir(), (t / "ds.partial").symlink_to(t / "dir")),
            r"output: '.*ds\.partial' is a symbolic link \(to '.*dir'\), where rooflax keeps",
        ),
        (lambda t: (t / "ds.partial").symlink_to(t / "nowhere"), r"'.*ds\.partial' is a symbolic link"),
        (
            lambda t: (_dataset(t / "ds"), (t / "ds.old").write_text("x")),
            r"output: '.*ds\.old' \(a file\) is in the way of replacing '.*ds' and rooflax did not leave it",
        ),
        (
            lambda t: (_dataset(t / "ds"), _dataset(t / "real"), (t / "ds.old").symlink_to(t / "real")),
            r"output: '.*ds\.old' \(a symbolic link \(to '.*real'\)\) is in the way",
        ),
        (lambda t: (_dataset(t / "ds"), (t / "ds.old").symlink_to(t / "ds.old")), r"'.*ds\.old' \(a symbolic link"),
    ],
    ids=[
        "out-link",
        "out-dangling",
        "out-loop",
        "partial-file",
        "partial-link",
        "partial-dangling",
        "old-file",
        "old-link",
        "old-loop",
    ],
)
def test_links_and_files_in_the_way_are_refused_before_any_work(tmp_path, monkeypatch, make, message):
    make(tmp_path)
    before = _tree(tmp_path)
    _no_work(monkeypatch)
    for resume in (False, True):
        with pytest.raises(rooflax.SpecError, match=message) as info:
            rooflax.sweep_to_parquet(None, tmp_path / "ds", overwrite=True, resume=resume, **NEW)
        assert "\n" not in str(info.value)
        assert _tree(tmp_path) == before


# --- item 17: a resumed run is the same run wherever its files were found ---------------------------------------------


def test_resume_from_another_folder_or_by_absolute_path(tmp_path, monkeypatch):
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "m.toml").write_text(
        'name = "tiny"\nlabel = "Tiny"\nhidden = 512\nlayers = 2\nheads = 8\nintermediate = 1024\nvocab = 1000\n'
    )
    (specs / "gpu.toml").write_text(
        'name = "labgpu"\nbandwidth_bytes_per_s = 9e11\nmemory_bytes = 4e10\n[peak_flops]\nfp16 = 3e14\n'
    )
    (specs / "s.toml").write_text(
        'model = "m.toml"\nhardware = "gpu.toml"\n[axes]\nbatch = [1, 2, 4]\nseq_len = [16, 64]\n'
    )
    monkeypatch.chdir(tmp_path)
    interrupt_after(monkeypatch, 3)
    with pytest.raises(KeyboardInterrupt):
        rooflax.sweep_to_parquet("specs/s.toml", "ds", chunk_size=2)
    monkeypatch.undo()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # resumed from another folder, the spec by its absolute path
    out = rooflax.sweep_to_parquet(specs / "s.toml", tmp_path / "ds", resume=True)
    clean = rooflax.sweep_to_parquet("../specs/s.toml", tmp_path / "clean", chunk_size=2)
    assert_frame_equal(
        rooflax.scan_dataset(out).collect(),
        rooflax.scan_dataset(clean).collect(),
        check_exact=True,
        categorical_as_str=True,
    )
    spec = {json.loads(pl.read_parquet_metadata(p)["rooflax.spec"])["models"][0]["source"] for p in out.iterdir()}
    assert spec == {"specs/m.toml"}  # one run: every part keeps the spec that started it
    assert main(["check", str(out)]) == 0


# --- item 11: a full disk is one line, the parts kept; durability ----------------------------------------------------


def test_a_disk_that_fills_mid_sweep_is_one_line(tmp_path, monkeypatch):
    partial = tmp_path / "ds.partial"
    real, seen = dataset_module.chunk_frame, []

    real_write = Path.write_bytes

    def count_parts(chunk, spec, summary):
        seen.append(chunk.task.index)
        return real(chunk, spec, summary)

    def disk_full_at_the_fourth_part(path, data):
        if len(seen) > 3 and path.name == f".part-{seen[3]:06d}.parquet.tmp":  # ENOSPC, as a full disk gives
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real_write(path, data)

    monkeypatch.setattr(dataset_module, "chunk_frame", count_parts)
    monkeypatch.setattr(Path, "write_bytes", disk_full_at_the_fourth_part)
    with pytest.raises(rooflax.SpecError) as info:
        rooflax.sweep_to_parquet(None, tmp_path / "ds", chunk_size=2, **SMALL)
    message = str(info.value)
    assert message == (
        f"output: the disk holding {str(partial)!r} is full ({os.strerror(errno.ENOSPC)}) writing "
        f"part-{seen[3]:06d}.parquet; free some space, then: finished parts are kept in "
        f"{str(partial)!r}; run the same command with --resume (resume=True)"
    )
    monkeypatch.undo()
    kept = {p.name for p in partial.glob("part-*")}  # (a part after it may have been saved meanwhile)
    assert {f"part-{i:06d}.parquet" for i in seen[:3]} <= kept and f"part-{seen[3]:06d}.parquet" not in kept
    out = rooflax.sweep_to_parquet(None, tmp_path / "ds", chunk_size=2, resume=True, **SMALL)
    assert_frame_equal(
        rooflax.scan_dataset(out).collect(),
        rooflax.sweep(**SMALL, chunk_size=2),
        check_exact=True,
        categorical_as_str=True,
    )


def test_parts_and_their_folder_reach_the_disk_before_the_swap(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        return real_fsync(fd)

    def replace(src, dst):
        events.append(("replace", os.fspath(src), os.fspath(dst)))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    out = rooflax.sweep_to_parquet(None, tmp_path / "ds", chunk_size=2, **SMALL)
    monkeypatch.undo()
    partial = str(tmp_path / "ds.partial")
    swap = events.index(("replace", partial, str(out)))
    for part in out.iterdir():
        tmp = os.path.join(partial, f".{part.name}.tmp")
        rename = events.index(("replace", tmp, os.path.join(partial, part.name)))
        assert ("fsync", tmp) in events[:rename]  # its bytes, before its name
    assert ("fsync", partial) in events[:swap]  # the parts' names, before the folder's
    assert ("fsync", str(tmp_path)) in events[swap:]  # the folder's new name
