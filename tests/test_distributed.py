"""Multi-process sweeps: several local CPU processes on JAX's distributed runtime write one dataset."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from locks import lock_held_elsewhere
from one_line import one_line_error

import rooflax
from rooflax.cli.commands import main
from rooflax.data import dataset as dataset_module
from rooflax.data.scan import MANIFEST, part_name
from rooflax.engine.distributed import Cluster

# Every test here starts processes (an interpreter, JAX and its distributed runtime each): the edit loop's
# `pytest -m "not slow"` leaves them out.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
KEYS = dict(phases=["prefill", "decode", "verify"], batch=[1, 2, 4, 8], seq_len=[16, 64, 256], spec_k=[16, 32])
CHUNK = 5
SPEC_TOML = """phases = ["prefill", "decode", "verify"]
[axes]
batch = [1, 2, 4, 8]
seq_len = [16, 64, 256]
spec_k = [16, 32]
"""
# One process of a run: records the chunk indices it computes; with "fail_after", raises after that many chunks,
# with "die_after" kills itself; "lost_after" shortens how long the others wait for a silent process.
CHILD = """
import json, os, signal, sys
import rooflax
from rooflax.engine import distributed
from rooflax.engine import vectorized as engine
job = json.loads(sys.argv[1])
computed, run = [], engine.run
distributed.LOST_AFTER_S = job.get("lost_after", distributed.LOST_AFTER_S)

def recording(*args, **kwargs):
    for chunk in run(*args, **kwargs):
        if len(computed) == job.get("fail_after", -1):
            raise RuntimeError("injected failure")
        if len(computed) == job.get("die_after", -1):
            with open(job["record"], "w") as f:
                json.dump(computed, f)
            os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, no goodbye: as a machine that goes down
        computed.append(chunk.task.index)
        yield chunk

engine.run = recording
try:
    rooflax.sweep_to_parquet(None, job["out"], chunk_size=job["chunk"], resume=job["resume"],
                             coordinator=job["coordinator"], num_processes=job["n"], process_id=job["pid"],
                             **job["keys"])
except rooflax.SpecError as exc:
    print(f"error: {exc}", file=sys.stderr)
    sys.exit(2)
finally:
    with open(job["record"], "w") as f:
        json.dump(computed, f)
"""


def _coordinator() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


def _processes(commands: list[list[str]], cwd: Path) -> list[subprocess.CompletedProcess]:
    """Run the commands at once (one process each); wait for all, with a timeout."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"}
    procs = [
        subprocess.Popen(c, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for c in commands
    ]
    try:
        results = [(p, *p.communicate(timeout=240)) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    return [subprocess.CompletedProcess(p.args, p.returncode, out, err) for p, out, err in results]


def _python_run(
    tmp_path: Path,
    n: int,
    *,
    resume: bool = False,
    fail: dict[int, int] | None = None,
    die: dict[int, int] | None = None,
    lost_after: float | None = None,
):
    """Run the sweep of KEYS into tmp_path/ds on ``n`` processes; the results and each one's chunk indices."""
    coordinator, fail, die = _coordinator(), fail or {}, die or {}
    jobs = [
        {
            "out": str(tmp_path / "ds"),
            "chunk": CHUNK,
            "resume": resume,
            "coordinator": coordinator,
            "n": n,
            "pid": i,
            "keys": KEYS,
            "record": str(tmp_path / f"computed-{i}.json"),
            **({"fail_after": fail[i]} if i in fail else {}),
            **({"die_after": die[i]} if i in die else {}),
            **({"lost_after": lost_after} if lost_after else {}),
        }
        for i in range(n)
    ]
    results = _processes([[sys.executable, "-c", CHILD, json.dumps(job)] for job in jobs], tmp_path)
    computed = [json.loads((tmp_path / f"computed-{i}.json").read_text()) for i in range(n)]
    return results, computed


RUN = ("rooflax.command", "rooflax.created")  # what one run records apart from another


def _assert_same_dataset(got: Path, want: Path, *, same_run: bool = False) -> None:
    """Row for row, part for part, footer for footer (the command and time too when ``same_run``),
    and every part of ``got`` records one command and creation time."""
    info, reference = rooflax.check_dataset(got), rooflax.check_dataset(want)
    assert [p.name for p in info.parts] == [p.name for p in reference.parts]
    footers = [pl.read_parquet_metadata(p) for p in info.parts]
    assert len({tuple(f[key] for key in RUN) for f in footers}) == 1
    for footer, part in zip(footers, reference.parts, strict=True):
        expected = pl.read_parquet_metadata(part)
        if not same_run:  # the checksum covers the command and time too
            footer, expected = (
                {k: v for k, v in f.items() if k not in (*RUN, "rooflax.sha256")} for f in (footer, expected)
            )
        assert footer == expected
    assert info.scan().collect().equals(reference.scan().collect())


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """The single-process dataset."""
    return rooflax.sweep_to_parquet(None, tmp_path_factory.mktemp("ref") / "ds", chunk_size=CHUNK, **KEYS)


def test_two_processes_from_the_cli_write_the_single_process_dataset(tmp_path, reference):
    (tmp_path / "spec.toml").write_text(SPEC_TOML)
    coordinator = _coordinator()
    results = _processes(
        [
            [
                sys.executable,
                "-m",
                "rooflax.cli",
                "sweep",
                "spec.toml",
                "-o",
                "ds",
                "--chunk-size",
                str(CHUNK),
                "--coordinator",
                coordinator,
                "--num-processes",
                "2",
                "--process-id",
                str(i),
            ]
            for i in range(2)
        ],
        tmp_path,
    )
    assert [r.returncode for r in results] == [0, 0], [r.stderr for r in results]
    rows = rooflax.parse_spec(**KEYS).rows()
    assert results[0].stdout.startswith(f"wrote {rows:,} rows to ds/\n") and results[1].stdout == ""
    _assert_same_dataset(tmp_path / "ds", reference)
    command = rooflax.dataset_metadata(tmp_path / "ds")["command"]
    assert "--process-id 0" in command  # process 0's command, in every part
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds", "spec.toml"]  # no OUT.partial, no OUT.old


@pytest.mark.parametrize(
    ("flags", "field", "theirs", "ours"),
    [
        (["--hardware", "a100-80gb-pcie"], "spec.hardware[0].name", '"a100-80gb-pcie"', '"a40"'),
        (["--chunk-size", "7"], "chunk_size", "7", str(CHUNK)),
        (["--compression", "zstd"], "compression", '"zstd"', '"lz4"'),
    ],
)
def test_processes_given_different_flags_all_stop_before_writing(tmp_path, flags, field, theirs, ours):
    (tmp_path / "spec.toml").write_text(SPEC_TOML)
    coordinator = _coordinator()
    base = [
        sys.executable,
        "-m",
        "rooflax.cli",
        "sweep",
        "spec.toml",
        "-o",
        "ds",
        "--chunk-size",
        str(CHUNK),
        "--coordinator",
        coordinator,
        "--num-processes",
        "2",
        "--quiet",
    ]
    results = _processes([[*base, "--process-id", "0"], [*base, "--process-id", "1", *flags]], tmp_path)
    assert [r.returncode for r in results] == [2, 2], [r.stderr for r in results]
    message = (
        f"error: distributed: process 1 was given {field} {theirs}, process 0 {ours}; every process of a run "
        "must be given the same spec and options (nothing was written)\n"
    )
    assert [r.stderr for r in results] == [message, message]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.toml"]


def test_three_processes_resume_an_interrupted_run_each_computing_its_own_missing_parts(tmp_path, reference):
    parts = len(rooflax.check_dataset(reference).parts)
    partial = tmp_path / "ds.partial"
    shutil.copytree(reference, partial)  # an interrupted run: some parts finished, one cut off mid-write
    missing = [0, 1, 2, 4, 7, parts - 1]
    for i in missing:
        (partial / part_name(i)).unlink()
    (partial / ".part-000004.parquet.tmp").write_bytes(b"half a part")
    (partial / MANIFEST).write_text(dataset_module._run_manifest(rooflax.parse_spec(**KEYS), False, CHUNK))
    results, computed = _python_run(tmp_path, 3, resume=True)
    assert [r.returncode for r in results] == [0, 0, 0], [r.stderr for r in results]
    for pid, indices in enumerate(computed):  # by index mod 3: disjoint, and only the missing parts
        assert sorted(indices) == [i for i in missing if i % 3 == pid]
    _assert_same_dataset(tmp_path / "ds", reference, same_run=True)  # resumed: the first run's command and time


def test_a_failing_process_stops_the_run_and_one_process_resumes_it(tmp_path, reference):
    results, computed = _python_run(tmp_path, 2, fail={1: 2})
    assert [r.returncode for r in results] == [2, 1]
    first = results[0].stderr.strip()
    assert (
        first.startswith("error: output: process 1 failed: RuntimeError: injected failure; finished parts are kept in")
        and "\n" not in first
        and "--resume" in first
    )
    assert "RuntimeError: injected failure" in results[1].stderr  # the failing process shows its own traceback
    assert not (tmp_path / "ds").exists()
    kept = sorted(int(p.name[5:11]) for p in (tmp_path / "ds.partial").glob("part-*.parquet"))
    # process 1 wrote its two parts; process 0 wrote what it finished before it saw the failure
    assert len(computed[1]) == 2 and set(computed[1]) <= set(kept) <= set(computed[0] + computed[1])
    rooflax.sweep_to_parquet(None, tmp_path / "ds", chunk_size=CHUNK, resume=True, **KEYS)  # one process now
    _assert_same_dataset(tmp_path / "ds", reference)


def test_a_killed_follower_is_one_line_and_resume_finishes_the_run(tmp_path, reference):
    results, computed = _python_run(tmp_path, 2, die={1: 1}, lost_after=3.0)
    assert results[1].returncode == -9
    assert results[0].returncode == 2, results[0].stderr
    assert results[0].stderr == (
        "error: distributed: process 1 of 2 was lost (nothing heard from it for 3 s: killed, "
        "crashed or its machine down); run the same command again with --resume (resume=True) "
        "to continue from the finished parts\n"
    )  # one line, no C++ abort
    assert not (tmp_path / "ds").exists()
    kept = {int(p.name[5:11]) for p in (tmp_path / "ds.partial").glob("part-*.parquet")}
    assert len(computed[1]) == 1 and kept <= set(computed[0] + computed[1])  # finished parts are kept
    rooflax.sweep_to_parquet(None, tmp_path / "ds", chunk_size=CHUNK, resume=True, **KEYS)  # one process now
    _assert_same_dataset(tmp_path / "ds", reference)


def test_every_process_reports_process_0s_setup_error(tmp_path, reference):
    shutil.copytree(reference, tmp_path / "ds")
    results, computed = _python_run(tmp_path, 2)
    assert [r.returncode for r in results] == [2, 2] and computed == [[], []]
    assert {r.stderr for r in results} == {
        f"error: output: {str(tmp_path / 'ds')!r} already exists; pass overwrite (--overwrite) to replace it\n"
    }


@pytest.mark.parametrize(
    ("keys", "fragments"),
    [
        (
            dict(coordinator="localhost", num_processes=2, process_id=0),
            ("coordinator: expected HOST:PORT", "'localhost'"),
        ),
        (dict(coordinator="localhost:99999", num_processes=2, process_id=0), ("coordinator:", "'localhost:99999'")),
        (dict(coordinator="h:1", num_processes=0, process_id=0), ("num_processes: expected an integer ≥ 1, got 0",)),
        (dict(coordinator="h:1", num_processes=2, process_id=2), ("process_id: expected 0 to 1", "got 2")),
        (dict(coordinator="h:1", num_processes=2, process_id=True), ("process_id: expected an integer ≥ 0, got True",)),
        (
            dict(num_processes=2, process_id=1),
            ("coordinator: not given; coordinator, num_processes and process_id go",),
        ),
        (dict(coordinator="h:1", process_id=1), ("num_processes: not given",)),
        (dict(distributed="yes"), ("distributed:", "'yes'")),
        (dict(distributed=True), ("distributed: JAX has already computed in this process", "before any other JAX")),
    ],
)
def test_bad_distributed_arguments_are_one_line_errors(tmp_path, keys, fragments):
    rooflax.sweep(batch=[1], seq_len=[8])  # JAX computes in this process, whatever ran before
    one_line_error(lambda: rooflax.sweep_to_parquet(None, tmp_path / "ds", batch=[1], seq_len=[8], **keys), *fragments)
    assert list(tmp_path.iterdir()) == []


def test_the_cli_refuses_half_the_process_flags(tmp_path, capsys):
    assert main(["sweep", "-o", str(tmp_path / "ds"), "--num-processes", "2", "--process-id", "0"]) == 2
    assert capsys.readouterr().err.startswith("error: coordinator: not given;")
    assert list(tmp_path.iterdir()) == []


def test_a_cluster_outside_a_running_runtime_is_a_one_line_error():
    cluster = Cluster(
        process_id=0, num_processes=2, run=0
    )  # as test_inputs builds them: no distributed runtime runs in this process
    for use in (lambda: cluster.publish("key", ""), lambda: cluster.wait_for("key"), cluster.failures):
        one_line_error(use, "distributed: JAX's distributed runtime is not running")


def test_no_cluster_detected_is_a_one_line_error(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "OMPI_", "PMI_", "JAX_COORDINATOR"))}
    result = subprocess.run(
        [sys.executable, "-m", "rooflax.cli", "sweep", "-o", "ds", "--distributed"],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and result.stderr.startswith("error: distributed: no cluster detected (no SLURM,")
    assert result.stderr.count("\n") == 1 and list(tmp_path.iterdir()) == []


def test_a_foreign_sweep_holding_the_lock_refuses_every_process(tmp_path):
    partial = tmp_path / "ds.partial"
    with lock_held_elsewhere(partial):
        results, computed = _python_run(tmp_path, 2, resume=True)
    assert [r.returncode for r in results] == [2, 2] and computed == [[], []]
    message = results[0].stderr
    assert {r.stderr for r in results} == {message}
    assert message.startswith("error: output: another sweep is writing to") and "ds.partial" in message
    assert [p.name for p in partial.iterdir()] == [".rooflax.lock"]
