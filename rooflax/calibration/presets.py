"""The calibrated presets: which GPUs are fitted to which measurements, and how the fit is reproduced.

Four presets are fitted (:func:`rooflax.calibration.fit.fit_hardware`) to NVIDIA's public
kernel timings from aiconfigurator (github.com/ai-dynamo/aiconfigurator, Apache License 2.0,
© NVIDIA Corporation & affiliates; snapshot 095f58a, 2026-08-21): ``a100-80gb-sxm``,
``h100-sxm``, ``l40s`` and ``b200``. A subset of those tables ships with rooflax
(``rooflax/calibration/data/``, with the license and attribution): the matrix products
(bf16), full attention (bf16, bf16 KV cache, head dim 128) and the fused MoE layers (bf16)
of one shape in :data:`SUBSET_SHARE`, and every NCCL collective (fp16); whole shapes chosen by
:func:`~rooflax.calibration.fit.split_by_shape`. The presets' terms
(``rooflax/config/calibrated.toml``) are the fit on that subset, so ``python -m
rooflax.calibration.presets`` rewrites the file from it bit for bit, offline; ``python -m
rooflax.calibration.presets --subset FOLDER`` first cuts the subset anew from the full
tables in FOLDER (one subfolder per GPU, as aiconfigurator lays them out); ``python -m
rooflax.calibration.presets --score FOLDER`` prints the scorecard of the presets on the shapes
of the full tables the subset leaves out (:func:`held_out_score`), the one the README quotes.

Presets without measurements take the terms of their architecture's fitted GPU
(:data:`rooflax.config.hardware.ARCHITECTURE`): products and attention from any part of the architecture,
collectives only where the link is the same kind (NVLink SXM, or PCIe). Elementwise ops keep
the default terms (no table measures them), and so does the MI300X (no AMD tables).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import polars as pl

from rooflax.calibration.fit import stable_share
from rooflax.config.hardware import FITTED

__all__ = ["CALIBRATED_TOML", "SUBSET", "SUBSET_SHARE", "calibrated_toml", "cut_subset", "held_out_score"]

#: The shipped subset of the measurements (aiconfigurator's tables, cut by :func:`cut_subset`).
SUBSET = Path(__file__).parent / "data" / "aiconfigurator"
#: The fitted terms of the presets, generated from :data:`SUBSET` by :func:`calibrated_toml`.
CALIBRATED_TOML = Path(__file__).parents[1] / "config" / "calibrated.toml"  # read by rooflax.config.hardware
#: The share of shapes the subset keeps of the products and of attention (collectives: all).
SUBSET_SHARE = 0.25

_TABLES = {
    "gemm_perf.parquet": pl.col("gemm_dtype") == "bfloat16",
    "context_attention_perf.parquet": (pl.col("attn_dtype") == "bfloat16")
    & (pl.col("kv_cache_dtype") == "bfloat16")
    & (pl.col("head_dim") == 128)
    & (pl.col("window_size") == 0),
    "generation_attention_perf.parquet": (pl.col("kv_cache_dtype") == "bfloat16")
    & (pl.col("head_dim") == 128)
    & (pl.col("window_size") == 0),
    "nccl_perf.parquet": pl.col("nccl_dtype") == "half",
    "moe_perf.parquet": pl.col("moe_dtype") == "bfloat16",
}
_SHAPES = {
    "gemm_perf.parquet": ("m", "n", "k"),
    "context_attention_perf.parquet": ("batch_size", "isl", "num_heads", "num_key_value_heads"),
    "generation_attention_perf.parquet": ("batch_size", "step", "num_heads", "num_key_value_heads"),
    "moe_perf.parquet": (
        "num_tokens",
        "hidden_size",
        "inter_size",
        "topk",
        "num_experts",
        "moe_tp_size",
        "moe_ep_size",
    ),  # a shape in every routing distribution
}


def _table_rows(full: Path, folder: str, table: str, *, held_out: bool) -> pl.DataFrame:
    """The rows of one full table that the subset keeps (``held_out``: the rows of the shapes it leaves out;
    a table kept whole, the collectives, is its own held-out part)."""
    rows = pl.read_parquet(full / folder / table)
    if "window_size" not in rows.columns and table in _SHAPES:  # older tables: full attention only
        rows = rows.with_columns(pl.lit(0, pl.Int64).alias("window_size"))
    rows = rows.filter(_TABLES[table])
    if table not in _SHAPES:
        return rows
    shapes = rows.select(_SHAPES[table]).unique(maintain_order=True)
    kept = shapes.filter(
        pl.Series([stable_share("|".join(map(str, shape))) < SUBSET_SHARE for shape in shapes.iter_rows()])
    )
    return rows.join(kept, on=list(_SHAPES[table]), how="anti" if held_out else "semi")


def cut_subset(full: Path, out: Path = SUBSET) -> None:
    """Write the shipped subset of the aiconfigurator tables under ``full`` (one folder per GPU) to ``out``."""
    for folder in FITTED.values():
        (out / folder).mkdir(parents=True, exist_ok=True)
        for table in _TABLES:
            rows = _table_rows(full, folder, table, held_out=False)
            path = out / folder / table
            tmp = path.with_name(f".{path.name}.tmp")
            rows.write_parquet(tmp)
            tmp.replace(path)


def held_out_score(full: Path) -> pl.DataFrame:
    """The scorecard of the presets on the shapes of the full tables under ``full`` that the subset leaves out.

    Per fitted GPU and kind: the default terms' and the shipped fitted terms' median and p90
    of ``|predicted / measured − 1|`` (:func:`rooflax.calibration.fit.accuracy`, the fastest
    kernel per shape) and the fitted band's coverage. The collectives' tables ship whole, so
    theirs are scored on the fitted rows.

    Args:
        full: aiconfigurator's tables, one folder per GPU (as :func:`cut_subset` reads them).

    Returns:
        Columns ``hardware``, ``kind``, ``n``, ``default_median``, ``default_p90``,
        ``fitted_median``, ``fitted_p90``, ``band_coverage``.
    """
    import tempfile

    from rooflax.calibration.fit import accuracy
    from rooflax.calibration.measurements import read_measurements
    from rooflax.config.hardware import get_hardware, uncalibrated_preset

    parts = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, folder in FITTED.items():
            for table in _TABLES:
                _table_rows(full, folder, table, held_out=True).write_parquet(Path(tmp) / f"{folder}-{table}")
            measured = read_measurements(sorted(Path(tmp).glob(f"{folder}-*")))
            default = accuracy(measured, uncalibrated_preset(name)).select(
                "hardware",
                "kind",
                "n",
                pl.col("predicted_median").alias("default_median"),
                pl.col("predicted_p90").alias("default_p90"),
            )
            fitted = accuracy(measured, get_hardware(name)).select(
                "hardware",
                "kind",
                pl.col("predicted_median").alias("fitted_median"),
                pl.col("predicted_p90").alias("fitted_p90"),
                "band_coverage",
            )
            parts.append(default.join(fitted, on=["hardware", "kind"], how="left"))
    return pl.concat(parts)


def calibrated_toml(subset: Path = SUBSET) -> str:
    """The text of ``calibrated.toml``: every fitted preset's fit on ``subset``."""
    from rooflax.calibration.fit import fit_hardware
    from rooflax.calibration.measurements import read_measurements
    from rooflax.config.hardware import uncalibrated_preset

    lines = [
        "# Generated by `python -m rooflax.calibration.presets` from the measurements in",
        "# rooflax/calibration/data/ (aiconfigurator, Apache-2.0, NVIDIA): do not edit by hand.",
        "",
    ]
    for name, folder in FITTED.items():
        fitted = fit_hardware(read_measurements(subset / folder), uncalibrated_preset(name))
        lines += [
            f"[{name}]",
            f"interconnect_latency_s = {fitted.interconnect_latency_s!r}",
            f"l2_resident_bytes = {fitted.l2_resident_bytes!r}",
            "",
        ]
        for group, terms in fitted.group_terms:
            lines += [f'[{name}.group_terms."{group}"]', *(f"{key} = {value!r}" for key, value in terms), ""]
        for phase, groups in fitted.phase_terms:
            for group, terms in groups:
                lines += [
                    f'[{name}.phase_terms.{phase}."{group}"]',
                    *(f"{key} = {value!r}" for key, value in terms),
                    "",
                ]
    return "\n".join(lines)


def _print_score(score: pl.DataFrame) -> None:
    def pct(x: float | None) -> str:
        return "-" if x is None else f"{100 * x:.0f}%"

    print("held-out shapes: median / p90 of |predicted / measured - 1|, default terms -> fitted; band coverage")
    for r in score.iter_rows(named=True):
        print(
            f"{r['hardware']:<14} {r['kind']:<18} n={r['n']:<5} "
            f"{pct(r['default_median'])} / {pct(r['default_p90'])} -> {pct(r['fitted_median'])} / "
            f"{pct(r['fitted_p90'])}  band {pct(r['band_coverage'])}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m rooflax.calibration.presets",
        description="refit the calibrated presets from the shipped measurements",
    )
    parser.add_argument("--subset", type=Path, help="first cut the shipped subset from these full tables")
    parser.add_argument(
        "--score",
        type=Path,
        metavar="FULL_DIR",
        help="print the presets' scorecard on the shapes of these full tables the subset leaves out (writes nothing)",
    )
    args = parser.parse_args(argv)
    if args.score is not None:
        _print_score(held_out_score(args.score))
        return 0
    if args.subset is not None:
        cut_subset(args.subset)
    text = calibrated_toml()
    tmp = CALIBRATED_TOML.with_name(f".{CALIBRATED_TOML.name}.tmp")
    tmp.write_text(text)
    tmp.replace(CALIBRATED_TOML)
    print(f"wrote {CALIBRATED_TOML}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
