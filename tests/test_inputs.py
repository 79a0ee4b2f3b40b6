"""Input handling across the public surface: booleans, hardware ranges, sizes, outputs, locale (issue 17)."""

from __future__ import annotations

import dataclasses
import importlib
import inspect

import matplotlib
import polars as pl
import pytest
from one_line import one_line_error

import rooflax
import rooflax.validate
from rooflax.plot.files import chart_path
from rooflax.plot.measured import validation_path, write_validation
from rooflax.plot.plan import plan_chart

matplotlib.use("Agg")


#: The public modules, then the modules of the library calls the command line makes besides them.
MODULES = (
    "rooflax",
    "rooflax.plot",
    "rooflax.validate",
    "rooflax.plot.files",
    "rooflax.plot.plan",
    "rooflax.plot.measured",
)


def _public_callables():
    """Every function and class of the public modules, by qualified name (where first exported)."""
    seen = set()
    for module in map(importlib.import_module, MODULES):
        for name in module.__all__:
            obj = getattr(module, name)
            if callable(obj) and not isinstance(obj, type(rooflax)) and id(obj) not in seen:
                seen.add(id(obj))
                yield f"{module.__name__}.{name}", obj


def _boolean_options(obj) -> list[str]:
    try:
        parameters = inspect.signature(obj).parameters.values()
    except (TypeError, ValueError):
        return []
    return [p.name for p in parameters if isinstance(p.default, bool) or p.annotation in (bool, "bool")]


def _figure():
    from matplotlib.figure import Figure

    return Figure()


#: How to call each public callable with one option replaced (its other arguments only as far as
#: needed to reach the option's check: every option is checked before any work).
CALLS = {
    "rooflax.evaluate": lambda **kw: rooflax.evaluate(batch=1, seq_len=64, phase="prefill", **kw),
    "rooflax.sweep": lambda **kw: rooflax.sweep(batch=[1], seq_len=[64], **kw),
    "rooflax.sweep_to_parquet": lambda **kw: rooflax.sweep_to_parquet(None, "/nonexistent/out", **kw),
    "rooflax.speculate": lambda **kw: rooflax.speculate(batch=[1], seq_len=[64], medusa_heads=2, **kw),
    "rooflax.best_k": lambda **kw: rooflax.best_k(None, batch=[1], seq_len=[64], **kw),
    "rooflax.check_dataset": lambda **kw: rooflax.check_dataset("/nonexistent", **kw),
    "rooflax.export_dataset": lambda **kw: rooflax.export_dataset("/nonexistent", "x.csv", **kw),
    "rooflax.Model": lambda **kw: dataclasses.replace(rooflax.get_model("llama-7b"), **kw),
    "rooflax.SweepSpec": lambda **kw: dataclasses.replace(rooflax.default_spec(), **kw),
    "rooflax.plot.files.chart_path": lambda **kw: chart_path("x.png", **kw),
    "rooflax.plot.save": lambda **kw: rooflax.plot.save(_figure(), "x.png", **kw),
    "rooflax.plot.plan.plan_chart": lambda **kw: plan_chart(rooflax.default_spec(), **kw),
    "rooflax.plot.roofline": lambda **kw: rooflax.plot.roofline(rooflax.sweep(batch=[1], seq_len=[64]), **kw),
    "rooflax.plot.speculation_map": lambda **kw: rooflax.plot.speculation_map(None, **kw),
    "rooflax.plot.draw": lambda **kw: rooflax.plot.draw("/nonexistent", **kw),
    "rooflax.plot.measured.validation_path": lambda **kw: validation_path("v.parquet", **kw),
    "rooflax.plot.measured.write_validation": lambda **kw: write_validation(
        None, "/nonexistent/v.parquet", profile=None, calibrated=None, timer_ratio=2.0, **kw
    ),
    "rooflax.validate.validate": lambda **kw: rooflax.validate.validate(points=(), **kw),
    "rooflax.validate.detect_device": lambda **kw: rooflax.validate.detect_device(**kw),
    "rooflax.predict_measurements": lambda **kw: rooflax.predict_measurements(None, **kw),
    "rooflax.frontier": lambda **kw: rooflax.frontier(model="toy-llama", isl=8, osl=4, gpus=1, **kw),
    "rooflax.serve": lambda **kw: rooflax.serve(model="toy-llama", isl=8, osl=4, **kw),
}


#: Values rooflax returns (their boolean fields are results, not options a caller gives).
RESULTS = {"rooflax.Evaluation"}


def test_every_boolean_option_is_listed():
    found = {name for name, obj in _public_callables() if _boolean_options(obj)}
    assert found - RESULTS == set(CALLS), "add the new boolean options to CALLS"
    assert RESULTS <= found


@pytest.mark.parametrize("name", sorted(CALLS))
@pytest.mark.parametrize("value", ["false", "true", 0, 1, None])
def test_boolean_options_refuse_anything_but_booleans(name, value, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing may be written, but if it were, not here
    obj = dict(_public_callables())[name]
    for option in _boolean_options(obj):
        one_line_error(
            lambda option=option: CALLS[name](**{option: value}), f"{option}: expected true or false, got {value!r}"
        )


def test_evaluate_reads_causal_and_fused_attention():
    """The strings that used to read as True are refused; the booleans change the counts."""
    dense = rooflax.evaluate(batch=1, seq_len=64, phase="prefill").ops
    causal = rooflax.evaluate(batch=1, seq_len=64, phase="prefill", causal=True).ops
    heads, s, d = 40, 64, 128
    assert dense["qk"].flops == 2 * heads * s * s * d
    assert causal["qk"].flops == 2 * heads * (s * (s + 1) // 2) * d
    assert "attention" in rooflax.evaluate(batch=1, seq_len=64, fused_attention=True).ops


def _every_field_spec() -> rooflax.SweepSpec:
    """A spec with every field away from its default."""
    return rooflax.parse_spec(
        model="mixtral-8x7b",
        hardware=["a40", "h100-sxm"],
        dtype=["fp16", "bf16"],
        kv_dtype="fp8",
        phases=["prefill", "decode", "verify"],
        fused_attention=True,
        causal=True,
        mla_decode="naive",
        tree=[{"depths": [1, 2, 2]}, {"top_k": [2, 2]}],
        description="every field",
        batch=[1, 8],
        seq_len=[64, 128],
        hidden=[4096],
        tp=[1, 2],
        pp=[1, 2],
        ep=[1, 2],
    )


def test_spec_dict_round_trip_keeps_every_field():
    spec = _every_field_spec()
    back = rooflax.SweepSpec.from_dict(spec.to_dict())
    for item in dataclasses.fields(rooflax.SweepSpec):
        if item.name != "given_axes":  # how the axes were written: metadata keeps it apart
            assert getattr(back, item.name) == getattr(spec, item.name), item.name
            if item.default is not dataclasses.MISSING:
                assert getattr(spec, item.name) != item.default, f"{item.name} is at its default: not tested"
    assert back == spec and back.to_json() == spec.to_json()


def test_spec_dict_refuses_unknown_keys():
    data = rooflax.default_spec().to_dict()
    one_line_error(
        lambda: rooflax.SweepSpec.from_dict({**data, "trees": "chain"}),
        "spec: unknown key 'trees'",
        "did you mean 'tree'",
    )
    one_line_error(
        lambda: rooflax.SweepSpec.from_dict({**data, "axes": {**data["axes"], "batches": [1]}}),
        "spec.axes: unknown key 'batches'",
    )


@pytest.mark.slow
def test_show_prices_verify_with_the_datasets_tree(tmp_path):
    spec = rooflax.parse_spec(
        phases=["decode", "verify"], tree="chain", spec_k=[16, 32], batch=[1, 8], seq_len=[512, 2048]
    )
    out = rooflax.sweep_to_parquet(spec, tmp_path / "ds")
    assert rooflax.describe(out).tokens.equals(rooflax.describe(rooflax.sweep(spec), spec=spec).tokens)
    without = spec.with_keys(tree=None)
    assert not rooflax.describe(rooflax.sweep(without), spec=without).tokens.equals(rooflax.describe(out).tokens)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return rooflax.sweep_to_parquet(
        rooflax.parse_spec(batch=list(range(1, 41)), seq_len=[128, 1024]), tmp_path_factory.mktemp("data") / "ds"
    )


@pytest.mark.slow
def test_export_to_no_path_is_one_line(dataset):
    one_line_error(
        lambda: rooflax.export_dataset(dataset, None), "output: expected a file path ending in .csv, .ndjson, got None"
    )
    one_line_error(lambda: rooflax.export_dataset(dataset, 3), "got 3")


#: One subprocess runs every command of argv's JSON, each in its own folder (its first argument), under a file size
#: limit: every write fails as on a full disk (Python ignores SIGXFSZ, so a write past the limit fails with EFBIG).
#: Each command's exit code and standard error (a traceback if it raised) are printed as JSON, one line each.
_FILE_LIMIT_CHILD = """
import contextlib, io, json, os, resource, sys, traceback
from rooflax.cli.commands import main
limit, commands = json.loads(sys.argv[1])
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
for cwd, args in commands:
    os.chdir(cwd)
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(args)
        except BaseException:
            traceback.print_exc()
            code = 1
    print(json.dumps([code, err.getvalue()]), flush=True)
"""

_FAILED_WRITES = [
    ["export", "{ds}", "-o", "out.csv"],
    ["export", "{ds}", "-o", "out.ndjson"],
    ["crossover", "--seq-len", "128,256,512,1024", "-o", "out.csv", "--quiet"],
    ["crossover", "--seq-len", "128,256,512,1024", "-o", "out.parquet", "--quiet"],
    ["compare", "a40", "h100-sxm", "-o", "out.csv", "--quiet"],
]


@pytest.mark.slow
def test_a_failed_write_is_one_line_and_leaves_nothing(dataset, tmp_path):
    """Every writer on a full disk: one line naming the file, nothing left behind (one process for all, so one
    start-up; each command in a folder of its own)."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    folders = [tmp_path / str(i) for i in range(len(_FAILED_WRITES))]
    for folder in folders:
        folder.mkdir()
    commands = [(str(f), [a.format(ds=dataset) for a in args]) for f, args in zip(folders, _FAILED_WRITES, strict=True)]
    # without the suite's compilation cache (conftest.py): under the file-size limit JAX could not write it either,
    # and would warn
    env = {key: value for key, value in os.environ.items() if key != "JAX_COMPILATION_CACHE_DIR"}
    env["PYTHONPATH"] = str(Path(rooflax.__file__).parents[1])
    done = subprocess.run(
        [sys.executable, "-c", _FILE_LIMIT_CHILD, json.dumps([1000, commands])],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    results = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(results) == len(_FAILED_WRITES), done.stdout
    for (code, err), folder, args in zip(results, folders, _FAILED_WRITES, strict=True):
        assert code == 2, (args, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and "cannot write 'out." in lines[0], (args, err)
        assert "nothing was written" in lines[0] and "File too large" in lines[0], args
        assert list(folder.iterdir()) == [], args


def test_validate_checks_its_outputs_before_timing(tmp_path, monkeypatch, capsys):
    import errno

    import rooflax.data._atomic
    import rooflax.validate.run
    from rooflax.cli.commands import main

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    def never(**kwargs):
        raise AssertionError("validate ran before its outputs were checked")

    monkeypatch.setattr(rooflax.validate.run, "validate", never)
    monkeypatch.setattr(rooflax.data._atomic.tempfile, "mkstemp", read_only)
    assert main(["validate", "--quick", "-o", str(tmp_path / "ro" / "v.parquet")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"error: -o/--output: cannot write {str(tmp_path / 'ro' / 'v.parquet')!r}: {str(tmp_path)!r} "
        "takes no new file (Read-only file system)"
    )


@pytest.mark.slow
def test_a_killed_writers_temporary_file_is_reclaimed(dataset, tmp_path):
    """A kill mid-write leaves ``.NAME.tmp``; the next write of NAME takes it over, and leaves nothing."""
    import signal
    import subprocess
    import sys

    out = tmp_path / "big.csv"
    tmp = tmp_path / ".big.csv.tmp"
    code = (
        "import sys, time; import rooflax.data._atomic as a; from pathlib import Path; "
        "a.atomic_write(Path(sys.argv[1]), lambda t: (t.write_text('half'), print('writing', flush=True), "
        "time.sleep(600)))"
    )
    writer = subprocess.Popen([sys.executable, "-c", code, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline() == "writing\n"
        one_line_error(
            lambda: rooflax.export_dataset(dataset, out), "output: another process is writing", ".big.csv.tmp"
        )  # a live writer's file is never written over
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        writer.stdout.close()
    assert tmp.read_text() == "half" and not out.exists()  # what a kill leaves
    rows = rooflax.export_dataset(dataset, out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.csv"]
    assert rows == len(out.read_text().splitlines()) - 1


@pytest.mark.parametrize(
    ("by", "tokens"), [("k", [1.9, 1.2, 1.5]), ("k", [1.5, 1.5, 1.4]), ("candidates", [1.8, 1.9, 1.1])]
)
def test_acceptance_tables_may_not_fall(by, tokens):
    keys = [1, 2, 3] if by == "k" else [2, 3, 4]
    falls = next(i for i in range(1, 3) if tokens[i] < tokens[i - 1])
    one_line_error(
        lambda: rooflax.speculate(
            batch=[1], seq_len=[64], acceptance={"kind": "table", "by": by, by: keys, "tokens_per_round": tokens}
        ),
        f"acceptance.tokens_per_round: {tokens[falls]:g} at {by} = {keys[falls]} is below {tokens[falls - 1]:g} at "
        f"{by} = {keys[falls - 1]}",
        "cannot fall",
    )
    rising = sorted(tokens)
    assert (
        rooflax.speculate(
            batch=[1],
            seq_len=[64],
            k=keys if by == "k" else None,
            tree=None if by == "k" else [{"depths": [1, *[2] * (c - 1)]} for c in keys],
            acceptance={"kind": "table", "by": by, by: keys, "tokens_per_round": rising},
        )
        .get_column("tokens_per_round")
        .to_list()
        == rising
    )


@pytest.mark.parametrize("call", [rooflax.speculate, rooflax.best_k])
@pytest.mark.parametrize("key", ["phases", "spec_k"])
def test_speculate_refuses_spec_keys_it_sets_itself(call, key):
    value = ["decode"] if key == "phases" else [4]
    one_line_error(lambda: call(batch=[1], seq_len=[64], **{key: value}), f"{key}: speculate", f"reads no {key}")


@pytest.mark.parametrize("along", ["batch", "seq_len", "hidden"])
def test_crossover_refuses_values_of_the_crossed_axis(along):
    one_line_error(
        lambda: rooflax.crossover(along=along, **{along: [4096]}),
        f"{along}: the crossover is searched along {along}",
        f"leave {along} out",
    )
    one_line_error(lambda: rooflax.crossover(along=along, axes={along: [4096]}), f"{along}: the crossover")


@pytest.mark.slow
def test_crossover_where_names_values_that_no_row_holds(capsys):
    from rooflax.cli.commands import main

    for where, value, column, hint in (
        ("phase = 'decod'", "decod", "phase", "'decode'"),
        ("op IN ('up_proj', 'qkv')", "qkv", "op", "'qkv_proj' or 'qk' or 'kv_up'"),
        ("batch > 1 AND hardware <> 'a4O'", "a4O", "hardware", "'a40'"),
    ):
        assert main(["crossover", "--seq-len", "128", "--where", where]) == 2
        out, err = capsys.readouterr()
        assert out == "" and err == (
            f"error: --where: cannot apply {where!r}: {value!r} is no value of {column}; did "
            f"you mean {hint}? (allowed: {', '.join(_categories(column))})\n"
        )
    assert main(["crossover", "--seq-len", "128", "--where", "phase = 'decode' AND op = 'qk'"]) == 0
    assert "qk" in capsys.readouterr().out


def _categories(column: str) -> list[str]:
    return rooflax.crossover(seq_len=[128]).schema[column].categories.to_list()


#: The commands of argv's JSON one after another in one process, on its own standard streams: after each, a line
#: on both streams says its exit code (as ``python -m rooflax.cli`` would exit).
_COMMANDS_CHILD = """
import json, sys
from rooflax.cli.commands import main
for args in json.loads(sys.argv[1]):
    code = main(args)
    for stream in (sys.stdout, sys.stderr):
        print(f"{_END} {code}", file=stream, flush=True)
"""
_END = "--- rooflax test: the command exited"

_LOCALE_COMMANDS = [
    ["sweep", "-o", "{tmp}/ds", "--batch", "1,64", "--seq-len", "128,4096"],
    ["show", "{ds}"],
    ["compare", "a40", "h100-sxm", "--batch", "1,8"],
    ["sweep", "-o", "{tmp}/bad", "--batch", str(2**60)],
]


def _each_command(stream: bytes) -> list[tuple[str, int]]:
    """A stream of :data:`_COMMANDS_CHILD` split into each command's text (ASCII) and exit code."""
    out, lines = [], []
    for line in stream.decode("ascii").splitlines():
        if line.startswith(_END):
            out.append(("\n".join(lines), int(line.removeprefix(_END))))
            lines = []
        else:
            lines.append(line)
    assert not lines, lines  # nothing after the last command's end
    return out


@pytest.mark.slow
def test_every_command_prints_in_an_ascii_locale(dataset, tmp_path, capsys):
    """LC_ALL=C without UTF-8 mode: stdout and stderr are ASCII; text comes out with ASCII replacements of what
    the same command prints on UTF-8 streams (in-process, as pytest captures them). One process runs every command
    (one start-up), on the streams the locale gave it."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    from rooflax.answers.tables import ASCII
    from rooflax.cli.commands import main

    commands = [[a.format(tmp=tmp_path / "c", ds=dataset) for a in args] for args in _LOCALE_COMMANDS]
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONIOENCODING", "LC_ALL", "LANG")}
    env.update(PYTHONPATH=str(Path(rooflax.__file__).parents[1]), LC_ALL="C", PYTHONUTF8="0")
    child = _COMMANDS_CHILD.replace("_END", repr(_END))
    done = subprocess.run(
        [sys.executable, "-c", child, json.dumps(commands)], cwd=tmp_path, env=env, capture_output=True, timeout=600
    )
    assert done.returncode == 0 and b"Traceback" not in done.stderr, done.stderr
    outs, errs = _each_command(done.stdout), _each_command(done.stderr)
    assert len(outs) == len(errs) == len(commands)
    table = str.maketrans(ASCII)
    for args, (out, code), (err, same_code) in zip(commands, outs, errs, strict=True):
        want = main([a.replace(str(tmp_path / "c"), str(tmp_path / "u")) for a in args])
        utf8 = capsys.readouterr()
        assert code == same_code == want and code in (0, 2), (args, err)
        for got, text in ((out, utf8.out), (err, utf8.err)):
            expected = text.replace(str(tmp_path / "u"), str(tmp_path / "c")).translate(table)
            assert _steady(got) == _steady(expected), args
        assert args[0] != "compare" or "x  " in out  # speedups: 6.61x, not 6.61×
    assert [code for _, code in outs] == [0, 0, 0, 2]


def _steady(text: str) -> list[str]:
    """Lines but the size estimate, whose free space and seconds change from run to run."""
    return [line for line in text.splitlines() if not line.startswith("sweep: ")]


_GPU = {"name": "x", "peak_flops": {"fp16": 1e14}, "bandwidth_bytes_per_s": 1e12, "memory_bytes": 1e9}


@pytest.mark.parametrize(
    ("key", "value", "allowed"),
    [
        ("bandwidth_bytes_per_s", 1e300, "1e+06 to 1e+16 B/s"),
        ("bandwidth_bytes_per_s", 1e-300, "1e+06 to 1e+16 B/s"),
        ("peak_flops", {"fp16": 1e308}, "1e+06 to 1e+19 FLOP/s"),
        ("memory_bytes", 1e20, "1000 to 1e+16 B"),
        ("interconnect_bytes_per_s", 1e3, "1e+06 to 1e+16 B/s"),
        ("interconnect_latency_s", 1e5, "1e-10 to 1 s"),
        ("kernel_overhead_s", 1e-20, "1e-12 to 1 s"),
        ("compute_efficiency", 1e-9, "0.0001 to 1"),
        ("group_terms", {"qk/pv": {"bandwidth_efficiency": 2.0}}, "0.0001 to 1"),
    ],
)
def test_hardware_figures_must_be_physical(key, value, allowed, tmp_path):
    field = {"peak_flops": "peak_flops.fp16", "group_terms": "group_terms.qk/pv: bandwidth_efficiency"}.get(key, key)
    shown = next(iter(value.values())) if isinstance(value, dict) else value
    shown = next(iter(shown.values())) if isinstance(shown, dict) else shown
    one_line_error(
        lambda: rooflax.Hardware(**{**_GPU, key: value}), f"hardware 'x': {field}: {shown:g} is outside", allowed
    )
    import re

    from rooflax.config.hardware import hardware_to_toml

    text = hardware_to_toml(rooflax.Hardware(**_GPU))  # the same figure in a hardware file
    if key == "group_terms":
        text += '\n[group_terms."qk/pv"]\nbandwidth_efficiency = 2.0\n'
    else:
        line = "fp16" if key == "peak_flops" else key
        text = re.sub(rf"^{line} = .*$", f"{line} = {shown!r}", text, flags=re.M)
    path = tmp_path / "x.toml"
    path.write_text(text)
    one_line_error(lambda: rooflax.sweep(hardware=str(path), batch=[1], seq_len=[128]), str(path), field, allowed)


@pytest.mark.parametrize(
    "figures",
    [
        dict(peak=1e19, bandwidth=1e6),
        dict(peak=1e6, bandwidth=1e16),
        dict(peak=1e19, bandwidth=1e16),
        dict(peak=1e6, bandwidth=1e6),
    ],
)
def test_the_bound_at_the_extreme_figures_is_the_exact_one(figures):
    """At the edges of the ranges, evaluate, sweep and crossover still agree with exact rational arithmetic."""
    from fractions import Fraction

    hw = rooflax.Hardware(
        name="edge", peak_flops={"fp16": figures["peak"]}, bandwidth_bytes_per_s=figures["bandwidth"], memory_bytes=1e16
    )
    ridge = Fraction(figures["peak"]) / Fraction(figures["bandwidth"])
    df = rooflax.sweep(hardware=hw, phases=["prefill", "decode"], batch=[1, 2**20, 2**40], seq_len=[1, 2**20, 2**40])
    assert df.select(pl.col("time_s").is_finite().all(), pl.col("achieved_time_s").is_finite().all()).row(0) == (
        True,
        True,
    )
    for row in df.filter(pl.col("batch") == 2**20).iter_rows(named=True):
        exact = Fraction(int(row["flops"])) / Fraction(int(row["bytes"])) >= ridge
        assert (row["bound"] == "compute") == exact
        point = rooflax.evaluate(hardware=hw, phase=row["phase"], batch=row["batch"], seq_len=row["seq_len"])
        assert point.ops[row["op"]].bound == row["bound"]
    cross = rooflax.crossover(hardware=hw, phases=["decode"], seq_len=[2048])
    for row in cross.drop_nulls("crossover").iter_rows(named=True):
        at = rooflax.evaluate(hardware=hw, phase="decode", batch=row["crossover"], seq_len=2048).ops[row["op"]]
        assert at.bound == "compute" and at.intensity >= hw.ridge("fp16")


_BIG = {"start": 1, "stop": 10**7, "step": 1}


@pytest.fixture(scope="module")
def huge():
    """10^7 batch sizes × 10^7 sequence lengths: 10^14 grid points, parsed once (seconds) for the module."""
    return rooflax.parse_spec(batch=_BIG, seq_len=_BIG)


@pytest.mark.slow
def test_planning_is_lazy_and_counts_agree_with_the_plan(huge):
    from rooflax.data import dataset
    from rooflax.engine import vectorized as engine
    from rooflax.engine.distributed import Cluster

    spec = rooflax.parse_spec(
        model=["llama-7b", "toy-llama"],
        hardware=["a40", "l4"],
        phases=["decode", "verify"],
        spec_k=[4, 64],
        batch=[1, 3, 8],
        seq_len=[16, 100, 512, 4096],
        tp=[1, 2],
    )
    for summary, chunk_size in ((False, 5), (True, 7), (False, 1 << 15)):
        tasks = list(engine.plan(spec, chunk_size))
        rows = [t.count * t.width(summary) for t in tasks]
        assert [t.index for t in tasks] == list(range(len(tasks))) == list(range(engine.chunk_count(spec, chunk_size)))
        assert sum(rows) == (spec.configurations() if summary else spec.rows())
        done = frozenset(range(0, len(tasks), 3))
        assert engine.chunk_rows(spec, chunk_size, summary, done) == [rows[i] for i in sorted(done)]
        for n in (1, 2, 3):
            clusters = [Cluster(process_id=p, num_processes=n, run=0) for p in range(n)]
            shares = [dataset._share_rows(spec, chunk_size, summary, cluster, done) for cluster in clusters]
            assert shares == [sum(r for i, r in enumerate(rows) if i % n == p and i not in done) for p in range(n)]
    assert engine.chunk_count(huge, 1 << 15) == 2 * -(-(10**14) // (1 << 15))  # counted, not listed
    first = next(engine.plan(huge, 1 << 15))
    assert (first.index, first.start, first.count) == (0, 0, 1 << 15)


@pytest.mark.slow
def test_a_huge_streamed_sweep_starts_at_once(huge, tmp_path, capsys):
    """10^14 grid points: the first part is computed at once and the disk estimate refuses (no plan is listed)."""
    with pytest.raises(rooflax.SpecError) as refused:
        rooflax.sweep_to_parquet(huge, tmp_path / "huge", progress=True)
    assert f"sweep: {huge.rows():,} rows in {2 * -(-(10**14) // 2**15):,} parts" in capsys.readouterr().err
    assert str(refused.value).startswith("output: the sweep needs about ") and "\n" not in str(refused.value)
    assert not (tmp_path / "huge").exists() and not (tmp_path / "huge.partial").exists()


@pytest.mark.slow
def test_the_disk_estimate_counts_whole_blocks_per_part(tmp_path, monkeypatch):
    """Many small parts: each takes whole filesystem blocks, and its footer whatever its rows."""
    import os

    from rooflax.data import dataset

    seen = {}
    real = dataset._check_room

    def spy(partial, **kwargs):
        seen.update(kwargs)
        return real(partial, **kwargs)

    monkeypatch.setattr(dataset, "_check_room", spy)
    spec = rooflax.parse_spec(
        phases=["prefill", "decode", "verify"],
        spec_k=[16, 32],
        batch=[1, 2, 4, 8, 16],
        seq_len=[128, 256, 512, 1024, 2048, 4096, 8192, 16384],
    )
    out = rooflax.sweep_to_parquet(spec, tmp_path / "ds", chunk_size=1, progress=True)
    parts = sorted(out.glob("part-*.parquet"))
    assert len(parts) == seen["parts"] > 100
    used = sum(os.stat(p).st_blocks * 512 for p in parts)  # what the parts take on disk
    assert 0.9 * used <= seen["need"] <= 1.1 * used


# Past the 8 GiB in-memory limit on every call below, in a second's parsing: a million values an axis (speculate's
# frame, a row per draft length and seq_len, passes it only with ten million).
_LARGE = {"start": 1, "stop": 10**6, "step": 1}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("what", "call"),
    [
        ("crossover", lambda: rooflax.crossover(seq_len=_LARGE)),
        ("crossover", lambda: rooflax.crossover(along="seq_len", batch=_LARGE)),
        ("compare", lambda: rooflax.compare(a="a40", b="l4", seq_len=_LARGE)),
        ("speculate", lambda: rooflax.speculate(batch=[1], seq_len=_BIG)),
        ("speculate", lambda: rooflax.best_k(batch=[1], seq_len=_BIG)),
        ("sweep", lambda: rooflax.sweep(batch=_LARGE, seq_len=_LARGE)),
    ],
)
def test_in_memory_answers_refuse_huge_grids_up_front(what, call):
    message = one_line_error(call, f"{what}: ", " rows would take about ", "GiB in memory, above the limit of 8.0 GiB")
    assert "smaller grid" in message or "fewer values" in message


@pytest.mark.slow
def test_validate_spreads_points_over_a_huge_grid_without_listing_it(huge):
    from rooflax.validate.run import points_from_spec

    spec = rooflax.parse_spec(
        phases=["prefill", "decode", "verify"],
        spec_k=[16, 300],
        batch=[1, 3, 8, 64],
        seq_len=[16, 128, 512, 1000, 4096],
    )
    grid = [(phase, b, s, k) for phase, k, first in spec.steps() for b in spec.batch for s in spec.seq_len[first:]]
    for most in (1, 2, 5, 12, len(grid), 100):
        chosen = points_from_spec(spec, most)[1]
        step = (len(grid) - 1) / max(most - 1, 1)
        assert chosen == (tuple(grid) if len(grid) <= most else tuple(grid[round(i * step)] for i in range(most)))
    points = points_from_spec(huge, 3)[1]
    assert points == (("prefill", 1, 1, None), ("decode", 1, 1, None), ("decode", 10**7, 10**7, None))
