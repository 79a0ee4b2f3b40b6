"""Charts, checked through their artists (Agg backend) and saved to files."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import polars as pl
import pytest

import rooflax
from rooflax import plot
from rooflax.plot._common import si


@pytest.fixture(scope="module")
def reference():
    return rooflax.sweep()


def _lines(ax, prefix):
    return [line for line in ax.get_lines() if (line.get_gid() or "").startswith(prefix)]


def test_reference_chart(reference, tmp_path):
    fig = plot.roofline(reference)
    ax = fig.axes[0]
    assert fig._suptitle.get_text() == "Roofline Model (Llama 13B, A40)"
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert ax.get_xlabel() == "Operational Intensity (FLOP/Byte)" and ax.get_ylabel() == "Performance (FLOP/s)"
    (memory,) = _lines(ax, "ceiling-memory")
    (compute,) = _lines(ax, "ceiling-compute")
    x, y = memory.get_data()
    assert y[0] / x[0] == pytest.approx(696e9) and y[1] == pytest.approx(149.7e12)
    assert memory.get_linestyle() == "--" and compute.get_linestyle() == "--"
    assert set(compute.get_ydata()) == {149.7e12}
    (ridge,) = _lines(ax, "ridge")
    assert ridge.get_xdata()[0] == pytest.approx(149.7e12 / 696e9)
    texts = {t.get_text() for t in ax.texts}
    assert {"696GB/s", "149.7 TFLOP/s"} <= texts
    legend = ax.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == [
        "qkv mlp init", "qkv mlp ar", "up/gate/down init", "up/gate/down ar", "qk/pv init", "qk/pv ar"]
    assert legend._loc == 4  # lower right
    assert len({tuple(c.get_facecolor()[0]) for c in ax.collections if c.get_label()[0] != "_"}) == 6
    # one marker per occupied cell of the documented 400-per-decade log grid, per series
    drawn = [c for c in ax.collections if c.get_label() in ("qkv mlp init", "qk/pv ar")]
    assert len(drawn) == 2
    for collection in drawn:
        group, phase = ("qkv mlp", "prefill") if collection.get_label() == "qkv mlp init" else ("qk/pv", "decode")
        points = reference.filter(group=group, phase=phase)
        cells = {(math.floor(math.log10(x) * 400), math.floor(math.log10(y) * 400))
                 for x, y in zip(points["intensity"], points["attainable_flops"], strict=True)}
        assert len(collection.get_offsets()) == len(cells)
    fig.savefig(tmp_path / "ref.png")
    assert (tmp_path / "ref.png").stat().st_size > 10_000
    plt.close(fig)


def test_fine_resolution_keeps_every_distinct_point(reference):
    fig = plot.roofline(reference, resolution=10**7)
    (collection,) = [c for c in fig.axes[0].collections if c.get_label() == "qkv mlp init"]
    want = reference.filter(group="qkv mlp", phase="prefill").select("intensity", "attainable_flops").unique()
    assert len(collection.get_offsets()) == want.height
    plt.close(fig)


def test_si_ticks():
    assert [si(v) for v in (1, 10, 100, 1e3, 1e4, 1e10, 1e11, 1e14)] == [
        "1", "10", "100", "1k", "10k", "10G", "100G", "100T"]


def test_verify_series_and_several_hardware(tmp_path):
    df = rooflax.sweep(phases=["prefill", "decode", "verify"], batch=[1, 8], seq_len=[64, 512], spec_k=[16, 32],
                       hardware=["a40", "h100-sxm"])
    fig = plot.roofline(df.filter(hardware="a40"), groups=["up/gate/down"])
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["up/gate/down init", "up/gate/down ar", "up/gate/down spec: 16", "up/gate/down spec: 32"]
    plt.close(fig)
    fig = plot.roofline(df, dtypes=["fp8", "int8"])
    ax = fig.axes[0]
    memory = {line.get_gid() for line in _lines(ax, "ceiling-memory")}
    assert memory == {"ceiling-memory:a40", "ceiling-memory:h100-sxm"}
    computes = {line.get_gid() for line in _lines(ax, "ceiling-compute")}
    assert "ceiling-compute:h100-sxm:fp8" in computes and "ceiling-compute:a40:int8" in computes
    assert "ceiling-compute:a40:fp8" not in computes  # the A40 has no fp8
    assert "Roofline Model (Llama 13B, A40, H100 SXM)" == fig._suptitle.get_text()
    fig.savefig(tmp_path / "multi.png")
    plt.close(fig)


def test_family_colour_bar_and_connect(reference, tmp_path):
    fig = plot.roofline(reference, color_by="batch", connect="batch", facet="phase")
    panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert [ax.get_title() for ax in panels] == ["phase: prefill", "phase: decode"]
    (bar,) = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert bar.get_ylim() == pytest.approx((1, 128))  # the batch range, log scale
    # one grey line per series, op and seq_len in each panel, through every batch value
    for ax, phase in zip(panels, ("prefill", "decode"), strict=True):
        drawn = reference.filter(pl.col("phase") == phase, pl.col("group").is_in(["qkv mlp", "up/gate/down", "qk/pv"]))
        segments = [seg for c in ax.collections if c.get_gid() == "connect:batch" for seg in c.get_segments()]
        assert len(segments) == drawn.select("op", "seq_len").n_unique()
        assert {len(seg) for seg in segments} == {reference.get_column("batch").n_unique()}
    fig.savefig(tmp_path / "family.png")
    plt.close(fig)


def _expected_lines(df: pl.DataFrame, along: str) -> list:
    """Polylines through each op's points along ``along``, derived row by row."""
    lines: dict = {}
    for r in df.iter_rows(named=True):
        if r[along] is None:
            continue
        held = tuple((c, r[c]) for c in ("model", "hardware", "dtype", "phase", "op", "batch", "seq_len", "hidden",
                                         "spec_k") if c != along)
        lines.setdefault(held, []).append((r[along], r["intensity"], r["attainable_flops"]))
    return sorted(tuple((x, y) for _, x, y in sorted(points)) for points in lines.values() if len(points) > 1)


@pytest.mark.parametrize(("along", "lazy"), [("batch", False), ("batch", True), ("seq_len", True), ("spec_k", True)])
def test_connect_draws_a_line_per_series_op_and_other_axes(lazy, along):
    df = rooflax.sweep(phases=["prefill", "decode", "verify"], batch=[1, 4, 16], seq_len=[64, 256, 1024],
                       spec_k=[16, 32], hardware=["a40", "h100-sxm"])
    groups = ["qkv mlp", "qk/pv"]
    fig = plot.roofline(df.lazy() if lazy else df, groups=groups, connect=along)
    ax = fig.axes[0]
    collections = [c for c in ax.collections if c.get_gid() == f"connect:{along}"]
    got = sorted(tuple(map(tuple, seg.tolist())) for c in collections for seg in c.get_segments())
    assert got == _expected_lines(df.filter(pl.col("group").is_in(groups)), along)
    if along != "spec_k":  # each series' lines are drawn in the series' colour, one collection per series
        scatters = [c for c in ax.collections if c.get_gid() is None and len(c.get_offsets())]
        assert len(collections) == len(scatters) == 2 * 2 * 4  # hardware × groups × (init, ar, spec: 16, 32)
        for lines, points in zip(collections, scatters, strict=True):
            assert tuple(lines.get_color()[0][:3]) == tuple(points.get_facecolor()[0][:3])  # lines are translucent
            # every marker of the series (reduced to one per cell) lies on one of its lines
            assert {tuple(p) for seg in lines.get_segments() for p in seg} >= {tuple(p) for p in points.get_offsets()}
    plt.close(fig)


def test_big_frames_are_reduced_not_dropped():
    df = rooflax.sweep(batch={"start": 1, "stop": 2048, "step": 1}, seq_len={"start": 64, "stop": 8192, "step": 64},
                       phases=["decode"])
    assert df.height > 3_000_000
    fig = plot.roofline(df, groups=["qkv mlp", "up/gate/down", "qk/pv", "elementwise", "lm_head"])
    ax = fig.axes[0]
    labels = [c.get_label() for c in ax.collections]
    assert labels == ["qkv mlp ar", "up/gate/down ar", "qk/pv ar", "elementwise ar", "lm_head ar"]
    assert sum(len(c.get_offsets()) for c in ax.collections) < 100_000
    plt.close(fig)


def test_regime_maps(tmp_path):
    df = rooflax.sweep(phases=["decode", "verify"], batch=[1, 4, 16, 64, 256], seq_len=[256, 1024, 4096],
                       spec_k=[512])
    fig = plot.regime_map(df)
    names = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert names[:7] == [f"{op} · decode" for op in ("qkv_proj", "qk", "pv", "o_proj", "gate_proj", "up_proj",
                                                     "down_proj")]
    assert "qk · verify K=512" in names
    ax = next(a for a in fig.axes if a.get_title() == "up_proj · decode")
    matrix = ax.images[0].get_array()
    assert matrix.shape == (3, 5)
    assert matrix[0, 0] == 0 and matrix[0, 4] == 1  # memory at batch 1, compute at batch 256 (ridge 215)
    verify = next(a for a in fig.axes if a.get_title() == "qk · verify K=512").images[0].get_array()
    assert verify.mask[0].all()  # seq_len 256 < spec_k 512: no point, blank row
    fig.savefig(tmp_path / "map.png")
    plt.close(fig)
    totals = rooflax.sweep(phases=["decode"], batch=[1, 8, 64, 512], seq_len=[1024, 8192], summary=True)
    fig = plot.regime_map(totals, value="fits_in_memory")
    assert fig.axes[0].images[0].get_array()[1, 3] == 0  # 512 × 8192 tokens of KV cache do not fit in 48 GB
    plt.close(fig)
    fig = plot.regime_map(totals, value="tokens_per_s")
    (hatch,) = [c for c in fig.axes[0].collections if c.get_gid() == "does-not-fit"]
    assert len(hatch.get_paths()) == totals.filter(~pl.col("fits_in_memory")).height
    plt.close(fig)
    a40 = rooflax.sweep(phases=["decode"], batch=[1, 64], seq_len=[1024], summary=True)
    h100 = rooflax.sweep(phases=["decode"], batch=[1, 64], seq_len=[1024], summary=True, hardware="h100-sxm")
    fig = plot.ratio_map(a40, h100)
    ratio = fig.axes[0].images[0].get_array()
    assert ratio[0, 0] == pytest.approx(a40.get_column("time_s")[0] / h100.get_column("time_s")[0])
    fig.savefig(tmp_path / "ratio.png")
    plt.close(fig)


@pytest.mark.parametrize(("call", "message"), [
    (lambda df: plot.roofline(df.drop("intensity")), "roofline: unknown column 'intensity'"),
    (lambda df: plot.roofline(df.filter(pl.col("batch") > 10**6)), "the frame is empty"),
    (lambda df: plot.roofline(df, groups=["qkv"]), "unknown name 'qkv'; did you mean 'qk/pv' or 'qkv mlp'"),
    (lambda df: plot.roofline(df, color_by="batchsize"), "did you mean 'batch'"),
    (lambda df: plot.regime_map(df, value="tokens_per_s"), "value .ops frame.: unknown name"),
    (lambda df: plot.regime_map(df, x="batch", y="batch"), "choose two different axes"),
    (lambda df: plot.roofline(df.with_columns(pl.lit("mygpu").cast(pl.Categorical).alias("hardware"))),
     "'mygpu' is not a preset"),
])
def test_chart_errors(reference, call, message):
    with pytest.raises(rooflax.SpecError, match=message) as info:
        call(reference)
    assert "\n" not in str(info.value)
    plt.close("all")
