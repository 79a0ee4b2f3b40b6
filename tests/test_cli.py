"""The command line, called in-process: exit codes, output files, messages."""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl
import pytest
from one_line import one_line_error

import rooflax
from rooflax.cli.commands import main

ROOT = Path(__file__).parent.parent


@pytest.mark.slow
def test_default_sweep_writes_dataset_and_chart(tmp_path, capsys):
    out, chart = tmp_path / "ds", tmp_path / "chart.png"
    assert main(["sweep", "-o", str(out), "--plot", str(chart)]) == 0
    assert pl.scan_parquet(out).collect().height == 1470
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    captured = capsys.readouterr()
    assert "wrote 1,470 rows" in captured.out
    parts = len(list(out.iterdir()))
    assert re.match(rf"sweep: 1,470 rows in {parts} parts, about [\d.]+kB on disk \(lz4, [\d.]+ B/row\)", captured.err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chart.png", "ds"]


@pytest.mark.slow
def test_sweep_summary_and_plot_kinds(tmp_path):
    spec = ROOT / "sweeps" / "llama13b_a40_spec.toml"
    assert main(["sweep", str(spec), "-o", str(tmp_path / "ds"), "--quiet"]) == 0
    assert rooflax.scan_dataset(tmp_path / "ds").collect().height == rooflax.sweep(spec).height
    for kind, extra in (
        ("roofline", []),
        ("family", ["--color-by", "spec_k", "--facet", "phase"]),
        ("map", ["--where", "hidden = 5120"]),
    ):
        chart = tmp_path / f"{kind}.svg"
        assert main(["plot", str(tmp_path / "ds"), "-o", str(chart), "--kind", kind, *extra, "--quiet"]) == 0
        assert chart.read_text().lstrip().startswith("<?xml")
    assert (
        main(
            ["sweep", str(spec), "-o", str(tmp_path / "sum"), "--summary", "--plot", str(tmp_path / "s.pdf"), "--quiet"]
        )
        == 0
    )
    assert (tmp_path / "s.pdf").read_bytes()[:4] == b"%PDF"
    assert (
        main(
            [
                "plot",
                str(tmp_path / "sum"),
                "-o",
                str(tmp_path / "tps.png"),
                "--kind",
                "map",
                "--value",
                "tokens_per_s",
                "--where",
                "phase = 'decode'",
                "--quiet",
            ]
        )
        == 0
    )
    assert (tmp_path / "tps.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_ratio_map_of_two_datasets(tmp_path, capsys):
    for hw in ("a40", "h100-sxm"):
        spec = tmp_path / f"{hw}.toml"
        spec.write_text(f"hardware = '{hw}'\nphases = ['decode']\n[axes]\nbatch = [1, 8]\nseq_len = [128, 1024]\n")
        assert main(["sweep", str(spec), "-o", str(tmp_path / hw), "--summary", "--quiet"]) == 0
        assert rooflax.scan_dataset(tmp_path / hw).collect().get_column("hardware").unique().to_list() == [hw]
    assert (
        main(
            [
                "plot",
                str(tmp_path / "a40"),
                "--versus",
                str(tmp_path / "h100-sxm"),
                "--kind",
                "map",
                "-o",
                str(tmp_path / "ratio.png"),
            ]
        )
        == 0
    )
    assert capsys.readouterr().out == f"wrote {tmp_path / 'ratio.png'}\n"
    assert (tmp_path / "ratio.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_custom_hardware_dataset_plots_from_its_metadata(tmp_path):
    (tmp_path / "gpu.toml").write_text(
        "name = 'labgpu'\nlabel = 'Lab GPU'\nbandwidth_bytes_per_s = 2e12\n"
        "memory_bytes = 8e10\n[peak_flops]\nfp16 = 5e14\n"
    )
    (tmp_path / "s.toml").write_text("hardware = 'gpu.toml'\n[axes]\nbatch = [1, 64]\nseq_len = [512]\n")
    assert (
        main(
            [
                "sweep",
                str(tmp_path / "s.toml"),
                "-o",
                str(tmp_path / "ds"),
                "--plot",
                str(tmp_path / "c.png"),
                "--quiet",
            ]
        )
        == 0
    )
    assert rooflax.dataset_metadata(tmp_path / "ds")["hardware"]["bandwidth_bytes_per_s"] == 2e12
    assert rooflax.scan_dataset(tmp_path / "ds").collect().get_column("hardware").unique().to_list() == ["labgpu"]
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_interrupted_sweep_says_how_to_resume(tmp_path, capsys, monkeypatch):
    from rooflax.data import dataset

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(dataset, "chunk_frame", interrupted)
    assert main(["sweep", "-o", str(tmp_path / "ds"), "--quiet"]) == 130
    assert f"kept in {tmp_path / 'ds'}.partial/, run the same command with --resume" in capsys.readouterr().err
    monkeypatch.undo()
    assert main(["sweep", "-o", str(tmp_path / "ds"), "--quiet", "--resume"]) == 0
    assert pl.scan_parquet(tmp_path / "ds").collect().height == 1470


@pytest.mark.slow
def test_resume_and_overwrite_flags(tmp_path, capsys, monkeypatch):
    from rooflax.data import dataset

    out = str(tmp_path / "ds")
    (tmp_path / "ds.partial").mkdir()  # killed before its first part: nothing to keep, so a plain run starts over
    assert main(["sweep", "-o", out, "--quiet"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]
    real, frames = dataset.chunk_frame, []

    def interrupted_after_one_part(chunk, spec, summary):
        if frames:
            raise KeyboardInterrupt
        frames.append(chunk)
        return real(chunk, spec, summary)

    monkeypatch.setattr(dataset, "chunk_frame", interrupted_after_one_part)
    assert main(["sweep", "-o", out, "--quiet", "--overwrite"]) == 130
    monkeypatch.undo()
    capsys.readouterr()
    assert main(["sweep", "-o", out, "--quiet", "--overwrite", "--summary", "--resume"]) == 2
    assert "ds.partial' was written by a different spec, kind, chunk size or rooflax version" in capsys.readouterr().err
    assert main(["sweep", "-o", out, "--quiet", "--overwrite", "--summary"]) == 0  # starts over
    assert rooflax.dataset_metadata(out)["kind"] == "summary" and sorted(p.name for p in tmp_path.iterdir()) == ["ds"]


@pytest.mark.slow
def test_check_says_whether_a_dataset_is_whole(tmp_path, capsys):
    out = rooflax.sweep_to_parquet(None, tmp_path / "ds", chunk_size=64, summary=True)
    parts = len(list(out.iterdir()))
    assert main(["check", str(out)]) == 0
    assert capsys.readouterr().out == (
        f"ok: {out}: {rooflax.sweep(summary=True).height:,} rows in {parts} parts, summary frame, "
        f"rooflax {rooflax.__version__}\n"
        "spec: llama-13b on a40 in fp16; prefill, decode; batch 1..64 (7 values) × seq_len 128..8192 (7 values) × "
        "hidden 5120\n"
    )
    (out / "part-000001.parquet").unlink()
    assert main(["check", str(out)]) == 2
    assert (
        capsys.readouterr().err == f"error: dataset: {str(out / 'part-000001.parquet')!r} is missing "
        f"({parts - 1} of {parts} parts present)\n"
    )


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda part: part.unlink(), "is missing"),
        (lambda part: part.write_bytes(b""), "is empty"),
        (lambda part: part.write_bytes(part.read_bytes()[: len(part.read_bytes()) // 2]), "is not a readable parquet"),
        (lambda part: pl.DataFrame({"batch": [1]}).write_parquet(part), "was not written by rooflax"),
    ],
)
def test_damaged_dataset_is_not_plotted(tmp_path, capsys, damage, message):
    out = rooflax.sweep_to_parquet(None, tmp_path / "ds", chunk_size=16)
    damage(out / "part-000002.parquet")
    for argv in (["check", str(out)], ["plot", str(out), "-o", str(tmp_path / "c.png")]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: dataset: {str(out / 'part-000002.parquet')!r} {message}")
        assert err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]


def test_a_sweep_to_an_output_being_written_is_refused(tmp_path, capsys):
    import fcntl
    import os

    (tmp_path / "ds.partial").mkdir()
    fd = os.open(tmp_path / "ds.partial" / ".rooflax.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        assert main(["sweep", "-o", str(tmp_path / "ds"), "--resume"]) == 2
    finally:
        os.close(fd)
    assert capsys.readouterr().err == (
        f"error: output: another sweep is writing to {str(tmp_path / 'ds')!r} (it holds "
        f"the lock in {str(tmp_path / 'ds.partial')!r}); wait for it to finish or stop "
        "it\n"
    )
    assert [p.name for p in (tmp_path / "ds.partial").iterdir()] == [".rooflax.lock"]


def test_a_disk_without_room_is_refused(tmp_path, capsys, monkeypatch):
    import shutil

    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**12, 10**12 - 1000, 1000))
    assert main(["sweep", "-o", str(tmp_path / "ds")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("sweep: 1,470 rows in ") and err[0].endswith("; 1.0kB free")
    assert err[1].startswith("error: output: the sweep needs about ") and len(err) == 2
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["sweep", "nothere.toml", "-o", "{tmp}/x"], "error: spec: 'nothere.toml' does not exist"),
        (["sweep", "-o", "{tmp}/x", "--plot", "{tmp}/c.jpg"], "error: --plot: .* allowed: .png, .svg, .pdf"),
        (["sweep", "-o", "{tmp}/x", "--chunk-size", "0"], "error: chunk_size: .* from 1 to 1048576 .*, got 0"),
        (["sweep", "-o", ""], "error: output: empty path"),
        (
            ["sweep", "-o", "{tmp}/ref.csv"],
            "error: output: .*ref.csv' looks like a .csv file name; a dataset is a folder",
        ),
        (["sweep", "-o", "{ds}/part-000000.parquet/x"], "error: output: .*part-000000.parquet' is a file"),
        (["sweep", "-o", "{ds}"], "error: output: .*ds' already exists; pass overwrite"),
        (["plot", "{tmp}/nothing", "-o", "{tmp}/c.png"], "error: dataset: .* does not exist"),
        (["check", "{tmp}/nothing"], "error: dataset: .* does not exist"),
        (["check", "{root}/README.md"], "error: dataset: '.*README.md' is not a readable parquet file"),
        (["plot", "{root}/README.md", "-o", "{tmp}/c.png"], "error: dataset: '.*README.md' is not a readable parquet"),
        (["check", "{tmp}"], "error: dataset: .* is not a part of a rooflax dataset"),
        (["plot", "{ds}", "-o", "{tmp}/c.png", "--where", "bacth > 1"], "error: --where: cannot apply"),
        (
            ["plot", "{ds}", "-o", "{tmp}/c.png", "--where", "phase = 'decod'"],
            "error: --where: .*'decod' is no value of phase; did you mean 'decode'",
        ),
        (
            ["plot", "{ds}", "-o", "{tmp}/c.png", "--where", "op = 'qkv'"],
            "error: --where: .*'qkv' is no value of op; did you mean 'qkv_proj' or 'qk'",
        ),
        (["plot", "{ds}", "-o", "{tmp}/c.png", "--where", "phase = 5"], "error: --where: cannot apply 'phase = 5'"),
        (
            ["plot", "{ds}", "-o", "{tmp}/c.png", "--where", "op LIKE '%proj'"],
            "error: --where: .*enums: .* CAST\\(op AS VARCHAR\\) LIKE '%proj'",
        ),
        (["plot", "{ds}", "-o", "{tmp}/c.png", "--where", " "], "error: --where: empty expression"),
        (
            ["plot", "{ds}", "-o", "{tmp}/c.png", "--x", "seq_len"],
            "error: --x: only read by --kind map, not --kind roofline",
        ),
        (
            ["plot", "{ds}", "-o", "{tmp}/c.png", "--kind", "map", "--ideal"],
            "error: --ideal: only read by --kind roofline or family, not --kind map",
        ),
        (["plot", "{ds}", "-o", "{tmp}/c.png", "--where", "batch > 100000"], "the frame is empty"),
        (["plot", "{ds}", "-o", "{tmp}/c.png", "--kind", "family"], "error: --kind family: give --color-by"),
        (["plot", "{ds}", "-o", "{tmp}/c.png", "--kind", "map", "--value", "nope"], "unknown name 'nope'"),
        (["plot", "{ds}", "-o", "{tmp}/c.png", "--kind", "map", "--x", "hiden"], "did you mean 'hidden'"),
        (["plot", "{ds}", "-o", "{tmp}/c.png", "--groups", "mlp"], "error: groups: unknown name 'mlp'"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, argv, message):
    ds = tmp_path / "ds"
    rooflax.sweep_to_parquet(None, ds, batch=[1, 2], seq_len=[16])
    capsys.readouterr()
    argv = [a.format(tmp=tmp_path, ds=ds, root=ROOT) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert re.search(message, err), err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]  # nothing half-written


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["plot", "x", "-o", "c.png", "--kind", "pie"], "error: rooflax plot: argument --kind: invalid choice: 'pie'"),
        (["sweep", "--chunk-size", "abc"], "error: rooflax sweep: argument --chunk-size: invalid int value: 'abc'"),
        (["swep"], "error: rooflax: argument command: invalid choice: 'swep' .*; did you mean 'sweep'"),
        (["sweep", "--bach", "3"], "error: rooflax sweep: unrecognized arguments: --bach; did you mean --batch\\?"),
        (
            ["crossover", "--alng=seq_len"],
            "error: rooflax crossover: unrecognized arguments: --alng=seq_len; did you mean --along\\b",
        ),
        (["best-k", "--medusa-heads", "five"], "error: rooflax best-k: argument --medusa-heads: invalid int value"),
        (["plot", "x"], "error: rooflax plot: the following arguments are required: -o/--output"),
        ([], "error: rooflax: the following arguments are required: command"),
    ],
)
def test_argparse_errors_are_one_line(capsys, argv, message):
    """argparse's own refusals (types, choices, unknown flags) print one error line, no usage block, exit 2."""
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert re.fullmatch(message + ".*\n", captured.err), captured.err
    assert captured.out == "" and "usage:" not in captured.err


def test_listing_commands(capsys):
    assert main(["hardware"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"a40\s+A40\s+37\.4\s+74\.8\s+149\.7\s+149\.7\s+-\s+299\.3\s+-\s+-\s+696\s+48\s+215", out)
    assert main(["models"]) == 0
    assert re.search(
        r"llama-13b\s+Llama 13B\s+5120\s+40\s+40\s+40\s+128\s+13824\s+32000\s+13\.02B", capsys.readouterr().out
    )


def test_readme_first_lines_are_the_two_commands():
    first = (ROOT / "README.md").read_text().split("```")[1]
    assert "rooflax sweep" in first and "--plot out/llama13b_a40.png" in first  # out/ is git-ignored
    assert "bash .ci/run" in first
    assert "python3 -m pytest" in (ROOT / ".ci" / "run").read_text()


def test_outputs_inside_a_dataset_folder_are_refused(tmp_path, capsys):
    """A chart, export or table written into a dataset folder (or a sweep's .partial) would break `check`."""
    data = tmp_path / "L"
    assert main(["sweep", "--batch", "1", "--seq-len", "64", "--phases", "decode", "-o", str(data), "--quiet"]) == 0
    parts = sorted(p.name for p in data.iterdir())
    capsys.readouterr()
    cases = [
        (["plot", str(data), "-o", str(data / "c.png")], data),
        (["export", str(data), "-o", str(data / "x.csv")], data),
        (["crossover", "--batch", "1,2", "--seq-len", "64", "-o", str(data / "x.csv")], data),
        (
            [
                "sweep",
                "--batch",
                "1",
                "--seq-len",
                "64",
                "-o",
                str(tmp_path / "P"),
                "--plot",
                str(tmp_path / "P" / "c.png"),
            ],
            tmp_path / "P",
        ),
        (
            [
                "sweep",
                "--batch",
                "1",
                "--seq-len",
                "64",
                "-o",
                str(tmp_path / "P2"),
                "--plot",
                str(tmp_path / "P2.partial" / "c.png"),
            ],
            tmp_path / "P2.partial",
        ),
        (["plot", str(data), "-o", str(tmp_path / "other.partial" / "c.png")], tmp_path / "other.partial"),
    ]
    for argv, folder in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"inside the rooflax dataset folder {str(folder)!r}" in err, err
    assert sorted(p.name for p in data.iterdir()) == parts  # nothing written into the dataset
    assert sorted(p.name for p in tmp_path.iterdir()) == ["L"]  # no sweep ran, no stray folder
    assert main(["check", str(data)]) == 0


@pytest.mark.slow
def test_sweep_plot_of_a_tp_sweep_draws_a_panel_per_degree(tmp_path, capsys):
    spec = tmp_path / "tp.toml"
    spec.write_text(
        "model = 'llama-2-70b'\nhardware = 'h100-sxm'\nphases = ['decode']\n"
        "[axes]\nbatch = [1, 8]\nseq_len = [512, 2048]\ntp = [1, 2, 4]\n"
    )
    chart = tmp_path / "x.png"
    assert main(["sweep", str(spec), "-o", str(tmp_path / "X"), "--summary", "--plot", str(chart), "--quiet"]) == 0
    assert chart.is_file()
    assert main(["plot", str(tmp_path / "X"), "--kind", "map", "-o", str(tmp_path / "y.png")]) == 2
    err = capsys.readouterr().err
    assert "3 tp values (1, 2, 4)" in err and '--where "tp = 1"' in err and "--facet tp" in err
    assert main(["plot", str(tmp_path / "X"), "--kind", "map", "--facet", "tp", "-o", str(tmp_path / "y.png")]) == 0


@pytest.mark.parametrize(
    ("call", "given", "names"),
    [
        (lambda name: rooflax.sweep(hardware=name, batch=[1], seq_len=[16]), "a100", "hardware"),
        (lambda name: rooflax.sweep(hardware=name, batch=[1], seq_len=[16]), "h100", "hardware"),
        (lambda name: rooflax.sweep(model=name, batch=[1], seq_len=[16]), "llama-3", "models"),
        (lambda name: rooflax.sweep(dtype=name, batch=[1], seq_len=[16]), "fp", "dtypes"),
        (lambda name: rooflax.speculate(batch=[1], seq_len=[16], acceptance=name), "medusa-vicuna", "acceptance"),
    ],
)
def test_name_hints_list_every_name_the_given_one_begins(call, given, names):
    """A name typed short (``a100``) is hinted with every preset it begins, not with similar spellings."""
    from rooflax.config.acceptance import PRESETS
    from rooflax.config.dtypes import DTYPES
    from rooflax.config.hardware import HARDWARE
    from rooflax.config.models import MODELS

    allowed = {"hardware": HARDWARE, "models": MODELS, "dtypes": DTYPES, "acceptance": PRESETS}[names]
    expected = sorted(name for name in allowed if name.startswith(given))
    assert len(expected) >= 2
    message = one_line_error(lambda: call(given))
    hint = re.search(r"did you mean (.*?)\? \(allowed", message)[1]
    assert sorted(hint.split(" or ")[: len(expected)]) == [repr(name) for name in expected]  # first, then spellings


def test_cli_name_hints_are_prefix_aware(capsys):
    from rooflax.config.hardware import HARDWARE

    assert main(["crossover", "--hardware", "a100", "--batch", "1", "--seq-len", "16"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert all(repr(name) in err.split("(allowed")[0] for name in HARDWARE if name.startswith("a100"))


def test_help_and_argument_errors_load_no_jax_or_polars():
    """``import rooflax.cli``, ``--help`` and a refused command line import neither JAX nor polars (fast start-up)."""
    import subprocess
    import sys

    code = (
        "import contextlib, io, sys\n"
        "import rooflax.cli\n"
        "loaded = [sorted({'jax', 'polars'} & set(sys.modules))]\n"
        "for argv in (['--help'], ['sweep', '--help'], ['plot', '--bogus'], ['nosuch'], ['sweep', '--batch']):\n"
        "    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):\n"
        "        try:\n"
        "            rooflax.cli.main(argv)\n"
        "        except SystemExit:\n"
        "            pass\n"
        "    loaded.append(sorted({'jax', 'polars'} & set(sys.modules)))\n"
        "print(loaded)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == str([[]] * 6)


SMALL = dict(phases=["prefill", "decode"], batch=[1, 8, 64], seq_len=[512, 2048])


def _key_sorted(df: pl.DataFrame) -> pl.DataFrame:
    return df.sort("phase", "batch", "seq_len", "op")


def test_scan_dataset_where_is_the_sql_filter(tmp_path):
    """``scan_dataset(where=)`` (what ``plot --where`` reads through) keeps the rows a polars filter keeps."""
    rooflax.sweep_to_parquet(rooflax.parse_spec(**SMALL), tmp_path / "ds", progress=False)
    got = rooflax.scan_dataset(tmp_path / "ds", where="phase = 'decode' AND batch >= 8").collect()
    want = rooflax.sweep(**SMALL).filter((pl.col("phase") == "decode") & (pl.col("batch") >= 8))
    assert want.height == 2 * 2 * 15
    assert _key_sorted(got).equals(_key_sorted(want))
    one_line_error(
        lambda: rooflax.scan_dataset(tmp_path / "ds", where="phase = 'decod'"),
        "where: cannot apply",
        "'decod' is no value of phase; did you mean 'decode'",
    )


def test_write_table_by_suffix(tmp_path):
    """A table is written as CSV or parquet by its suffix, and an existing file is kept unless overwrite is given."""
    from rooflax.answers.tables import write_table

    df = rooflax.sweep(**SMALL).select("phase", "batch", "seq_len", "op", "time_s")
    write_table(df, tmp_path / "t.csv")
    write_table(df, tmp_path / "t.parquet")
    assert pl.read_csv(tmp_path / "t.csv", schema=pl.read_parquet(tmp_path / "t.parquet").schema).equals(
        pl.read_parquet(tmp_path / "t.parquet")
    )
    assert pl.read_parquet(tmp_path / "t.parquet").equals(df)
    one_line_error(lambda: write_table(df.head(1), tmp_path / "t.csv", field="--output"), "--output", "t.csv")
    write_table(df.head(1), tmp_path / "t.csv", overwrite=True)
    assert pl.read_csv(tmp_path / "t.csv").height == 1
    one_line_error(lambda: write_table(df, tmp_path / "t.txt"), "path", ".parquet", ".csv")


def test_preset_tables_hold_the_presets_figures():
    """``rooflax hardware`` and ``models`` print answers.tables' Tables: one row per preset, its figures in units."""
    from rooflax.answers.tables import hardware_table, models_table
    from rooflax.config.hardware import HARDWARE
    from rooflax.names import PEAK_DTYPES

    table = hardware_table(HARDWARE.values(), PEAK_DTYPES)
    assert [row[0] for row in table.rows] == list(HARDWARE)
    for row, hw in zip(table.rows, HARDWARE.values(), strict=True):
        cells = dict(zip(table.header, row, strict=True))
        assert {d: float(cells[f"{d} TF/s"]) * 1e12 for d in PEAK_DTYPES if cells[f"{d} TF/s"] != "-"} == pytest.approx(
            dict(hw.peak_flops), rel=1e-5
        )
        assert float(cells["GB/s"]) * 1e9 == pytest.approx(hw.bandwidth_bytes_per_s, rel=1e-5)
    models = models_table(rooflax.MODELS.values())
    llama = dict(zip(models.header, models.rows[list(rooflax.MODELS).index("llama-13b")], strict=True))
    assert llama == {
        "name": "llama-13b",
        "label": "Llama 13B",
        "hidden": "5120",
        "layers": "40",
        "heads": "40",
        "kv": "40",
        "d": "128",
        "inter": "13824",
        "vocab": "32000",
        "params": "13.02B",
    }


def test_markdown_table_is_what_polars_printed():
    """``speculate``/``best-k`` print an answers.tables Table as Markdown: for their kind of columns (names,
    integers, rounded floats, nulls) exactly what polars' ``ASCII_MARKDOWN`` rendering (the former printer) gives."""
    from rooflax.answers.tables import Table

    frame = rooflax.speculate(
        model="llama-33b",
        hardware="a100-80gb-pcie",
        batch=[1, 16],
        seq_len=[128, 1024],
        medusa_heads=5,
        tree=[{"top_k": [2, 2]}, {"top_k": [3]}],
    )
    df = frame.select(
        "model",
        "batch",
        "seq_len",
        "draft_k",
        "tree",
        pl.col("tokens_per_round").round(4),
        (pl.col("round_time_s") * 1e3).round(3),
        pl.col("effective_tokens_per_s").round(1),
        pl.when(pl.col("batch") > 1).then(pl.col("speedup")).round(3).alias("null_when_batch_1"),
    )
    assert df.get_column("null_when_batch_1").null_count() and df.get_column("draft_k").dtype == pl.Int64
    with pl.Config(
        tbl_rows=-1,
        tbl_cols=-1,
        tbl_width_chars=400,
        tbl_hide_column_data_types=True,
        tbl_hide_dataframe_shape=True,
        tbl_formatting="ASCII_MARKDOWN",
    ):
        assert Table.of(df).markdown() == str(df)
