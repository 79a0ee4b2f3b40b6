"""One sweep, many processes: JAX's distributed runtime splits a sweep's chunks between processes.

Every process runs the same :func:`rooflax.sweep_to_parquet` call. Process ``i`` of ``N``
computes the chunks whose index is ``i`` modulo ``N`` and writes their parts into one
``OUT.partial/`` on a filesystem every process shares; chunk indices depend only on the
spec and chunk size, so the split is the same on any machines and an interrupted run
resumes with any number of processes (each skips the parts already there).

The run, in order:

0. Every process publishes what it was asked to write (the spec, kind, chunk size, codec,
   statistics, resume and overwrite: the run manifest and the options that shape the
   parts) and, once all have, compares every process's with process 0's. A difference
   stops every process before anything is written, each with the same one line naming the
   process and the field (``spec.hardware[0].name``, ``chunk_size``, ...).
1. Process 0 (the *leader*) does everything a single-process sweep does before it
   computes: checks ``OUT``, takes the exclusive lock on ``OUT.partial/.rooflax.lock``
   (held until the end, so a foreign sweep is refused as before), keeps or clears the
   parts of an interrupted run, writes the run manifest, and writes a fresh *run id*
   into the lock file. It publishes the run id, or its one-line error, in the
   distributed runtime's key-value store, with the metadata every part carries (the
   command and time that started the run: a resumed run keeps them).
2. The other processes wait for that, raise the leader's error if there is one, and
   check that the lock file they see holds the run id: a process that does not see the
   leader's folder (no shared filesystem) or sees another run's stops before writing.
   They never take the lock: the leader holds it for the run.
3. Every process computes and writes its own parts. A process that fails publishes its
   error; the others stop at their next chunk and raise it too (finished parts are kept
   for ``resume``).
4. All meet at a barrier. The leader checks that every part is there, renames
   ``OUT.partial`` to ``OUT`` and publishes the outcome; the others wait for it, so the
   call returns on every process only once the dataset is complete.

Every process says it is alive every :data:`BEAT_S` seconds, in the key-value store, until
it leaves the runtime. A process that waits (for a key, at a barrier, between its chunks) and
hears nothing from another for :data:`LOST_AFTER_S` seconds (killed, crashed, its machine
gone) stops with one line naming it; the finished parts stay for ``--resume``. The runtime
this module starts is *recoverable* (JAX's ``jax_enable_recoverability``), so that JAX
itself does not abort the survivors from C++ when a process stops sending heartbeats, and
their exit does not wait for the lost one; process 0, which serves the runtime, waits at
exit until the others have left it. A runtime the caller started is used as it is:
then JAX aborts the survivors (exit 134) about 100 s after the loss, but the one line is
printed first.

The runtime starts with :func:`jax.distributed.initialize`: from ``coordinator``,
``num_processes`` and ``process_id``, or detected from the cluster (SLURM, Open MPI, ...)
when ``distributed=True`` alone is given. A runtime the caller already started is used as
it is.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import json
import os
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
from jax._src import distributed as _runtime
from jax._src import xla_bridge

from rooflax.data._output import LOCK
from rooflax.data.scan import PART
from rooflax.errors import SpecError, boolean

__all__ = ["Cluster", "connect", "process_index", "run_sweep"]

#: How often every process of a run says it is alive (seconds).
BEAT_S = 1.0
#: How long the others wait without hearing from a process before they give it up as lost.
LOST_AFTER_S = 30.0
#: Calls of :func:`connect` in this process: each sweep gets its own keys and barriers
#: (every process makes the same calls in the same order).
_RUNS = itertools.count()


@dataclass(frozen=True, slots=True, kw_only=True)
class Cluster:
    """This process's place in a multi-process sweep, and the keys its run uses."""

    process_id: int
    num_processes: int
    run: int  # the how-many-th sweep of this job: names this run's keys and barriers
    #: per other process: the last beat heard from it, and when (time.monotonic) it changed
    heard: dict[int, tuple[str | None, float]] = field(default_factory=dict, compare=False)

    @property
    def leader(self) -> bool:
        """Whether this process sets up and finalizes the dataset (process 0)."""
        return self.process_id == 0

    def mine(self, index: int) -> bool:
        """Whether chunk ``index`` is this process's to compute."""
        return index % self.num_processes == self.process_id

    def _key(self, name: str) -> str:
        return f"rooflax/{self.run}/{name}"

    def publish(self, name: str, value: str) -> None:
        """Store ``value`` under this run's key ``name`` for every process to read."""
        _client().key_value_set(self._key(name), value)

    def wait_for(self, name: str) -> str:
        """The value under this run's key ``name``, waiting until some process stores it (or one is lost)."""
        while True:
            try:
                value: str = _client().blocking_key_value_get(self._key(name), int(BEAT_S * 1000))
                return value
            except jax.errors.JaxRuntimeError as exc:
                if "DEADLINE_EXCEEDED" not in str(exc):
                    raise
            self.check_alive()

    def check_alive(self) -> None:
        """Raise if another process has not said it is alive for :data:`LOST_AFTER_S` seconds."""
        now, beats = time.monotonic(), _beats()
        for process in range(self.num_processes):
            if process == self.process_id:
                continue
            last = self.heard.get(process)
            if last is None or last[0] != beats.get(process):
                self.heard[process] = (beats.get(process), now)
            elif now - last[1] > LOST_AFTER_S:
                raise SpecError(
                    f"distributed: process {process} of {self.num_processes} was lost (nothing heard from "
                    f"it for {LOST_AFTER_S:.0f} s: killed, crashed or its machine down); run the same "
                    "command again with --resume (resume=True) to continue from the finished parts"
                )

    def published(self, folder: str) -> list[tuple[int, str]]:
        """The values under this run's keys ``folder/NNNNNN`` (one per process) so far, as (process, value)."""
        found = _client().key_value_dir_get(self._key(folder))
        return sorted((int(key.rsplit("/", 1)[1]), value) for key, value in found)

    def failures(self) -> list[str]:
        """The errors the run's processes published so far, in process order."""
        return [value for _, value in self.published("failed/")]

    def barrier(self, name: str) -> None:
        """Wait until every process of the run reaches barrier ``name`` (or one is lost)."""
        self.publish(f"barrier/{name}/{self.process_id:06d}", "")
        for process in range(self.num_processes):
            self.wait_for(f"barrier/{name}/{process:06d}")

    def check_others(self) -> None:
        """Raise the first error another process published, or the loss of one (called between chunks)."""
        if failed := self.failures():
            raise SpecError(failed[0])
        self.check_alive()


def _client() -> Any:
    """The key-value store of JAX's distributed runtime, which a :class:`Cluster` talks through (jaxlib's
    client has no type information), or a one-line error when the runtime is not running."""
    client = _runtime.global_state.client
    if client is None:
        raise SpecError(
            "distributed: JAX's distributed runtime is not running (start it with rooflax's connect, "
            "or jax.distributed.initialize, before the cluster's keys are used)"
        )
    return client


_ALIVE = "rooflax/alive/"
_beating = threading.Lock()
_beats_started: list[int] = []


def _beats() -> dict[int, str]:
    """The last beat every process said it was alive with (process → a count)."""
    return {int(key.rsplit("/", 1)[1]): value for key, value in _client().key_value_dir_get(_ALIVE)}


def _start_beating(process_id: int) -> None:
    """Say, every :data:`BEAT_S` seconds until this process leaves the runtime, that it is alive."""
    with _beating:
        if _beats_started:
            return
        _beats_started.append(process_id)

    def beat() -> None:
        for count in itertools.count():
            try:
                _client().key_value_set(f"{_ALIVE}{process_id:06d}", str(count), allow_overwrite=True)
            except Exception:  # the runtime is shut down or going down: nobody is listening
                return
            time.sleep(BEAT_S)

    threading.Thread(target=beat, name="rooflax-alive", daemon=True).start()


def _outlast(num_processes: int) -> None:
    """(process 0, at exit, before JAX shuts the runtime down) Serve the runtime until every other
    process has left it (no beat for 3 beats), so that none loses it while still shutting down;
    at most :data:`LOST_AFTER_S` seconds."""
    heard: dict[int, tuple[str | None, float]] = {}
    deadline = time.monotonic() + LOST_AFTER_S
    while time.monotonic() < deadline:
        now = time.monotonic()
        try:
            beats = _beats()
        except Exception:  # the runtime is gone already
            return
        for process in range(1, num_processes):
            if process not in heard or heard[process][0] != beats.get(process):
                heard[process] = (beats.get(process), now)
        if all(now - heard[process][1] >= 3 * BEAT_S for process in range(1, num_processes)):
            return
        time.sleep(BEAT_S / 2)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    if isinstance(exc, SpecError) and text:
        return text[0]
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _difference(mine: object, leaders: object, path: str) -> tuple[str, object, object] | None:
    """The first field (a dotted path) where two JSON values differ, with both values; None if equal."""
    if isinstance(mine, dict) and isinstance(leaders, dict):
        for key in sorted(set(mine) | set(leaders), key=lambda k: (k != "name", k)):  # a name says the most
            if (found := _difference(mine.get(key), leaders.get(key), f"{path}.{key}" if path else key)) is not None:
                return found
        return None
    if isinstance(mine, list) and isinstance(leaders, list) and len(mine) == len(leaders):
        return next(
            (
                found
                for i, (a, b) in enumerate(zip(mine, leaders, strict=True))
                if (found := _difference(a, b, f"{path}[{i}]")) is not None
            ),
            None,
        )
    return None if mine == leaders else (path, mine, leaders)


def _shown(value: object) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _agree(cluster: Cluster, asked: str) -> None:
    """Stop every process, with one line, unless every process was asked for what process 0 was."""
    cluster.publish(f"asked/{cluster.process_id:06d}", asked)
    cluster.barrier("asked")
    (_, first), *others = cluster.published("asked/")
    leaders = json.loads(first)
    for process, text in others:
        if (found := _difference(json.loads(text), leaders, "")) is not None:
            field, theirs, ours = found
            raise SpecError(
                f"distributed: process {process} was given {field} {_shown(theirs)}, "
                f"process 0 {_shown(ours)}; every process of a run must be given the same spec and "
                "options (nothing was written)"
            )


def run_sweep(
    cluster: Cluster,
    partial: Path,
    *,
    asked: str,
    claim: Callable[[], AbstractContextManager[tuple[frozenset[int], str]]],
    stream: Callable[[frozenset[int], str], None],
    finish: Callable[[], None],
) -> None:
    """Run one sweep on every process of ``cluster`` (the protocol in this module's docstring).

    Args:
        cluster: this process's place in the run.
        partial: the ``OUT.partial`` folder every process writes its parts into.
        asked: what this process was asked to write, as JSON text (the run manifest and
            the options that shape the parts); every process's must be process 0's.
        claim: (leader) check the output, take the lock, keep or clear an interrupted run's
            parts and write the manifest; a context manager holding the lock, giving the
            indices of the parts already finished and the run's shared text (the metadata
            every part carries, decided once by the leader).
        stream: compute and write this process's parts, skipping the given finished ones,
            with the run's shared text.
        finish: (leader, in the lock) check the dataset and rename it into place.

    Raises:
        SpecError: this process's error, or (one line) the first another process met.
    """
    keep = (
        f"finished parts are kept in {str(partial)!r}; run the same command with --resume (resume=True), "
        "with any number of processes"
    )
    _agree(cluster, asked)
    if not cluster.leader:
        setup = cluster.wait_for("setup")
        if setup.startswith("error:"):
            raise SpecError(setup.removeprefix("error:"))
        shared = cluster.wait_for("shared")
        _share(cluster, lambda: stream(_finished(partial, setup, cluster), shared), keep)
        final = cluster.wait_for("final")
        if final != "ok":
            raise SpecError(final)
        return
    with contextlib.ExitStack() as stack:
        try:
            done, shared = stack.enter_context(claim())
            run_id = uuid.uuid4().hex
            (partial / LOCK).write_text(run_id)
        except BaseException as exc:
            cluster.publish("setup", f"error:{_one_line(exc)}")
            raise
        cluster.publish("shared", shared)
        cluster.publish("setup", run_id)
        _share(cluster, lambda: stream(done, shared), keep)
        try:
            finish()
        except BaseException as exc:
            cluster.publish("final", f"output: process 0 could not finish the dataset: {_one_line(exc)}; {keep}")
            raise
        cluster.publish("final", "ok")


def _finished(partial: Path, run_id: str, cluster: Cluster) -> frozenset[int]:
    """The parts already in the leader's ``OUT.partial``, once sure it is the leader's folder of this run."""
    try:
        seen = (partial / LOCK).read_text()
    except OSError:
        seen = None
    if seen != run_id:
        raise SpecError(
            f"output: process {cluster.process_id} does not see process 0's {str(partial)!r} (run id "
            f"{run_id}, found {seen!r}); every process must write to one folder on a shared filesystem"
        )
    return frozenset(int(m.group(1)) for p in partial.iterdir() if (m := PART.fullmatch(p.name)))


def _share(cluster: Cluster, work: Callable[[], None], keep: str) -> None:
    """Do this process's share; publish its error; meet the others; raise the first error of any."""
    error = None
    try:
        work()
    except BaseException as exc:  # interrupted too: the others must stop and the leader not finalize
        error = exc
        cluster.publish(
            f"failed/{cluster.process_id:06d}", f"output: process {cluster.process_id} failed: {_one_line(exc)}; {keep}"
        )
    cluster.barrier("written")
    if error is not None:
        raise error
    cluster.check_others()


def _coordinator(value: object) -> str:
    host, sep, port = value.rpartition(":") if isinstance(value, str) else ("", "", "")
    if not isinstance(value, str) or not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise SpecError(f"coordinator: expected HOST:PORT of process 0 (e.g. 10.0.0.1:7777), got {value!r}")
    return value


def _count(field: str, value: object, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise SpecError(f"{field}: expected an integer ≥ {least}, got {value!r}")
    return value


#: What JAX's C++ runtime logs when it starts recoverable: rooflax waits for the processes itself.
_RECOVERABLE_WARNING = b"Using experimental recoverable task feature"


@contextlib.contextmanager
def _without(line: bytes) -> Iterator[None]:
    """Standard error (the file descriptor, where C++ logs) in the body, less the lines holding ``line``."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            kept = [text for text in held.read().splitlines(keepends=True) if line not in text]
            if kept:
                os.write(2, b"".join(kept))


def connect(
    *,
    distributed: bool = False,
    coordinator: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
) -> Cluster | None:
    """Join (starting it if need be) JAX's distributed runtime; None for a single-process sweep.

    Args:
        distributed: join a multi-process run; with no other argument, the cluster is
            detected (SLURM, Open MPI, ...) by :func:`jax.distributed.initialize`.
        coordinator: ``HOST:PORT`` where process 0 serves the runtime.
        num_processes: processes in the run.
        process_id: this process, from 0 to ``num_processes − 1``.

    The last three go together: all or none. A runtime already started is used as it is
    (the numbers, if given, must match it).

    Raises:
        SpecError: a bad argument, no cluster detected, or JAX already computing in this
            process before the runtime could start.
    """
    distributed = boolean("distributed", distributed)
    given = {"coordinator": coordinator, "num_processes": num_processes, "process_id": process_id}
    if any(v is not None for v in given.values()):
        if missing := [k for k, v in given.items() if v is None]:
            raise SpecError(
                f"{missing[0]}: not given; coordinator, num_processes and process_id go together (or "
                "give none of them, with distributed, to detect a SLURM or Open MPI cluster)"
            )
        coordinator = _coordinator(coordinator)
        num_processes = _count("num_processes", num_processes, 1)
        process_id = _count("process_id", process_id, 0)
        if process_id >= num_processes:
            raise SpecError(f"process_id: expected 0 to {num_processes - 1} (num_processes − 1), got {process_id}")
        distributed = True
    state = _runtime.global_state
    if state.client is None:
        if not distributed:
            return None
        if xla_bridge.backends_are_initialized():
            raise SpecError(
                "distributed: JAX has already computed in this process, so its distributed runtime "
                "cannot start; start the multi-process sweep before any other JAX call (or call "
                "jax.distributed.initialize first)"
            )
        try:
            # a lost process is this module's to report (one line), not a C++ abort
            with _runtime._ENABLE_RECOVERABILITY(True), _without(_RECOVERABLE_WARNING):
                jax.distributed.initialize(coordinator, num_processes, process_id)
            if _runtime.global_state.process_id == 0:  # runs before JAX's own exit handler, which shuts it down
                atexit.register(_outlast, _runtime.global_state.num_processes)
        except (ValueError, TypeError):  # nothing given and no cluster detected
            raise SpecError(
                "distributed: no cluster detected (no SLURM, Open MPI or other job environment); run "
                "under one, or give coordinator, num_processes and process_id"
            ) from None
        except RuntimeError as exc:  # e.g. no coordinator answered in time
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise SpecError(
                f"distributed: cannot start JAX's distributed runtime ({reason}); check that process 0 "
                f"runs and that {coordinator or 'the coordinator'} is reachable"
            ) from None
    for name, asked, actual in (
        ("num_processes", num_processes, state.num_processes),
        ("process_id", process_id, state.process_id),
    ):
        if asked is not None and asked != actual:
            raise SpecError(f"{name}: {asked} given, but the running JAX distributed runtime has {actual}")
    _start_beating(state.process_id)
    return Cluster(process_id=state.process_id, num_processes=state.num_processes, run=next(_RUNS))


def process_index() -> int:
    """This process's index in the running distributed runtime (0 when there is none)."""
    state = _runtime.global_state
    return 0 if state.client is None else state.process_id
