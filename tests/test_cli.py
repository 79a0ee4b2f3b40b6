"""The command line, called in-process: exit codes, output files, messages."""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl
import pytest

import rooflax
from rooflax.cli import _parser, main

ROOT = Path(__file__).parent.parent


def test_default_sweep_writes_dataset_and_chart(tmp_path, capsys):
    out, chart = tmp_path / "ds", tmp_path / "chart.png"
    assert main(["sweep", "-o", str(out), "--plot", str(chart)]) == 0
    assert pl.scan_parquet(out).collect().height == 7680
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "wrote 7,680 rows" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chart.png", "ds"]


def test_sweep_summary_and_plot_kinds(tmp_path):
    spec = ROOT / "sweeps" / "llama13b_a40_spec.toml"
    assert main(["sweep", str(spec), "-o", str(tmp_path / "ds"), "--quiet"]) == 0
    for kind, extra in (("roofline", []), ("family", ["--color-by", "spec_k", "--facet", "phase"]),
                        ("map", ["--where", "hidden = 5120"])):
        chart = tmp_path / f"{kind}.svg"
        assert main(["plot", str(tmp_path / "ds"), "-o", str(chart), "--kind", kind, *extra, "--quiet"]) == 0
        assert chart.read_text().lstrip().startswith("<?xml")
    assert main(["sweep", str(spec), "-o", str(tmp_path / "sum"), "--summary", "--plot", str(tmp_path / "s.pdf"),
                 "--quiet"]) == 0
    assert (tmp_path / "s.pdf").read_bytes()[:4] == b"%PDF"
    assert main(["plot", str(tmp_path / "sum"), "-o", str(tmp_path / "tps.png"), "--kind", "map", "--value",
                 "tokens_per_s", "--where", "phase = 'decode'", "--quiet"]) == 0


def test_ratio_map_of_two_datasets(tmp_path):
    for hw in ("a40", "h100-sxm"):
        spec = tmp_path / f"{hw}.toml"
        spec.write_text(f"hardware = '{hw}'\nphases = ['decode']\n[axes]\nbatch = [1, 8]\nseq_len = [128, 1024]\n")
        assert main(["sweep", str(spec), "-o", str(tmp_path / hw), "--summary", "--quiet"]) == 0
    assert main(["plot", str(tmp_path / "a40"), "--versus", str(tmp_path / "h100-sxm"), "--kind", "map",
                 "-o", str(tmp_path / "ratio.png"), "--quiet"]) == 0


def test_custom_hardware_dataset_plots_from_its_metadata(tmp_path):
    (tmp_path / "gpu.toml").write_text("name = 'labgpu'\nlabel = 'Lab GPU'\nbandwidth_bytes_per_s = 2e12\n"
                                       "memory_bytes = 8e10\n[peak_flops]\nfp16 = 5e14\n")
    (tmp_path / "s.toml").write_text("hardware = 'gpu.toml'\n[axes]\nbatch = [1, 64]\nseq_len = [512]\n")
    assert main(["sweep", str(tmp_path / "s.toml"), "-o", str(tmp_path / "ds"), "--plot",
                 str(tmp_path / "c.png"), "--quiet"]) == 0


def test_interrupted_sweep_says_how_to_resume(tmp_path, capsys, monkeypatch):
    from rooflax import dataset

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(dataset, "chunk_frame", interrupted)
    assert main(["sweep", "-o", str(tmp_path / "ds"), "--quiet"]) == 130
    assert f"kept in {tmp_path / 'ds'}.partial/, run the same command with --resume" in capsys.readouterr().err
    monkeypatch.undo()
    assert main(["sweep", "-o", str(tmp_path / "ds"), "--quiet", "--resume"]) == 0
    assert pl.scan_parquet(tmp_path / "ds").collect().height == 7680


def test_resume_flag(tmp_path):
    partial = tmp_path / "ds.partial"
    partial.mkdir()
    assert main(["sweep", "-o", str(tmp_path / "ds"), "--quiet"]) == 2  # stale folder without its manifest
    assert main(["sweep", "-o", str(tmp_path / "ds"), "--resume", "--quiet"]) == 2


@pytest.mark.parametrize(("argv", "message"), [
    (["sweep", "nothere.toml", "-o", "{tmp}/x"], "error: spec: 'nothere.toml' does not exist"),
    (["sweep", "-o", "{tmp}/x", "--plot", "{tmp}/c.jpg"], "error: --plot: .* allowed: .png, .svg, .pdf"),
    (["sweep", "-o", "{tmp}/x", "--chunk-size", "0"], "error: chunk_size: expected a positive integer, got 0"),
    (["plot", "{tmp}/nothing", "-o", "{tmp}/c.png"], "error: dataset: .* does not exist"),
    (["plot", "{ds}", "-o", "{tmp}/c.png", "--where", "bacth > 1"], "error: --where: cannot apply"),
    (["plot", "{ds}", "-o", "{tmp}/c.png", "--where", "batch > 100000"], "the frame is empty"),
    (["plot", "{ds}", "-o", "{tmp}/c.png", "--kind", "family"], "error: --kind family: give --color-by"),
    (["plot", "{ds}", "-o", "{tmp}/c.png", "--kind", "map", "--value", "nope"], "unknown name 'nope'"),
    (["plot", "{ds}", "-o", "{tmp}/c.png", "--kind", "map", "--x", "hiden"], "did you mean 'hidden'"),
    (["plot", "{ds}", "-o", "{tmp}/c.png", "--groups", "mlp"], "error: groups: unknown name 'mlp'"),
])
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, argv, message):
    ds = tmp_path / "ds"
    rooflax.sweep_to_parquet(None, ds, batch=[1, 2], seq_len=[16])
    capsys.readouterr()
    argv = [a.format(tmp=tmp_path, ds=ds) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert re.search(message, err), err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]  # nothing half-written


def test_unknown_kind_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as info:
        main(["plot", "x", "-o", "c.png", "--kind", "pie"])
    assert info.value.code == 2
    assert "invalid choice: 'pie'" in capsys.readouterr().err


def test_listing_commands(capsys):
    assert main(["hardware"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"a40\s+A40\s+37\.4\s+74\.8\s+149\.7\s+149\.7\s+-\s+299\.3\s+696\s+48\s+215", out)
    assert main(["models"]) == 0
    assert re.search(r"llama-13b\s+Llama 13B\s+5120\s+40\s+40\s+40\s+128\s+13824\s+32000\s+13\.02B",
                     capsys.readouterr().out)


def test_readme_cli_reference_matches_help():
    readme = (ROOT / "README.md").read_text()
    parser = _parser()
    commands = parser._subparsers._group_actions[0].choices
    for name, sub in commands.items():
        assert f"rooflax {name}" in readme, name
        for action in sub._actions:
            for flag in action.option_strings:
                if flag not in ("-h", "--help"):
                    assert flag in readme, f"{name} {flag} missing from the README"


def test_readme_first_lines_are_the_two_commands():
    first = (ROOT / "README.md").read_text().split("```")[1]
    assert "rooflax sweep" in first and "--plot docs/llama13b_a40.png" in first
    assert "bash .ci/run" in first
    assert "python3 -m pytest" in (ROOT / ".ci" / "run").read_text()
