"""Regenerate every chart under docs/, each with the rooflax command that draws it.

    python docs/make.py                  # writes out/docs/*.png (git-ignored), to look at
    python docs/make.py --docs           # replaces the committed charts under docs/
    python docs/make.py --out DIR NAME   # only the charts named (file names without .png)

Only ``--docs`` writes into docs/, so README examples and trial runs write under out/
and never dirty the checkout. The datasets the charts are drawn from go to a temporary
folder, removed afterwards. ``validate`` charts need a device and are made as the README
says ("Validation on the device"), not here.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BATCH = "1,2,4,8,16,32,64"
SEQ_LEN = "128,256,512,1024,2048,4096,8192"

#: Each chart: the commands that draw it, ``{data}`` a temporary folder and ``{chart}`` the file.
CHARTS: dict[str, list[list[str]]] = {
    # the achieved model against measured kernel times: the calibrated presets on the shipped measurements
    "accuracy": [["accuracy", "rooflax/calibration/data/aiconfigurator", "--plot", "{chart}"]],
    # the reference chart (README's first command): Llama 13B on the A40, the Medusa paper's grid
    "llama13b_a40": [["sweep", "-o", "{data}/ref", "--quiet", "--plot", "{chart}"]],
    # the paper's companion charts: Llama 33B on the A100, attention of verify steps, and the linear layers
    "llama33b_a100_spec_attention_batch16": [
        ["sweep", "sweeps/llama33b_a100_spec_attention_batch16.toml", "-o", "{data}/b16", "--quiet"],
        ["plot", "{data}/b16", "--groups", "qk/pv", "-o", "{chart}", "--quiet"],
    ],
    "llama33b_a100_spec_attention_seq1024": [
        ["sweep", "sweeps/llama33b_a100_spec_attention_seq1024.toml", "-o", "{data}/s1024", "--quiet"],
        ["plot", "{data}/s1024", "--groups", "qk/pv", "-o", "{chart}", "--quiet"],
    ],
    "llama33b_a100_spec_linear": [
        ["sweep", "sweeps/llama33b_a100_spec_linear.toml", "-o", "{data}/linear", "--quiet"],
        ["plot", "{data}/linear", "--groups", "qkv mlp", "up/gate/down", "-o", "{chart}", "--quiet"],
    ],
    # speculation regime maps: Medusa heads with α = 0.8, and the authors' heads with sparse trees
    "speculate_llama33b_a100": [
        [
            "best-k",
            "--model",
            "llama-33b",
            "--hardware",
            "a100-80gb-pcie",
            "--batch",
            f"{BATCH},128",
            "--seq-len",
            SEQ_LEN,
            "--medusa-heads",
            "5",
            "--k",
            "0,1,2,3,4,5",
            "--alpha",
            "0.8",
            "--achieved",
            "--plot",
            "{chart}",
        ]
    ],
    # DeepSeek-V3 decode on eight B200s, expert-parallel: latent attention, 256 routed experts, fp8 in blocks
    "deepseek_v3_b200_decode": [
        ["sweep", "sweeps/deepseek_v3_b200_decode.toml", "-o", "{data}/dsv3", "--quiet", "--plot", "{chart}"]
    ],
    # the serving frontier: Llama-3.1-70B on 8 H100s, 2k in, 512 out, 50 ms TPOT
    "frontier_llama3_70b_h100": [
        [
            "frontier",
            "--model",
            "llama-3.1-70b",
            "--hardware",
            "h100-sxm",
            "--dtype",
            "fp16,fp8",
            "--isl",
            "2048",
            "--osl",
            "512",
            "--gpus",
            "8",
            "--ttft-ms",
            "2000",
            "--tpot-ms",
            "50",
            "--k",
            "2,4",
            "--chunk",
            "whole,512",
            "--disaggregated",
            "--quiet",
            "--plot",
            "{chart}",
        ]
    ],
    "speculate_llama33b_a100_medusa_heads": [
        [
            "best-k",
            "sweeps/medusa_llama33b_a100.toml",
            "--medusa-heads",
            "5",
            "--acceptance",
            "medusa-vicuna-33b",
            "--sparse-tree",
            "2,4,8,16,32,48,64,80,96,112",
            "--plot",
            "{chart}",
        ]
    ],
}


def make(names: list[str], out: Path) -> list[Path]:
    """Draw the charts ``names`` into ``out`` (replacing them), from the repository root; return their paths."""
    from rooflax.cli.commands import main

    out.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory(prefix="rooflax-docs-") as data:
        for name in names:
            chart = out / f"{name}.png"
            chart.unlink(missing_ok=True)
            for argv in CHARTS[name]:
                argv = [a.format(data=data, chart=chart) for a in argv]
                with contextlib.redirect_stdout(io.StringIO()):  # best-k prints its table
                    status = main(argv)
                if status:
                    raise SystemExit(f"make.py: {name}: `rooflax {' '.join(argv)}` exited {status}")
            written.append(chart)
            print(f"wrote {chart}")
    return written


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Regenerate the charts under docs/ (by default into out/docs/).")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--docs", action="store_true", help="replace the committed charts under docs/")
    where.add_argument("--out", type=Path, default=ROOT / "out" / "docs", help="folder to write (default out/docs)")
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"charts to draw (default all: {', '.join(CHARTS)})")
    return parser


def cli(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    for name in args.names:
        if name not in CHARTS:
            parser.error(f"unknown chart {name!r}; the charts: {', '.join(CHARTS)}")
    sys.path.insert(0, str(ROOT))  # this checkout's rooflax, whatever is installed
    with contextlib.chdir(ROOT):  # the commands name sweeps/ relative to the root, as the README does
        make(args.names or list(CHARTS), ROOT / "docs" if args.docs else args.out.resolve())
    return 0


if __name__ == "__main__":
    raise SystemExit(cli())
