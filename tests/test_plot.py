"""Charts, checked through their artists (Agg backend) and saved to files."""

from __future__ import annotations

import math
import re

import numpy as np
import polars as pl
import pytest
from matplotlib.colors import to_rgba
from one_line import one_line_error

import rooflax
from rooflax import plot
from rooflax.plot._common import si
from rooflax.plot.measured import read_validation, write_validation
from rooflax.plot.plan import ChartPlan, plan_chart


@pytest.fixture(scope="module")
def reference():
    return rooflax.sweep()


def _lines(ax, prefix):
    return [line for line in ax.get_lines() if (line.get_gid() or "").startswith(prefix)]


def _visible_ticks(axis, lo, hi):
    return [si(t) for t in axis.get_majorticklocs() if lo <= t <= hi]


@pytest.mark.slow
def test_reference_chart(reference, tmp_path):
    """The reference (DESIGN.md): its title, axes, blue and red dashed roofs in the legend with six x series."""
    fig = plot.roofline(reference)
    ax = fig.axes[0]
    assert fig._suptitle.get_text() == "Roofline Model (Llama 13B, A40)"  # no subtitle
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert ax.get_xlabel() == "Operational Intensity (FLOP/Byte)" and ax.get_ylabel() == "Performance (FLOP/s)"
    (memory,) = _lines(ax, "ceiling-memory")
    (compute,) = _lines(ax, "ceiling-compute")
    x, y = memory.get_data()
    assert y[0] / x[0] == pytest.approx(696e9) and y[1] == pytest.approx(149.7e12)
    assert memory.get_linestyle() == "--" and compute.get_linestyle() == "--"
    assert to_rgba(memory.get_color()) == to_rgba("tab:blue") and to_rgba(compute.get_color()) == to_rgba("tab:red")
    assert set(compute.get_ydata()) == {149.7e12}
    # no ridge line, ridge circle or figures written on the chart: the roofs are named in the legend
    assert not _lines(ax, "ridge") and not ax.texts
    assert [line.get_xdata()[0] for line in ax.get_lines() if line.get_linestyle() == ":"] == []
    legend = ax.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == [
        "696GB/s",
        "149.7 TFLOP/s",
        "qkv mlp init",
        "qkv mlp ar",
        "up/gate/down init",
        "up/gate/down ar",
        "qk/pv init",
        "qk/pv ar",
    ]
    roofs = legend.legend_handles[:2]
    assert [h.get_linestyle() for h in roofs] == ["--", "--"]
    assert [to_rgba(h.get_color()) for h in roofs] == [to_rgba("tab:blue"), to_rgba("tab:red")]
    assert [h.get_marker() for h in legend.legend_handles[2:]] == ["x"] * 6
    assert legend._loc == 4  # lower right
    assert len({tuple(c.get_facecolor()[0]) for c in ax.collections if c.get_label()[0] != "_"}) == 6
    # x from 1 to 10k, y ticks 10G to 100T, and every point shows within the axes
    assert ax.get_xlim() == (1, 1e4)
    assert _visible_ticks(ax.xaxis, *ax.get_xlim()) == ["1", "10", "100", "1k", "10k"]
    assert _visible_ticks(ax.yaxis, *ax.get_ylim()) == ["10G", "100G", "1T", "10T", "100T"]
    drawn = reference.filter(pl.col("group").is_in(["qkv mlp", "up/gate/down", "qk/pv"]))
    assert ax.get_ylim()[0] < drawn.get_column("achieved_flops").min() and ax.get_ylim()[1] > 149.7e12
    _assert_points_show(ax)
    # one marker per occupied cell of the documented 400-per-decade log grid, per series
    drawn = [c for c in ax.collections if c.get_label() in ("qkv mlp init", "qk/pv ar")]
    assert len(drawn) == 2
    for collection in drawn:
        group, phase = ("qkv mlp", "prefill") if collection.get_label() == "qkv mlp init" else ("qk/pv", "decode")
        points = reference.filter(group=group, phase=phase)
        cells = {
            (math.floor(math.log10(x) * 400), math.floor(math.log10(y) * 400))
            for x, y in zip(points["intensity"], points["achieved_flops"], strict=True)
        }
        assert len(collection.get_offsets()) == len(cells)
    plot.save(fig, tmp_path / "ref.png")
    assert (tmp_path / "ref.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _assert_points_show(ax):
    """Every marker's centre lies inside the axes, or under a pixel past an edge with the marker unclipped."""
    fig = ax.figure
    fig.canvas.draw()
    box = ax.get_window_extent()
    for c in _series_collections(ax):
        px = ax.transData.transform(c.get_offsets())
        inside = ((px[:, 0] >= box.x0) & (px[:, 0] <= box.x1) & (px[:, 1] >= box.y0) & (px[:, 1] <= box.y1)).all()
        near = (
            (px[:, 0] >= box.x0 - 2) & (px[:, 0] <= box.x1 + 2) & (px[:, 1] >= box.y0 - 2) & (px[:, 1] <= box.y1 + 2)
        ).all()
        assert inside or (near and not c.get_clip_on()), c.get_label()


@pytest.mark.slow
def test_ridge_and_subtitle_are_options_and_the_ridge_label_stays_clear(reference):
    spec = rooflax.sweep("sweeps/llama13b_a40_spec.toml")
    fig = plot.roofline(spec, facet="phase", ridge=True, subtitle=True)
    title = fig._suptitle.get_text().splitlines()
    assert title[0] == "Roofline Model (Llama 13B, A40)"
    assert "fp16 · batch 1–64 · seq_len 128–8,192" in title[1] and title[-1].endswith("achieved (predicted)")
    fig.canvas.draw()
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in panels] == ["phase: prefill", "phase: decode", "phase: verify"]
    for ax in panels:
        (circle,) = _lines(ax, "ridge:")
        assert circle.get_xdata()[0] == pytest.approx(149.7e12 / 696e9) and circle.get_ydata()[0] == 149.7e12
        (label,) = [t for t in ax.texts if t.get_gid() == "label-ridge:a40:fp16"]
        assert label.get_text() == "ridge 215"
        box, legend = label.get_window_extent(), ax.get_legend().get_window_extent()
        assert ax.get_window_extent().contains(box.x0, box.y0) and ax.get_window_extent().contains(box.x1, box.y1)
        assert not box.overlaps(legend)  # the legend hides no part of it
        for c in _series_collections(ax):  # nor does any point
            px = ax.transData.transform(c.get_offsets())
            assert not ((px[:, 0] > box.x0) & (px[:, 0] < box.x1) & (px[:, 1] > box.y0) & (px[:, 1] < box.y1)).any()


def _layering(ax):
    """Check that each marker drawn over another's is smaller (and for x and + markers, thinner), so both show.

    Two markers of different series coincide where their centres are closer on the drawn
    figure than half a plain marker's width (3 pt; further apart, both centres show).
    Returns how many coinciding pairs were checked.
    """
    fig = ax.figure
    fig.canvas.draw()
    scale = fig.dpi / 72
    drawn = sorted(_series_collections(ax), key=lambda c: c.get_zorder())
    checked = 0
    for i, below in enumerate(drawn):
        under = ax.transData.transform(below.get_offsets())
        size_b = np.broadcast_to(below.get_sizes(), len(under))
        width_b = np.broadcast_to(below.get_linewidths(), len(under))
        for above in drawn[i + 1 :]:
            over = ax.transData.transform(above.get_offsets())
            size_a = np.broadcast_to(above.get_sizes(), len(over))
            width_a = np.broadcast_to(above.get_linewidths(), len(over))
            distance = np.hypot(*(under[:, None, :] - over[None, :, :]).transpose(2, 0, 1))
            for u, o in zip(*np.nonzero(distance < 3 * scale), strict=True):
                checked += 1
                assert size_b[u] > 1.2 * size_a[o], (below.get_label(), above.get_label())
                if len(below.get_facecolors()) and below.get_facecolors()[0][3] > 0:  # a line or filled marker
                    assert width_b[u] >= width_a[o] + 1, (below.get_label(), above.get_label())
    return checked


@pytest.mark.slow
@pytest.mark.parametrize("ideal", [False, True])
def test_every_series_shows_where_series_coincide(reference, ideal):
    """Nothing is moved: a series drawn under another is larger, with wider strokes, where they meet."""
    fig = plot.roofline(reference, ideal=ideal)
    ax = fig.axes[0]
    assert _layering(ax) > 0
    by_label = {c.get_label(): c for c in _series_collections(ax)}
    column = "attainable_flops" if ideal else "achieved_flops"
    for label, group, phase in (("qkv mlp ar", "qkv mlp", "decode"), ("up/gate/down ar", "up/gate/down", "decode")):
        want = reference.filter(group=group, phase=phase).select("intensity", column).unique()
        assert {tuple(p) for p in by_label[label].get_offsets().tolist()} <= set(want.rows())  # where they are
    qkv, ugd = by_label["qkv mlp ar"], by_label["up/gate/down ar"]
    assert qkv.get_zorder() < ugd.get_zorder()
    assert np.max(qkv.get_linewidths()) >= np.max(ugd.get_linewidths()) + 1  # a rim of orange round the red
    # where nothing coincides, every series keeps the plain x marker of the reference
    alone = plot.roofline(reference.filter(phase="prefill", group="qk/pv"))
    (only,) = _series_collections(alone.axes[0])
    assert set(np.atleast_1d(only.get_sizes())) == {36.0}


@pytest.mark.slow
@pytest.mark.parametrize("chart", ["verify", "facet", "family", "hardware", "prefill=decode"])
def test_coinciding_series_show_on_every_roofline(chart, reference):
    if chart == "hardware":
        df = rooflax.sweep("sweeps/hardware_comparison.toml", batch=[1, 64, 1024], seq_len=[512, 32768])
        fig = plot.roofline(df)
    elif chart == "family":
        fig = plot.family(reference, along="batch")
    elif chart == "prefill=decode":  # prefill at batch 1 and length 128 runs the products of decode at batch 128
        fig = plot.roofline(
            rooflax.sweep(phases=["prefill", "decode"], batch=[1, 8, 128], seq_len=[128, 1024]), resolution=10**7
        )
    else:
        fig = plot.roofline(rooflax.sweep("sweeps/llama13b_a40_spec.toml"), facet="phase" if chart == "facet" else None)
    assert sum(_layering(ax) for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>") > 0


def test_fine_resolution_keeps_every_distinct_point(reference):
    fig = plot.roofline(reference, resolution=10**7)
    (collection,) = [c for c in fig.axes[0].collections if c.get_label() == "qkv mlp init"]
    want = reference.filter(group="qkv mlp", phase="prefill").select("intensity", "achieved_flops").unique()
    assert len(collection.get_offsets()) == want.height


def test_si_ticks():
    assert [si(v) for v in (1, 10, 100, 1e3, 1e4, 1e10, 1e11, 1e14)] == [
        "1",
        "10",
        "100",
        "1k",
        "10k",
        "10G",
        "100G",
        "100T",
    ]


def test_verify_series_and_several_hardware():
    df = rooflax.sweep(
        phases=["prefill", "decode", "verify"],
        batch=[1, 8],
        seq_len=[64, 512],
        spec_k=[16, 32],
        hardware=["a40", "h100-sxm"],
    )
    fig = plot.roofline(df.filter(hardware="a40"), groups=["up/gate/down"])
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == [
        "696GB/s",
        "149.7 TFLOP/s",
        "up/gate/down init",
        "up/gate/down ar",
        "up/gate/down spec: 16",
        "up/gate/down spec: 32",
    ]
    fig = plot.roofline(df, dtypes=["fp8", "int8"])
    ax = fig.axes[0]
    memory = {line.get_gid() for line in _lines(ax, "ceiling-memory")}
    assert memory == {"ceiling-memory:a40", "ceiling-memory:h100-sxm"}
    computes = {line.get_gid() for line in _lines(ax, "ceiling-compute")}
    assert "ceiling-compute:h100-sxm:fp8" in computes and "ceiling-compute:a40:int8" in computes
    assert "ceiling-compute:a40:fp8" not in computes  # the A40 has no fp8
    assert "Roofline Model (Llama 13B, A40, H100 SXM)" == fig._suptitle.get_text().splitlines()[0]


def test_family_colour_bar_and_connect(reference):
    fig = plot.roofline(reference, color_by="batch", connect="batch", facet="phase")
    panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert [ax.get_title() for ax in panels] == ["phase: prefill", "phase: decode"]
    (bar,) = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert bar.get_ylim() == pytest.approx((1, 64))  # the batch range, log scale
    # one grey line per series, op and seq_len in each panel, through every batch value
    for ax, phase in zip(panels, ("prefill", "decode"), strict=True):
        drawn = reference.filter(pl.col("phase") == phase, pl.col("group").is_in(["qkv mlp", "up/gate/down", "qk/pv"]))
        segments = [seg for c in ax.collections if c.get_gid() == "connect:batch" for seg in c.get_segments()]
        assert len(segments) == drawn.select("op", "seq_len").n_unique()
        assert {len(seg) for seg in segments} == {reference.get_column("batch").n_unique()}


def _bar_labels(fig):
    (bar,) = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    fig.canvas.draw()
    lo, hi = bar.get_ylim()
    shown = [t.get_text() for t, v in zip(bar.get_yticklabels(), bar.get_yticks(), strict=True) if lo <= v <= hi]
    assert not [t for t in bar.yaxis.get_minorticklabels() if t.get_text()]  # no unlabelled clutter either
    return shown


@pytest.mark.slow
@pytest.mark.parametrize("axis", ["batch", "seq_len"])
def test_colour_bars_label_every_value_of_a_short_axis(reference, axis):
    values = sorted(reference.get_column(axis).unique())  # 1..64 and 128..8192, powers of two
    for fig in (plot.family(reference, along=axis), plot.roofline(reference, color_by=axis, facet="phase")):
        assert _bar_labels(fig) == [f"{v:,}" for v in values]


@pytest.mark.slow
def test_colour_bars_label_the_powers_of_two_of_a_long_axis():
    df = rooflax.sweep(phases=["decode"], batch={"start": 1, "stop": 100, "step": 1}, seq_len=[128])
    fig = plot.roofline(df, color_by="batch")
    assert _bar_labels(fig) == [f"{2**k:,}" for k in range(7)]  # 1, 2, 4, ..., 64 of 1..100


@pytest.mark.slow
def test_a_family_by_spec_k_draws_the_steps_without_k_in_grey():
    df = rooflax.sweep(phases=["prefill", "decode", "verify"], batch=[1, 8], seq_len=[256, 1024], spec_k=[16, 32])
    fig = plot.roofline(df, color_by="spec_k", resolution=10**7)
    by_label = {c.get_label(): c for c in _series_collections(fig.axes[0])}
    for label, phase in (("qkv mlp init", "prefill"), ("qk/pv ar", "decode")):
        want = df.filter(phase=phase, group=label.rsplit(" ", 1)[0]).select("intensity", "achieved_flops").unique()
        assert sorted(map(tuple, by_label[label].get_offsets().tolist())) == sorted(want.rows())  # none dropped
        assert {tuple(c) for c in by_label[label].get_facecolors()} == {to_rgba("0.6")}
    assert _bar_labels(fig) == ["16", "32"]


def _expected_lines(df: pl.DataFrame, along: str, y: str = "achieved_flops") -> list:
    """Polylines through each op's points along ``along``, derived row by row."""
    lines: dict = {}
    for r in df.iter_rows(named=True):
        if r[along] is None:
            continue
        held = tuple(
            (c, r[c])
            for c in ("model", "hardware", "dtype", "phase", "op", "batch", "seq_len", "hidden", "spec_k")
            if c != along
        )
        lines.setdefault(held, []).append((r[along], r["intensity"], r[y]))
    return sorted(tuple((x, y) for _, x, y in sorted(points)) for points in lines.values() if len(points) > 1)


@pytest.mark.parametrize(("along", "lazy"), [("batch", False), ("batch", True), ("seq_len", True), ("spec_k", True)])
def test_connect_draws_a_line_per_series_op_and_other_axes(lazy, along):
    df = rooflax.sweep(
        phases=["prefill", "decode", "verify"],
        batch=[1, 4, 16],
        seq_len=[64, 256, 1024],
        spec_k=[16, 32],
        hardware=["a40", "h100-sxm"],
    )
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
            assert tuple(lines.get_color()[0][:3]) == tuple(points.get_edgecolor()[0][:3])  # lines are translucent
            # every marker of the series (reduced to one per cell) lies on one of its lines
            assert {tuple(p) for seg in lines.get_segments() for p in seg} >= {tuple(p) for p in points.get_offsets()}


@pytest.mark.slow
def test_big_frames_are_reduced_not_dropped():
    df = rooflax.sweep(
        batch={"start": 1, "stop": 2048, "step": 1}, seq_len={"start": 64, "stop": 8192, "step": 64}, phases=["decode"]
    )
    assert df.height > 3_000_000
    fig = plot.roofline(df, groups=["qkv mlp", "up/gate/down", "qk/pv", "elementwise", "lm_head"])
    ax = fig.axes[0]
    labels = [c.get_label() for c in _series_collections(ax)]
    assert labels == ["qkv mlp ar", "up/gate/down ar", "qk/pv ar", "elementwise ar", "lm_head ar"]
    assert sum(len(c.get_offsets()) for c in _series_collections(ax)) < 100_000


@pytest.mark.slow
def test_regime_maps():
    df = rooflax.sweep(phases=["decode", "verify"], batch=[1, 4, 16, 64, 256], seq_len=[256, 1024, 4096], spec_k=[512])
    fig = plot.regime_map(df)
    names = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert names[:7] == [
        f"{op} · decode" for op in ("qkv_proj", "qk", "pv", "o_proj", "gate_proj", "up_proj", "down_proj")
    ]
    assert "qk · verify K=512" in names
    ax = next(a for a in fig.axes if a.get_title() == "up_proj · decode")
    matrix = ax.images[0].get_array()
    assert matrix.shape == (3, 5)
    assert matrix[0, 0] == 0 and matrix[0, 4] == 1  # memory at batch 1, compute at batch 256 (ridge 215)
    verify = next(a for a in fig.axes if a.get_title() == "qk · verify K=512").images[0].get_array()
    assert verify.mask[0].all()  # seq_len 256 < spec_k 512: no point, blank row
    totals = rooflax.sweep(phases=["decode"], batch=[1, 8, 64, 512], seq_len=[1024, 8192], summary=True)
    fig = plot.regime_map(totals, value="fits_in_memory")
    assert fig.axes[0].images[0].get_array()[1, 3] == 0  # 512 × 8192 tokens of KV cache do not fit in 48 GB
    fig = plot.regime_map(totals, value="tokens_per_s")
    (hatch,) = [c for c in fig.axes[0].collections if c.get_gid() == "does-not-fit"]
    assert len(hatch.get_paths()) == totals.filter(~pl.col("fits_in_memory")).height
    a40 = rooflax.sweep(phases=["decode"], batch=[1, 64], seq_len=[1024], summary=True)
    h100 = rooflax.sweep(phases=["decode"], batch=[1, 64], seq_len=[1024], summary=True, hardware="h100-sxm")
    fig = plot.ratio_map(a40, h100)
    ratio = fig.axes[0].images[0].get_array()
    assert ratio[0, 0] == pytest.approx(a40.get_column("time_s")[0] / h100.get_column("time_s")[0])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda df: plot.roofline(df.drop("intensity")), "roofline: unknown column 'intensity'"),
        (lambda df: plot.roofline(df.filter(pl.col("batch") > 10**6)), "the frame is empty"),
        (lambda df: plot.roofline(df, groups=["qkv"]), "unknown name 'qkv'; did you mean 'qkv mlp' or 'qk/pv'"),
        (lambda df: plot.roofline(df, color_by="batchsize"), "did you mean 'batch'"),
        (lambda df: plot.regime_map(df, value="tokens_per_s"), "value .ops frame.: unknown name"),
        (lambda df: plot.regime_map(df, x="batch", y="batch"), "choose two different axes"),
        (
            lambda df: plot.roofline(df.with_columns(pl.lit("mygpu").cast(pl.Categorical).alias("hardware"))),
            "'mygpu' is not a preset",
        ),
    ],
)
def test_chart_errors(reference, call, message):
    with pytest.raises(rooflax.SpecError, match=message) as info:
        call(reference)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("facet", "keys"),
    [
        ("hardware", {"hardware": ["a40", "h100-sxm"]}),
        ("dtype", {"dtype": ["fp16", "fp32"]}),
        ("model", {"model": ["llama-7b", "llama-13b"]}),  # each model at its own hidden size
    ],
)
def test_maps_facet_a_panel_per_value(facet, keys):
    df = rooflax.sweep(phases=["prefill", "decode"], batch=[1, 8, 64], seq_len=[512, 2048], summary=True, **keys)
    names = [str(v) for v in keys[facet]]
    with pytest.raises(rooflax.SpecError, match=f"map: 2 {facet} values .* --facet {facet}") as info:
        plot.regime_map(df, value="time_s")
    assert "\n" not in str(info.value)
    fig = plot.regime_map(df, value="time_s", facet=facet)
    panels = [ax for ax in fig.axes if ax.images]
    assert [ax.get_title() for ax in panels] == [f"{n} · {p}" for n in names for p in ("prefill", "decode")]
    norms = {(ax.images[0].norm.vmin, ax.images[0].norm.vmax) for ax in panels}
    assert norms == {(df.get_column("time_s").min(), df.get_column("time_s").max())}  # one colour scale
    for ax in panels:  # every cell holds its row's value: batch across, seq_len up
        name, phase = ax.get_title().split(" · ")
        matrix = ax.images[0].get_array()
        for r in df.filter(pl.col(facet).cast(pl.String) == name, pl.col("phase") == phase).iter_rows(named=True):
            assert matrix[[512, 2048].index(r["seq_len"]), [1, 8, 64].index(r["batch"])] == r["time_s"]


def test_long_maps_facet_and_refuse_mixed_rows():
    df = rooflax.sweep(phases=["decode"], batch=[1, 256], seq_len=[512], hardware=["a40", "h100-sxm"])
    fig = plot.regime_map(df, facet="hardware", ops=["up_proj"])
    assert [ax.get_title() for ax in fig.axes if ax.images] == ["a40 · up_proj · decode", "h100-sxm · up_proj · decode"]
    widths = rooflax.sweep(phases=["decode"], batch=[1, 2], seq_len=[512], hidden=[4096, 5120], summary=True)
    with pytest.raises(rooflax.SpecError, match=r"2 hidden values \(4096, 5120\) .*--where \"hidden = 4096\""):
        plot.regime_map(widths)
    with pytest.raises(rooflax.SpecError, match=r"facet \(map\): unknown name 'phase'"):
        plot.regime_map(widths, facet="phase")
    twice = pl.concat([widths.filter(hidden=4096)] * 2)
    with pytest.raises(rooflax.SpecError, match="repeated rows"):
        plot.regime_map(twice)


def test_plan_chart_checks_the_spec_before_a_sweep():
    spec = rooflax.load_spec("sweeps/hardware_comparison.toml")
    assert plan_chart(spec, summary=True) == ChartPlan(kind="map", facet="hardware")
    assert plan_chart(spec, summary=False) == ChartPlan(kind="roofline")
    with pytest.raises(rooflax.SpecError, match="29 hidden values"):
        plan_chart(rooflax.load_spec("sweeps/hidden_scaling.toml"), summary=True)
    two = rooflax.parse_spec(hardware=["a40", "h100-sxm"], dtype=["fp16", "bf16"], batch=[1], seq_len=[128])
    with pytest.raises(rooflax.SpecError, match="2 dtype values"):
        plan_chart(two, summary=True)
    with pytest.raises(rooflax.SpecError, match="2 hardware values"):  # a panel per dtype still mixes hardware
        plan_chart(two, summary=True, facet="dtype")
    with pytest.raises(rooflax.SpecError, match="a roofline needs a long"):
        plan_chart(spec, summary=True, kind="roofline")
    models = rooflax.parse_spec(model=["llama-7b", "llama-13b"], batch=[1], seq_len=[128])
    assert plan_chart(models, summary=True).facet == "model"  # hidden follows each model


@pytest.mark.slow
def test_sweep_plot_facets_by_hardware_or_refuses_before_sweeping(tmp_path, capsys, monkeypatch):
    from rooflax.cli.commands import main

    saved = []
    original = plot.save
    monkeypatch.setattr(plot, "save", lambda fig, path, **kw: saved.append(fig) or original(fig, path, **kw))
    (tmp_path / "hw.toml").write_text(
        "hardware = ['a40', 'h100-sxm']\nphases = ['decode']\n[axes]\nbatch = [1, 64]\nseq_len = [512, 1024]\n"
    )
    assert (
        main(
            [
                "sweep",
                str(tmp_path / "hw.toml"),
                "--summary",
                "-o",
                str(tmp_path / "ds"),
                "--plot",
                str(tmp_path / "m.png"),
                "--quiet",
            ]
        )
        == 0
    )
    assert [ax.get_title() for ax in saved[0].axes if ax.images] == ["a40 · decode", "h100-sxm · decode"]
    assert (
        main(
            [
                "plot",
                str(tmp_path / "ds"),
                "--kind",
                "map",
                "--facet",
                "hardware",
                "-o",
                str(tmp_path / "f.png"),
                "--quiet",
            ]
        )
        == 0
    )
    assert [ax.get_title() for ax in saved[1].axes if ax.images] == ["a40 · decode", "h100-sxm · decode"]
    (tmp_path / "w.toml").write_text(
        "phases = ['decode']\n[axes]\nbatch = [1]\nseq_len = [512]\nhidden = [4096, 5120]\n"
    )
    capsys.readouterr()
    assert (
        main(
            [
                "sweep",
                str(tmp_path / "w.toml"),
                "--summary",
                "-o",
                str(tmp_path / "w"),
                "--plot",
                str(tmp_path / "w.png"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert err.startswith("error: --plot: map: 2 hidden values") and err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds", "f.png", "hw.toml", "m.png", "w.toml"]


@pytest.mark.slow
def test_plot_outputs_are_checked_and_never_silently_replaced(tmp_path, capsys):
    from rooflax.cli.commands import main

    ds, chart = tmp_path / "ds", tmp_path / "c.png"
    rooflax.sweep_to_parquet(None, ds, phases=["decode"], batch=[1, 4, 16], seq_len=[128, 512])
    assert main(["plot", str(ds), "--connect", "batch", "-o", str(chart), "--quiet"]) == 0
    before = chart.read_bytes()
    for argv, message in (
        (["-o", str(chart)], f"-o/--output: '{chart}' already exists; pass overwrite (--overwrite)"),
        (["-o", str(tmp_path)], f"-o/--output: '{tmp_path}' is a folder"),
        (["-o", ""], "-o/--output: the file name is empty"),
        (["-o", str(chart / "x.png")], f"'{chart}' is a file, not a folder"),
        (["-o", str(tmp_path / "c.jpg")], "has format '.jpg'; allowed: .png, .svg, .pdf"),
    ):
        capsys.readouterr()
        assert main(["plot", str(ds), "--kind", "map", *argv]) == 2
        err = capsys.readouterr().err
        assert err == f"error: {message}\n" or (message in err and err.count("\n") == 1), err
    assert chart.read_bytes() == before
    assert main(["plot", str(ds), "--kind", "map", "-o", str(chart), "--overwrite", "--quiet"]) == 0
    assert chart.read_bytes() != before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.png", "ds"]


@pytest.mark.slow
def test_save_and_chart_inputs_are_one_line_errors(reference, tmp_path):
    fig = plot.roofline(reference)
    path = plot.save(fig, tmp_path / "a.svg")
    assert path.read_text().lstrip().startswith("<?xml")
    for call, message in (
        (lambda: plot.save(fig, tmp_path / "a.svg"), "path: .* already exists"),
        (lambda: plot.save("fig", tmp_path / "b.png"), "expected a matplotlib Figure to save, got str"),
        (lambda: plot.roofline([1, 2, 3]), "roofline: expected a polars DataFrame or LazyFrame .*got list"),
        (lambda: plot.roofline(reference, groups="qk/pv"), "groups: expected a list of group names"),
        (lambda: plot.regime_map({"batch": [1]}), "map: expected a polars DataFrame .*got dict"),
        (lambda: plot.ratio_map(reference, None), r"ratio map \(b\): expected a polars DataFrame"),
        (lambda: plot.measured(reference.lazy(), None), "measured: expected a polars DataFrame"),
    ):
        with pytest.raises(rooflax.SpecError, match=message) as info:
            call()
        assert "\n" not in str(info.value)
    plot.save(fig, tmp_path / "a.svg", overwrite=True)


# ---- achieved points, visibility, titles (issues 9 and 12) ----


def _series_collections(ax):
    return [c for c in ax.collections if c.get_gid() is None and len(c.get_offsets())]


@pytest.mark.parametrize("ideal", [False, True])
def test_points_are_achieved_unless_ideal_and_the_y_axis_reaches_them(reference, ideal):
    fig = plot.roofline(reference, ideal=ideal, resolution=10**7, subtitle=True)
    ax = fig.axes[0]
    column = "attainable_flops" if ideal else "achieved_flops"
    drawn = reference.filter(pl.col("group").is_in(["qkv mlp", "up/gate/down", "qk/pv"]))
    offsets = [tuple(p) for c in _series_collections(ax) for p in c.get_offsets().tolist()]
    assert set(offsets) == set(drawn.select("intensity", column).rows())
    roof = {(x, min(149.7e12, 696e9 * x)) for x, _ in offsets}
    on_roof = sum(y == pytest.approx(min(149.7e12, 696e9 * x)) for x, y in offsets)
    assert on_roof == (len(offsets) if ideal else 0) and roof
    lowest = drawn.get_column(column).min()
    assert ax.get_ylim()[0] < lowest and ax.get_ylim()[0] > lowest / 100  # down to the lowest point, no further
    assert {c.get_paths()[0].vertices.tobytes() for c in _series_collections(ax)} == {
        _series_collections(ax)[0].get_paths()[0].vertices.tobytes()
    }  # x markers throughout, as the paper
    assert (
        fig._suptitle.get_text().splitlines()[-1].endswith("ideal (on the roof)" if ideal else "achieved (predicted)")
    )


def test_roofline_of_a_frame_without_achieved_columns_says_to_draw_it_ideal(reference):
    old = reference.drop("achieved_flops", "achieved_time_s")
    with pytest.raises(rooflax.SpecError, match=r"no 'achieved_flops' column .* ideal=True \(--ideal\)") as info:
        plot.roofline(old.lazy())
    assert "\n" not in str(info.value)
    plot.roofline(old, ideal=True)


def test_verify_chart_tells_its_fifteen_series_apart_with_a_compact_legend():
    spec = rooflax.load_spec("sweeps/llama13b_a40_spec.toml")
    df = rooflax.sweep(spec)
    fig = plot.roofline(df)
    ax = fig.axes[0]
    series = _series_collections(ax)
    assert len(series) == 15
    looks = {(tuple(np.round((c.get_edgecolor()[0])[:3], 3)), c.get_paths()[0].vertices.tobytes()) for c in series}
    assert len(looks) == 15  # colour (group, shade per step) and marker (step) differ for every pair
    by_group = {}
    for c in series:
        group = c.get_label().rsplit(" ", 1)[0].replace(" spec:", "")
        by_group.setdefault(group, set()).add(c.get_paths()[0].vertices.tobytes())
    assert all(len(markers) == 5 for markers in by_group.values())  # one marker per step within each group
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == [
        "696GB/s",
        "149.7 TFLOP/s",
        "qkv mlp",
        "up/gate/down",
        "qk/pv",
        "init",
        "ar",
        "spec: 16",
        "spec: 32",
        "spec: 48",
    ]


def test_hardware_comparison_has_one_legend_consistent_figures_and_no_hidden_roof():
    from matplotlib.legend import Legend

    df = rooflax.sweep("sweeps/hardware_comparison.toml", batch=[1, 64, 1024], seq_len=[512, 32768])
    fig = plot.roofline(df)
    ax = fig.axes[0]
    legends = [a for a in [*ax.artists, *ax.get_children()] if isinstance(a, Legend)]
    assert len(legends) == 1
    texts = [t.get_text() for t in legends[0].get_texts()]
    ceilings = [t for t in texts if "ridge" in t]
    assert len(ceilings) == 6
    for text in ceilings:  # bandwidth in GB/s and peak in TFLOP/s, plain numbers at four digits
        assert re.fullmatch(r".+: \d+GB/s, \d+(\.\d)? TFLOP/s, ridge \d+", text), text
    assert "H100 SXM: 3350GB/s, 989.4 TFLOP/s, ridge 295" in ceilings
    assert "MI300X: 5300GB/s, 1307 TFLOP/s, ridge 247" in ceilings
    for kind in ("ceiling-compute", "ceiling-memory"):  # a roof that another covers is drawn wider beneath it
        lines = _lines(ax, kind)
        for i, a in enumerate(lines):
            for b in lines[i + 1 :]:
                same = (
                    a.get_ydata()[-1] == b.get_ydata()[-1]
                    if kind == "ceiling-compute"
                    else a.get_ydata()[0] / a.get_xdata()[0] == pytest.approx(b.get_ydata()[0] / b.get_xdata()[0])
                )
                if same:
                    assert a.get_linewidth() > b.get_linewidth()
    h100, h200 = (
        next(line for line in _lines(ax, "ceiling-compute") if f":{n}:" in line.get_gid()) for n in ("h100-sxm", "h200")
    )
    assert h100.get_linewidth() > h200.get_linewidth()  # both at 989.4 TFLOP/s


def test_rates_take_the_prefix_their_magnitude_calls_for():
    from rooflax.plot.roofline import bandwidth_label, peak_label

    assert [bandwidth_label(b) for b in (696e9, 2.039e12, 3.35e12, 2.05e10, 5e8)] == [
        "696GB/s",
        "2039GB/s",
        "3350GB/s",
        "20.5GB/s",
        "500MB/s",
    ]
    assert [peak_label(f, "fp16") for f in (149.7e12, 1.3074e15, 1.077e11, 2.6149e15)] == [
        "149.7 TFLOP/s",
        "1307 TFLOP/s",
        "107.7 GFLOP/s",
        "2615 TFLOP/s",
    ]
    assert peak_label(624e12, "int8") == "624 TOP/s"


def test_validate_chart_labels_a_cpu_in_gflops():
    import dataclasses

    from rooflax.config.hardware import HARDWARE

    cpu = dataclasses.replace(
        HARDWARE["a40"], name="cpu", label="cpu", peak_flops=(("fp32", 1.077e11),), bandwidth_bytes_per_s=2.05e10
    )
    df = rooflax.sweep(phases=["decode"], batch=[1, 4], seq_len=[128], dtype="fp32")
    frame = df.filter(pl.col("group").is_in(["qkv mlp"])).select(
        "model",
        "dtype",
        "phase",
        "batch",
        "seq_len",
        "spec_k",
        "op",
        "group",
        "flops",
        "intensity",
        (pl.col("flops") / pl.col("time_s") / 1e3).alias("measured_flops"),
    )
    fig = plot.measured(frame, cpu)
    ax = fig.axes[0]
    assert {"107.7 GFLOP/s", "20.5GB/s"} <= {t.get_text() for t in ax.get_legend().get_texts()}
    (measured,) = [c for c in ax.collections if c.get_gid() == "measured"]
    assert sorted(map(tuple, measured.get_offsets().tolist())) == sorted(
        frame.select("intensity", "measured_flops").rows()
    )
    assert ax.get_ylim()[0] < frame.get_column("measured_flops").min()


@pytest.mark.slow
def test_titles_say_what_was_swept():
    df = rooflax.sweep("sweeps/hidden_scaling.toml", batch=[1, 8], seq_len=[256], phases=["decode"])
    title = plot.roofline(df, subtitle=True).texts[0].get_text()
    assert title.startswith("Roofline Model (Llama 13B scaled to hidden 2,048–16,384, A40)")
    assert "fp16 · batch 1–8 · seq_len 256" in title
    kv = rooflax.sweep(
        phases=["decode"],
        batch=[1, 8],
        seq_len=[256, 512],
        kv_dtype="fp8",
        fused_attention=True,
        model="llama-3-8b",
        hardware="h100-sxm",
        dtype="bf16",
    )
    title = plot.roofline(kv, subtitle=True).texts[0].get_text()
    assert "bf16, KV fp8" in title and "fused attention" in title and "Llama 3 8B" in title
    map_title = plot.regime_map(kv).texts[0].get_text()
    assert "Llama 3 8B on H100 SXM" in map_title and "bf16, KV fp8" in map_title


@pytest.mark.slow
def test_family_draws_lines_along_the_colour_axis_above_the_roof(reference, tmp_path):
    from rooflax.cli.commands import main

    fig = plot.family(reference, along="batch", ideal=True)
    ax = fig.axes[0]
    lines = [c for c in ax.collections if c.get_gid() == "connect:batch"]
    roof = max(line.get_zorder() for line in _lines(ax, "ceiling"))
    assert min(c.get_zorder() for c in lines) > roof
    drawn = reference.filter(pl.col("group").is_in(["qkv mlp", "up/gate/down", "qk/pv"]))
    assert sum(len(c.get_segments()) for c in lines) == drawn.select("phase", "op", "seq_len").n_unique()
    ds = tmp_path / "ds"
    rooflax.sweep_to_parquet(None, ds, phases=["decode"], batch=[1, 4, 16], seq_len=[128, 512])
    for kind in ("family", "roofline"):
        assert (
            main(
                ["plot", str(ds), "--kind", kind, "--color-by", "batch", "-o", str(tmp_path / f"{kind}.png"), "--quiet"]
            )
            == 0
        )
    assert (tmp_path / "family.png").read_bytes() != (tmp_path / "roofline.png").read_bytes()


@pytest.mark.slow
def test_maps_read_on_a_slide():
    from rooflax.plot.maps import round_ticks

    # 32 sequence lengths: too many to label each, so ticks land on round values
    reference = rooflax.sweep(
        batch={"start": 1, "stop": 128, "powers_of": 2}, seq_len={"start": 128, "stop": 4096, "step": 128}
    )
    fig = plot.regime_map(reference)
    assert fig.get_figwidth() * 150 <= 2000  # at the default dpi of plot.save
    panels = [ax for ax in fig.axes if ax.images]
    assert len(panels) == 14 and len({ax.get_position().x0 for ax in panels}) <= 4
    for ax in panels:
        ys = [int(t.get_text().replace(",", "")) for t in ax.get_yticklabels()]
        assert ys == [512 * k for k in range(1, 9)]  # round values of 128..4096 by 128
        assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "2", "4", "8", "16", "32", "64", "128"]
    title = fig.texts[0].get_text()
    assert "Llama 13B on A40" in title and "fp16" in title
    # the boundary: one edge between each pair of neighbouring cells of different bound, derived from the rows
    ax = next(a for a in panels if a.get_title() == "qkv_proj · prefill")
    rows = reference.filter(op="qkv_proj", phase="prefill")
    bound = {(r["batch"], r["seq_len"]): r["bound"] for r in rows.iter_rows(named=True)}
    bs, ss = sorted({b for b, _ in bound}), sorted({s for _, s in bound})
    edges = sum(bound[(bs[i], s)] != bound[(bs[i + 1], s)] for i in range(len(bs) - 1) for s in ss)
    edges += sum(bound[(b, ss[j])] != bound[(b, ss[j + 1])] for j in range(len(ss) - 1) for b in bs)
    (line,) = [c for c in ax.collections if c.get_gid() == "boundary"]
    assert len(line.get_segments()) == edges > 0
    assert [v for i, v in enumerate(range(1, 1025)) if i in round_ticks(range(1, 1025))] == list(range(128, 1025, 128))
    assert round_ticks([1, 2, 4, 8]) == [0, 1, 2, 3]
    assert round_ticks([2**k for k in range(16)]) == list(range(0, 16, 2))


def test_ratio_map_prints_ratios_diverges_at_one_and_says_which_is_faster():
    a40 = rooflax.sweep(phases=["decode"], batch=[1, 64], seq_len=[1024, 4096], summary=True)
    h100 = rooflax.sweep(phases=["decode"], batch=[1, 64], seq_len=[1024, 4096], summary=True, hardware="h100-sxm")
    for value, faster in (("time_s", "red (> 1): H100 SXM faster"), ("tokens_per_s", "red (> 1): A40 faster")):
        fig = plot.ratio_map(a40, h100, value=value)
        ax = fig.axes[0]
        image = ax.images[0]
        assert image.norm(1.0) == pytest.approx(0.5) and image.cmap(0.5)[:3] == pytest.approx(
            (0.97, 0.97, 0.97), abs=0.03
        )
        want = sorted(
            f"{ra / rb:.2g}"
            for ra, rb in zip(
                a40.sort("seq_len", "batch").get_column(value),
                h100.sort("seq_len", "batch").get_column(value),
                strict=True,
            )
        )
        assert sorted(t.get_text() for t in ax.texts if t.get_gid() == "cell-value") == want
        assert faster in fig.texts[0].get_text()


def _validation(df: pl.DataFrame, factors: dict[str, float], column: str = "measured_flops") -> pl.DataFrame:
    """A validation frame whose measured time is the achieved time times a factor per group."""
    rows = df.filter(pl.col("group").is_in(list(factors)))
    rows = rows.with_columns(
        (
            pl.col("achieved_time_s") * pl.col("group").cast(pl.String).replace_strict(factors, return_dtype=pl.Float64)
        ).alias("measured_time_s")
    )
    return rows.select(
        "model",
        "phase",
        "batch",
        "seq_len",
        "spec_k",
        "op",
        "group",
        "flops",
        "bytes",
        "intensity",
        "measured_time_s",
        (pl.col("flops") / pl.col("measured_time_s")).alias(column),
    ).with_columns(pl.col("model", "phase", "op", "group").cast(pl.String))


@pytest.mark.parametrize("column", ["measured_flops", "achieved_flops"])  # the older name too
def test_measured_points_over_achieved_points_with_errors_per_group(column):
    df = rooflax.sweep(phases=["prefill", "decode"], batch=[1, 8], seq_len=[256, 1024])
    validation = _validation(df.filter(pl.col("batch") == 8), {"qkv mlp": 2.0, "qk/pv": 1.25}, column)
    fig, errors = plot.over_measured(df, validation, resolution=10**7)  # every point, none merged
    ax = fig.axes[0]
    measured = [c for c in ax.collections if c.get_gid() == "measured"]
    got = sorted(tuple(p) for c in measured for p in c.get_offsets().tolist())
    assert got == sorted(validation.select("intensity", column).rows())
    predicted = sorted(tuple(p) for c in _series_collections(ax) for p in c.get_offsets().tolist())
    assert predicted == sorted(
        df.filter(pl.col("batch") == 8, pl.col("group").is_in(["qkv mlp", "qk/pv"]))
        .select("intensity", "achieved_flops")
        .unique()
        .rows()
    )
    assert ax.get_ylim()[0] < validation.get_column(column).min()
    # |achieved − measured| / measured with measured = f · achieved is 1 − 1/f
    medians = dict(errors.select("group", "median_rel_error").rows())
    assert medians == pytest.approx(
        {
            "qk/pv": 0.2,
            "qkv mlp": 0.5,
            "all": float(
                np.median(
                    [0.5] * validation.filter(group="qkv mlp").height + [0.2] * validation.filter(group="qk/pv").height
                )
            ),
        }
    )
    assert dict(errors.select("group", "points").rows())["qkv mlp"] == validation.filter(group="qkv mlp").height


@pytest.mark.slow
def test_plot_measured_cli_prints_errors_and_refuses_bad_input(tmp_path, capsys):
    from rooflax.cli.commands import main

    ds = tmp_path / "ds"
    rooflax.sweep_to_parquet(None, ds, phases=["decode"], batch=[1, 4], seq_len=[128, 512])
    df = rooflax.sweep(phases=["decode"], batch=[1, 4], seq_len=[128, 512])
    _validation(df, {"up/gate/down": 4.0}).write_parquet(tmp_path / "v.parquet")
    capsys.readouterr()
    assert main(["plot", str(ds), "--measured", str(tmp_path / "v.parquet"), "-o", str(tmp_path / "m.png")]) == 0
    out = capsys.readouterr().out
    assert re.search(r"up/gate/down\s+12\s+75\.0%", out), out  # 3 ops × 4 points, 1 − 1/4
    _validation(df.filter(pl.col("batch") > 100), {"up/gate/down": 4.0}).write_parquet(tmp_path / "none.parquet")
    other = rooflax.sweep(phases=["decode"], batch=[2], seq_len=[128])
    _validation(other, {"up/gate/down": 4.0}).write_parquet(tmp_path / "other.parquet")
    for argv, message in (
        (["--measured", str(tmp_path / "missing.parquet")], "--measured: .*missing.parquet' is not a file"),
        (["--measured", str(tmp_path / "m.png")], "--measured: cannot read .* as parquet"),
        (["--measured", str(tmp_path / "other.parquet")], "measured: no configuration of the validation result"),
        (["--measured", str(tmp_path / "v.parquet"), "--ideal"], "--measured: draws measured and achieved"),
        (["--kind", "map", "--ideal"], "--ideal: only read by --kind roofline or family, not --kind map"),
    ):
        capsys.readouterr()
        assert main(["plot", str(ds), *argv, "-o", str(tmp_path / "x.png")]) == 2
        err = capsys.readouterr().err
        assert re.match(f"error: {message}", err) and err.count("\n") == 1, err
    assert not (tmp_path / "x.png").exists()


def test_plan_chart_accounts_for_parallel_layouts():
    tp = rooflax.load_spec("sweeps/llama70b_tp.toml")
    assert plan_chart(tp, summary=True) == ChartPlan(kind="map", facet="tp")
    both = rooflax.parse_spec(model="llama-2-70b", hardware=["h100-sxm", "h200"], batch=[1], seq_len=[128], tp=[1, 2])
    message = one_line_error(lambda: plan_chart(both, summary=True), "2 tp values (1, 2)", '--where "tp = 1"')
    assert "2 hardware values" in message


@pytest.mark.slow
def test_a_map_of_several_layouts_says_so():
    frame = rooflax.sweep(
        model="llama-2-70b",
        hardware="h100-sxm",
        phases=["decode"],
        batch=[1, 2],
        seq_len=[128, 256],
        tp=[1, 2],
        summary=True,
    )
    one_line_error(lambda: plot.regime_map(frame), "2 tp values (1, 2)", '--where "tp = 1"', "--facet tp")
    fig = plot.regime_map(frame, facet="tp")
    assert [ax.get_title() for ax in fig.axes if ax.get_title()] == ["tp=1 · decode", "tp=2 · decode"]


@pytest.mark.parametrize(
    "draw",
    [
        lambda df: plot.roofline(df, facet="tp"),
        lambda df: plot.roofline(df, ideal=True),
        lambda df: plot.interconnect(df),
        lambda df: plot.family(df, along="batch"),
    ],
)
def test_a_summary_frame_is_refused_as_one(draw):
    """An op chart given a summary frame says so (not 'predates achieved performance', not 'unknown column op')."""
    df = rooflax.sweep(
        model="llama-2-70b",
        hardware="h100-sxm",
        phases=["decode"],
        batch=[1, 8],
        seq_len=[512],
        tp=[1, 2],
        summary=True,
    )
    one_line_error(lambda: draw(df), "the frame is a summary", "sweep without summary=True")


@pytest.mark.slow
def test_interconnect_names_its_roof_in_the_legend_and_shows_both_all_reduces():
    df = rooflax.sweep("sweeps/llama70b_tp.toml", batch=[1, 16, 256], seq_len=[512, 4096])
    fig = plot.interconnect(df)
    ax = fig.axes[0]
    assert not ax.texts  # no figure squeezed into a corner: the legend names the roof
    legend = ax.get_legend()
    hop = rooflax.get_hardware("h100-sxm").interconnect_latency_s * 1e6  # fitted to NCCL's timings
    assert legend.get_texts()[0].get_text() == f"H100 SXM: 450GB/s, {hop:.3g} µs a hop"
    assert legend.legend_handles[0].get_linestyle() == "--"
    by_label = {c.get_label(): c for c in _series_collections(ax)}
    for phase in ("init", "ar"):  # a layer's two all-reduces move the same bytes in the same time
        attn, mlp = by_label[f"attn_allreduce {phase}"], by_label[f"mlp_allreduce {phase}"]
        assert {tuple(p) for p in attn.get_offsets().tolist()} == {tuple(p) for p in mlp.get_offsets().tolist()}
        assert attn.get_zorder() < mlp.get_zorder()
        assert np.min(attn.get_sizes()) > 1.2 * np.max(mlp.get_sizes())
        assert np.min(attn.get_linewidths()) >= np.max(mlp.get_linewidths()) + 1
    assert _layering(ax) > 0
    _assert_points_show(ax)


def test_best_k_map_hatches_cells_that_do_not_fit_and_draws_k_in_whole_colours():
    best = rooflax.best_k(
        model="llama-33b",
        hardware="a100-80gb-pcie",
        batch=[1, 16, 64],
        seq_len=[256, 8192],
        medusa_heads=4,
        k=[0, 1, 2, 4],
    )
    fig = plot.speculation_map(best)
    left, right = (ax for ax in fig.axes if ax.images and ax.get_label() != "<colorbar>")
    batches, lengths = sorted(best["batch"].unique()), sorted(best["seq_len"].unique())
    unfit = {
        (batches.index(r["batch"]), lengths.index(r["seq_len"]))
        for r in best.iter_rows(named=True)
        if not r["fits_in_memory"]
    }
    assert 0 < len(unfit) < best.height
    for ax in (left, right):
        (hatch,) = [c for c in ax.collections if c.get_gid() == "does-not-fit"]
        assert hatch.get_hatch() and not hatch.get_facecolor()[:, 3].any()  # hatched over the cell's own colour
        cells = {tuple(np.round(p.vertices.min(axis=0) + 0.5).astype(int)) for p in hatch.get_paths()}
        assert cells == unfit
    assert [t.get_text() for t in fig.legends[0].get_texts()] == [
        "does not fit in one device's memory (target and drafter)"
    ]
    # one colour per K, on a colour bar ticked with the whole numbers
    ks = sorted(best["draft_k"].unique())
    image = right.images[0]
    assert len({image.cmap(image.norm(k)) for k in ks}) == len(ks) == image.cmap.N
    (bar,) = [ax for ax in fig.axes if ax.get_label() == "<colorbar>" and "best K" in ax.get_ylabel()]
    assert [t.get_text() for t in bar.get_yticklabels()] == [str(k) for k in ks]
    assert not bar.yaxis.get_minorticklocs().size
    # a cell without a row is said to have no round
    fig = plot.speculation_map(best.filter((pl.col("batch") != 16) | (pl.col("seq_len") != 256)))
    assert "no round" in fig.legends[0].get_texts()[-1].get_text()


@pytest.mark.slow
def test_plot_cli_ridge_and_subtitle_flags(tmp_path, capsys, monkeypatch):
    from rooflax.cli.commands import main

    saved = []
    original = plot.save
    monkeypatch.setattr(plot, "save", lambda fig, path, **kw: saved.append(fig) or original(fig, path, **kw))
    ds = tmp_path / "ds"
    rooflax.sweep_to_parquet(None, ds, phases=["decode"], batch=[1, 4, 16], seq_len=[128, 512])
    assert main(["plot", str(ds), "-o", str(tmp_path / "plain.png"), "--quiet"]) == 0
    assert main(["plot", str(ds), "-o", str(tmp_path / "extras.png"), "--ridge", "--subtitle", "--quiet"]) == 0
    plain, extras = saved
    assert plain._suptitle.get_text() == "Roofline Model (Llama 13B, A40)" and not _lines(plain.axes[0], "ridge")
    assert extras._suptitle.get_text().splitlines()[1].startswith("fp16 · batch 1–16")
    assert [t.get_text() for t in extras.axes[0].texts] == ["ridge 215"] and _lines(extras.axes[0], "ridge:")
    capsys.readouterr()
    assert main(["plot", str(ds), "--kind", "map", "--ridge", "-o", str(tmp_path / "m.png")]) == 2
    err = capsys.readouterr().err
    assert err == "error: --ridge: only read by --kind roofline or family, not --kind map\n"


@pytest.mark.slow
def test_docs_script_draws_every_chart_under_docs_and_writes_docs_only_when_asked(tmp_path):
    import importlib.util
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    spec = importlib.util.spec_from_file_location("docs_make", root / "docs" / "make.py")
    make = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make)
    assert sorted(make.CHARTS) == sorted(p.stem for p in (root / "docs").glob("*.png"))  # every chart, no other
    before = {p.name: p.stat().st_mtime_ns for p in (root / "docs").iterdir()}
    assert make.cli(["--out", str(tmp_path), "llama13b_a40", "llama33b_a100_spec_attention_seq1024"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "llama13b_a40.png",
        "llama33b_a100_spec_attention_seq1024.png",
    ]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in tmp_path.iterdir())
    assert {p.name: p.stat().st_mtime_ns for p in (root / "docs").iterdir()} == before  # docs/ untouched
    with pytest.raises(SystemExit):
        make.cli(["nosuchchart"])


def test_charts_leave_no_pyplot_figures(reference, tmp_path):
    """Every chart is a plain Figure: pyplot's registry of open figures stays empty, so notebooks leak none."""
    import matplotlib.pyplot as plt

    summary = rooflax.sweep(phases=["decode"], batch=[1, 8], seq_len=[512, 1024], summary=True)
    tp = rooflax.sweep(hardware="h100-sxm", tp=[1, 8], batch=[1, 8], seq_len=[512], phases=["prefill", "decode"])
    spec = rooflax.speculate(batch=[1, 8], seq_len=[512, 1024], k=[0, 2])
    charts = [
        plot.roofline(reference),
        plot.family(reference, along="batch"),
        plot.regime_map(reference),
        plot.regime_map(summary, value="tokens_per_s"),
        plot.ratio_map(summary, summary),
        plot.interconnect(tp),
        plot.speculation_map(rooflax.best_k(spec)),
    ]
    for i, fig in enumerate(charts):
        plot.save(fig, tmp_path / f"{i}.png")
    assert plt.get_fignums() == []


def test_draw_a_dataset_is_the_chart_of_its_rows(tmp_path):
    """``plot.draw`` (what ``rooflax plot`` calls) draws the points the chart functions draw from the same rows."""
    keys = dict(phases=["prefill", "decode"], batch=[1, 8], seq_len=[256, 1024])
    rooflax.sweep_to_parquet(rooflax.parse_spec(**keys), tmp_path / "ds", progress=False)
    df = rooflax.sweep(**keys)
    fig, errors = plot.draw(tmp_path / "ds", where="batch = 8")
    assert errors is None
    chart = plot.roofline(df.filter(pl.col("batch") == 8))  # the chart function on the same rows
    want = sorted({tuple(p) for c in _series_collections(chart.axes[0]) for p in c.get_offsets().tolist()})
    assert len(want) > 10
    assert sorted({tuple(p) for c in _series_collections(fig.axes[0]) for p in c.get_offsets().tolist()}) == want
    validation = _validation(df.filter(pl.col("batch") == 8), {"qkv mlp": 2.0})
    validation.write_parquet(tmp_path / "v.parquet")
    fig, errors = plot.draw(tmp_path / "ds", measured=tmp_path / "v.parquet")
    assert dict(errors.select("group", "median_rel_error").rows()) == pytest.approx({"qkv mlp": 0.5, "all": 0.5})
    fig, errors = plot.draw(tmp_path / "ds", kind="map", value="time_s", where="phase = 'decode' AND op = 'qk'")
    image = fig.axes[0].images[0].get_array()
    assert sorted(image.compressed().tolist()) == sorted(df.filter(phase="decode", op="qk").get_column("time_s"))
    one_line_error(lambda: plot.draw(tmp_path / "ds", kind="family"), "--kind family: give --color-by")
    one_line_error(lambda: plot.draw(tmp_path / "ds", kind="pie"), "kind", "'pie'", "roofline")


def test_validation_written_is_read_back(tmp_path):
    """``write_validation`` writes the file ``read_validation`` (and ``plot --measured``) reads, profiles kept."""
    from rooflax.config.hardware import HARDWARE, hardware_to_toml

    df = rooflax.sweep(phases=["decode"], batch=[1, 8], seq_len=[256])
    validation = _validation(df, {"qkv mlp": 2.0})
    a40, h100 = HARDWARE["a40"], HARDWARE["h100-sxm"]
    path = write_validation(validation, tmp_path / "v.parquet", profile=a40, calibrated=h100, timer_ratio=2.01)
    assert read_validation(path).equals(validation)
    meta = pl.read_parquet_metadata(path)
    assert (meta["rooflax.kind"], meta["rooflax.profile"], meta["rooflax.calibrated"], meta["rooflax.timer_ratio"]) == (
        "validate",
        hardware_to_toml(a40),
        hardware_to_toml(h100),
        "2.0100",
    )
    one_line_error(
        lambda: write_validation(validation, path, profile=a40, calibrated=a40, timer_ratio=2.0, field="-o/--output"),
        "-o/--output",
        "v.parquet",
    )


def test_one_si_formatter():
    """Chart ticks, roof labels and progress counts are written by the one ``si``, rooflax.units.si."""
    from rooflax import units
    from rooflax.data import progress
    from rooflax.plot import _common

    assert _common.si is progress.si.func is units.si
    assert [_common.tick_label(v) for v in (0, 1e-3, 1, 1e3, 1e10, 1e14)] == ["0", "1m", "1", "1k", "10G", "100T"]
    assert [progress.si(v) for v in (7, 850e3, 12.34e6)] == ["7", "850.0k", "12.3M"]
    assert (plot.roofline.__globals__["si"], plot.roofline.__globals__.get("si_rate")) == (units.si, None)


def test_achieved_points_carry_their_error_band_as_bars():
    """Each achieved point's bar spans FLOP/s over its group's time band; a profile without a band draws none."""
    from matplotlib.collections import LineCollection

    df = rooflax.sweep(phases=["decode"], batch=[1, 8], seq_len=[1024])
    fig = rooflax.plot.roofline(df, groups=["qkv mlp"])
    bars = [c for c in fig.axes[0].collections if c.get_gid() == "band"]
    assert all(isinstance(c, LineCollection) for c in bars)
    assert bars
    terms = rooflax.get_hardware("a40").terms("qkv mlp", "decode")
    achieved = set(df.filter(group="qkv mlp")["achieved_flops"].round(3).to_list())
    for segment in bars[0].get_segments():
        low, high = segment[:, 1]
        centre = low * terms["band_high"]  # the point: the bar's low end is FLOP/s at the band's slow end
        assert round(centre, 3) in achieved
        assert high == pytest.approx(centre / terms["band_low"], rel=1e-9)
    bare = rooflax.plot.roofline(rooflax.sweep(hardware="mi300x", phases=["decode"], batch=[1, 8], seq_len=[1024]))
    assert not [c for c in bare.axes[0].collections if c.get_gid() == "band"]
