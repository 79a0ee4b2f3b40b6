"""What a sweep found: rooflax.describe, rooflax show, the report after a sweep."""

from __future__ import annotations

import io
from collections import Counter

import polars as pl
import pytest

import rooflax
from rooflax.answers import report as report_module
from rooflax.answers.tables import show
from rooflax.cli.commands import main

KEYS = dict(
    phases=["prefill", "decode", "verify"],
    batch=[1, 8, 64, 512],
    seq_len=[256, 2048, 4096],
    spec_k=[16],
    hardware=["a40", "l4"],
)


def test_bound_shares_count_the_rows():
    df = rooflax.sweep(**KEYS)
    got = rooflax.describe(df).bounds
    counts = Counter((row["phase"], row["group"], row["bound"]) for row in df.iter_rows(named=True))
    for row in got.iter_rows(named=True):
        memory, compute = counts[row["phase"], row["group"], "memory"], counts[row["phase"], row["group"], "compute"]
        assert row["rows"] == memory + compute
        assert row["compute_share"] == pytest.approx(compute / (memory + compute))
        assert row["memory_share"] == pytest.approx(memory / (memory + compute))
    assert got.height == len({(p, g) for p, g, _ in counts})


@pytest.mark.slow
def test_crossovers_are_exact_at_the_median_seq_len():
    rep = rooflax.describe(rooflax.sweep(**KEYS), spec=rooflax.parse_spec(**KEYS))
    cross = rep.crossovers
    assert set(cross.get_column("seq_len")) == {2048}
    row = cross.filter(hardware="a40", phase="decode", group="up/gate/down").row(0, named=True)
    c = row["first"]
    assert row["last"] == c and row["never"] == 0

    def bound(batch: int) -> str:
        point = rooflax.evaluate(phase="decode", batch=batch, seq_len=2048, hardware="a40")
        return point.ops["up_proj"].bound

    assert bound(c) == "compute" and bound(c - 1) == "memory"
    assert cross.filter(group="qk/pv").get_column("first").null_count() == cross.filter(group="qk/pv").height
    assert "never for qk/pv, elementwise" in rep.text()
    line = next(line for line in rep.text().splitlines() if line.split()[:3] == ["decode", "-", "up/gate/down"])
    assert line.split()[3] == str(c)  # spec_k "-", then the a40 column: within the sweep's batches (up to 512)
    small = rooflax.describe(
        rooflax.sweep(phases=["decode"], batch=[1, 8], seq_len=[2048]),
        spec=rooflax.parse_spec(phases=["decode"], batch=[1, 8], seq_len=[2048]),
    )
    assert any(line.split()[:4] == ["decode", "up/gate/down", str(c), "*"] for line in small.text().splitlines())


def test_tokens_and_memory_from_a_dataset_equal_the_summary_frame(tmp_path, monkeypatch):
    out = rooflax.sweep_to_parquet(None, tmp_path / "ds", summary=True, chunk_size=5, **KEYS)
    sizes = []
    real = report_module._best_worst
    monkeypatch.setattr(report_module, "_best_worst", lambda df: sizes.append(df.height) or real(df))
    rep = rooflax.describe(out)
    parts = len(list(out.iterdir()))
    assert max(sizes[:-1]) <= 5 and sizes[-1] == 2 * parts  # part by part, then 2 candidates a part: never all rows
    tot = rooflax.sweep(summary=True, **KEYS)
    for phase in KEYS["phases"]:
        rows = tot.filter(phase=phase)
        fit = rows.filter("fits_in_memory")
        best = rep.tokens.filter(phase=phase, rank="best").row(0, named=True)
        worst = rep.tokens.filter(phase=phase, rank="worst").row(0, named=True)
        assert best["tokens_per_s"] == (fit if fit.height else rows).get_column("tokens_per_s").max()
        assert worst["tokens_per_s"] == rows.get_column("tokens_per_s").min()
        for hw in KEYS["hardware"]:
            mine = rows.filter(pl.col("hardware") == hw)
            mem = rep.memory.filter(phase=phase, hardware=hw).row(0, named=True)
            assert (mem["configurations"], mem["fit"]) == (mine.height, mine.get_column("fits_in_memory").sum())
            misfit = mine.filter(~pl.col("fits_in_memory"))
            assert mem["misfit_bytes"] == (misfit.get_column("memory_bytes").min() if misfit.height else None)
            assert mem["capacity_bytes"] == rooflax.HARDWARE[hw].memory_bytes
    assert rep.bounds is None and rep.crossovers is not None and rep.rows == tot.height


def test_long_dataset_totals_come_from_its_spec(tmp_path):
    out = rooflax.sweep_to_parquet(None, tmp_path / "ds", **KEYS)
    rep = rooflax.describe(out)
    tot = rooflax.sweep(summary=True, **KEYS)
    assert rep.rows == rooflax.sweep(**KEYS).height and rep.kind == "ops"
    worst = rep.tokens.filter(phase="decode", rank="worst").row(0, named=True)
    assert worst["tokens_per_s"] == tot.filter(phase="decode").get_column("tokens_per_s").min()
    assert worst["hardware"] == "l4" and worst["batch"] == 1 and worst["seq_len"] == 4096


def test_frame_without_spec_says_what_is_missing():
    rep = rooflax.describe(rooflax.sweep(batch=[1], seq_len=[128]))
    assert rep.crossovers is None and rep.tokens is None
    assert "note: pass spec= for the crossovers and model totals" in rep.text()
    with pytest.raises(rooflax.SpecError, match=r"^source: expected a dataset path or a polars frame, got int"):
        rooflax.describe(3)


def test_sweep_prints_the_report_and_show_repeats_it(tmp_path, capsys):
    out = str(tmp_path / "ds")
    assert main(["sweep", "-o", out, "--phases", "decode", "--batch", "1,256", "--seq-len", "2048"]) == 0
    after_sweep = capsys.readouterr().out
    assert after_sweep.startswith(f"wrote 30 rows to {out}/\n{out}: 30 rows (long frame, one row per op)\n")
    lines = after_sweep.splitlines()
    mlp = next(line for line in lines if line.startswith("decode") and "up/gate/down" in line and "%" in line)
    assert mlp.split() == ["decode", "up/gate/down", "6", "50%", "50%"]  # memory-bound at batch 1, compute at 256
    assert any(line.split()[:3] == ["decode", "up/gate/down", "229"] for line in lines)
    assert "stops fitting at" in after_sweep
    assert main(["show", out]) == 0
    assert capsys.readouterr().out == after_sweep.split("\n", 1)[1]
    assert main(["sweep", "-o", str(tmp_path / "q"), "--batch", "1", "--seq-len", "64", "--quiet"]) == 0
    assert capsys.readouterr().out == ""
    assert main(["show", str(tmp_path / "missing")]) == 2
    assert capsys.readouterr().err == f"error: dataset: {str(tmp_path / 'missing')!r} does not exist\n"


def test_terminal_gets_rich_tables():
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    rep = rooflax.describe(rooflax.sweep(phases=["decode"], batch=[1], seq_len=[128]))
    plain, terminal = io.StringIO(), Terminal()
    show(rep.tables(), file=plain)
    show(rep.tables(), file=terminal)
    assert plain.getvalue() == rep.text() + "\n"
    assert "┃" in terminal.getvalue() or "│" in terminal.getvalue()
    assert "up/gate/down" in terminal.getvalue() and terminal.getvalue() != plain.getvalue()


def _shares(df: pl.DataFrame) -> dict[tuple[str, str], dict[str, float]]:
    """Per (phase, group): the share of rows of each bound, counted in Python (None: unknown)."""
    counts = Counter((row["phase"], row["group"], row["bound"]) for row in df.iter_rows(named=True))
    totals = Counter((phase, group) for phase, group, _ in counts.elements())
    return {
        key: {bound or "unknown": counts[(*key, bound)] / n for (*k, bound) in counts if tuple(k) == key}
        for key, n in totals.items()
    }


@pytest.mark.slow
def test_collectives_are_network_bound_in_their_own_column(tmp_path, capsys):
    keys = dict(model="llama-2-70b", hardware="h100-sxm", phases=["decode"], batch=[1, 256], seq_len=[512], tp=[1, 2])
    df = rooflax.sweep(**keys)
    rep = rooflax.describe(df, spec=rooflax.parse_spec(**keys))
    expected = _shares(df)
    for row in rep.bounds.iter_rows(named=True):
        want = expected[row["phase"], row["group"]]
        for bound in ("memory", "compute", "network"):
            assert row[f"{bound}_share"] == pytest.approx(want.get(bound, 0.0)), (row, bound)
    assert rep.bounds.filter(group="comm").get_column("network_share").to_list() == [1.0]
    header = next(line for line in rep.text().splitlines() if line.startswith("phase") and "rows" in line)
    assert header.split() == ["phase", "group", "rows", "memory", "compute", "network"]
    assert "no crossovers" not in rep.text()


def _first_compute_batch(op: str, **point) -> int:
    """The smallest batch at which ``op`` is compute-bound by evaluate, doubling then bisecting (monotone)."""

    def compute(batch: int) -> bool:
        return rooflax.evaluate(batch=batch, **point).ops[op].bound == "compute"

    hi = 1
    while not compute(hi):
        hi *= 2
    lo = hi // 2  # memory-bound (or 0)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if compute(mid) else (mid, hi)
    return hi


def test_crossovers_per_layout_and_collectives_named_network_bound():
    keys = dict(model="llama-2-70b", hardware="h100-sxm", phases=["decode"], batch=[1, 256], seq_len=[512], tp=[1, 8])
    rep = rooflax.describe(rooflax.sweep(**keys), spec=rooflax.parse_spec(**keys))
    cross = rep.crossovers
    assert set(cross.get_column("tp")) == {1, 8}
    table = next(t for t in rep.tables() if not isinstance(t, str) and t.title.startswith("smallest batch"))
    assert table.header == ("phase", "group", "tp 1", "tp 8")  # a column per layout
    lm_head = next(row for row in table.rows if row[:2] == ("decode", "lm_head"))
    for tp, cell in zip((1, 8), lm_head[2:], strict=True):
        row = cross.filter(tp=tp, group="lm_head").row(0, named=True)
        expected = _first_compute_batch(
            "lm_head", model="llama-2-70b", hardware="h100-sxm", phase="decode", seq_len=512, tp=tp
        )
        assert row["first"] == row["last"] == expected
        assert cell == f"{expected} *"  # beyond the sweep's largest batch, 256
    comm = cross.filter(group="comm")
    assert comm.get_column("tp").to_list() == [8] and comm.get_column("first").null_count() == 1
    assert "comm (collectives) network-bound" in table.title and all(row[1] != "comm" for row in table.rows)


@pytest.mark.slow
def test_moe_sweep_reports_crossovers():
    keys = dict(model="mixtral-8x7b", phases=["decode"], batch=[1, 256], seq_len=[512])
    rep = rooflax.describe(rooflax.sweep(**keys), spec=rooflax.parse_spec(**keys))
    row = rep.crossovers.filter(group="lm_head").row(0, named=True)
    assert row["first"] == _first_compute_batch("lm_head", model="mixtral-8x7b", phase="decode", seq_len=512)
    experts = rep.crossovers.filter(group="up/gate/down").row(0, named=True)
    assert experts["never"] == 1 and experts["ops"] == 4  # the router (h → 8) never; the routed experts do
    assert experts["first"] == _first_compute_batch("expert_up", model="mixtral-8x7b", phase="decode", seq_len=512)
    assert "no crossovers" not in rep.text() and "smallest batch" in rep.text()


@pytest.mark.parametrize(
    "bound", [pl.lit(None, pl.Int32), pl.lit(None), pl.when(pl.col("batch") == 1).then(pl.col("bound"))]
)
def test_show_counts_missing_bounds_as_unknown(tmp_path, capsys, bound):
    out = rooflax.sweep_to_parquet(None, tmp_path / "ds", phases=["decode"], batch=[1, 256], seq_len=[2048])
    part = next(out.iterdir())
    df = pl.read_parquet(part).with_columns(bound=bound)
    df.write_parquet(part, metadata=pl.read_parquet_metadata(part))
    expected = _shares(df)
    assert main(["show", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = next(line for line in lines if line.startswith("phase") and "rows" in line)
    assert header.split() == ["phase", "group", "rows", "memory", "compute", "unknown"]
    mlp = next(line for line in lines if line.startswith("decode") and "up/gate/down" in line and "%" in line)
    want = expected["decode", "up/gate/down"]
    assert mlp.split()[3:] == [f"{want.get(b, 0.0):.0%}" for b in ("memory", "compute", "unknown")]
    assert want["unknown"] > 0


def test_a_bound_column_of_another_type_is_one_line_error(tmp_path, capsys):
    out = rooflax.sweep_to_parquet(None, tmp_path / "ds", phases=["decode"], batch=[1], seq_len=[64])
    part = next(out.iterdir())
    df = pl.read_parquet(part).with_columns(bound=pl.struct(pl.col("batch")))
    df.write_parquet(part, metadata=pl.read_parquet_metadata(part))
    assert main(["show", str(out)]) == 2
    assert capsys.readouterr().err.startswith("error: bound: column of type Struct")


def test_tokens_and_memory_tell_layouts_apart():
    """Llama-2-70B (138 GB of fp16 weights) fits no 80 GB H100 alone, every layout from tp = 4 on."""
    keys = {
        "model": "llama-2-70b",
        "hardware": "h100-sxm",
        "phases": ["decode"],
        "batch": [1, 16],
        "seq_len": [512],
        "tp": [1, 4],
    }
    report = rooflax.describe(rooflax.sweep(summary=True, **keys), spec=rooflax.parse_spec(**keys))
    memory = {(r["tp"], r["fit"], r["configurations"]) for r in report.memory.iter_rows(named=True)}
    assert memory == {(1, 0, 2), (4, 2, 2)}
    assert report.tokens.filter(rank="best")["tp"].to_list() == [4]
    lines = [line.split() for line in report.text().splitlines()]
    assert ["tp", "phase", "fit", "capacity", "GB", "stops", "fitting", "at"] in lines
    assert ["1", "decode", "0", "of", "2", "80", "138.1", "GB", "at", "batch", "1,", "seq_len", "512"] in lines


@pytest.mark.slow
def test_show_answers_how_many_devices(tmp_path, capsys):
    """A sweep of layouts: per phase and layout what fits and its best configuration, then the best layout."""
    keys = dict(
        model="llama-2-70b",
        hardware="h100-sxm",
        phases=["prefill", "decode"],
        batch=[16, 64],
        seq_len=[4096],
        tp=[1, 2, 4, 8],
        pp=[1, 2],
    )
    assert (
        main(
            [
                "sweep",
                "--model",
                "llama-2-70b",
                "--hardware",
                "h100-sxm",
                "--phases",
                "prefill,decode",
                "--batch",
                "16,64",
                "--seq-len",
                "4096",
                "--tp",
                "1,2,4,8",
                "--pp",
                "1,2",
                "--summary",
                "-o",
                str(tmp_path / "ds"),
                "--quiet",
            ]
        )
        == 0
    )
    df = rooflax.sweep(summary=True, **keys)
    layouts = rooflax.describe(tmp_path / "ds").layouts
    assert layouts.height == 2 * 4 * 2
    for row in layouts.iter_rows(named=True):
        cell = df.filter(phase=row["phase"], tp=row["tp"], pp=row["pp"])
        fit = cell.filter("fits_in_memory")
        assert (row["configurations"], row["fit"], row["devices"]) == (cell.height, fit.height, row["tp"] * row["pp"])
        if fit.height:
            best = fit.sort("tokens_per_s", descending=True).row(0, named=True)
            assert (row["batch"], row["tokens_per_s"]) == (best["batch"], best["tokens_per_s"])
            assert row["tokens_per_s_per_device"] == pytest.approx(best["tokens_per_s_per_gpu"])
        else:
            assert row["tokens_per_s"] is None
    capsys.readouterr()
    assert main(["show", str(tmp_path / "ds")]) == 0
    out = capsys.readouterr().out
    assert "layouts: configurations that fit in each device's memory" in out
    for phase in ("prefill", "decode"):
        fit = df.filter(phase=phase, fits_in_memory=True)
        fewest = fit.with_columns(devices=pl.col("tp") * pl.col("pp"))["devices"].min()
        line = next(line for line in out.splitlines() if line.startswith(f"{phase}: fewest devices that fit"))
        assert line.startswith(f"{phase}: fewest devices that fit: {fewest} (")
        top = fit.sort("tokens_per_s", descending=True).row(0, named=True)
        assert f"most tokens/s: tp {top['tp']}, pp {top['pp']} (" in line


def test_every_command_with_axis_flags_takes_the_layout_axes():
    from rooflax.cli.commands import _parser

    commands = _parser()._subparsers._group_actions[0].choices
    with_axes = [name for name, sub in commands.items() if "--batch" in sub._option_string_actions]
    assert set(with_axes) == {"sweep", "crossover", "speculate", "best-k", "compare"}
    for name in with_axes:
        assert {"--tp", "--pp", "--ep"} <= set(commands[name]._option_string_actions), name


def test_tokens_table_shows_the_achieved_band_of_the_summary_rows():
    keys = dict(phases=["decode"], batch=[1, 8], seq_len=[512])
    rep = rooflax.describe(rooflax.sweep(summary=True, **keys), spec=rooflax.parse_spec(**keys))
    table = next(t for t in rep.tables() if not isinstance(t, str) and t.title.startswith("tokens/s per phase"))
    assert table.header[:5] == ("phase", "rank", "tokens/s", "achieved", "achieved band")
    summary = rooflax.sweep(summary=True, **keys)
    best = summary.sort("tokens_per_s", descending=True).row(0, named=True)
    tokens = best["batch"]  # decode: one token per sequence
    low, high = tokens / best["achieved_time_hi_s"], tokens / best["achieved_time_lo_s"]
    cell = next(row for row in table.rows if row[1] == "best")[4]
    assert cell == f"{low:.4g}–{high:.4g}"
    bare = rooflax.describe(rooflax.sweep(summary=True, hardware="mi300x", **keys))  # no band: no column
    tokens_table = next(t for t in bare.tables() if not isinstance(t, str) and t.title.startswith("tokens/s"))
    assert "achieved band" not in tokens_table.header
