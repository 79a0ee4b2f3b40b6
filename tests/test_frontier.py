"""The serving frontier (rooflax.frontier): Pareto sets, the SLA, bad input."""

from __future__ import annotations

import dataclasses

import numpy as np
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st
from one_line import one_line_error

import rooflax
from rooflax.answers.frontier import frontier_table, pareto_mask

TOY = dict(model="toy-llama", hardware="h100-sxm", isl=64, osl=17, gpus=4, batch=[1, 4, 16, 64])


def _dominated_by(x: np.ndarray, y: np.ndarray, i: int, among: np.ndarray, strict: bool) -> bool:
    """Whether a point of ``among`` (indices) is at least as good as point ``i`` in both, better in one if strict."""
    ge = (x[among] >= x[i]) & (y[among] >= y[i])
    if strict:
        ge &= (x[among] > x[i]) | (y[among] > y[i])
    return bool(ge.any())


def _check_frontier(x: np.ndarray, y: np.ndarray, on: np.ndarray) -> None:
    front, rest = np.flatnonzero(on), np.flatnonzero(~on)
    everyone = np.arange(len(x))
    for i in front:  # nothing beats a point on the frontier
        assert not _dominated_by(x, y, i, everyone, strict=True)
    for i in rest:  # a point off it is matched or beaten by one on it
        assert _dominated_by(x, y, i, front, strict=False)
    if len(x):
        assert on.any()


points = st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6)), max_size=40)


@given(points)
def test_pareto_mask_keeps_exactly_the_undominated_points(pairs):
    x = np.array([float(a) for a, _ in pairs])
    y = np.array([float(b) for _, b in pairs])
    on = pareto_mask(x, y)
    _check_frontier(x, y, on)
    # of points equal in both, one only
    kept = {(a, b) for a, b, o in zip(x, y, on, strict=True) if o}
    assert len(kept) == int(on.sum())


@given(st.lists(st.tuples(st.floats(0.1, 1e4), st.floats(0.1, 1e4)), min_size=1, max_size=40))
def test_pareto_mask_on_real_numbers(pairs):
    x, y = np.array([a for a, _ in pairs]), np.array([b for _, b in pairs])
    _check_frontier(x, y, pareto_mask(x, y))


@pytest.mark.slow
def test_the_frontier_of_real_configurations():
    result = rooflax.frontier(**TOY, k=[2], chunk=[None, 32], disaggregated=True)
    found = result.configurations
    assert found["feasible"].all() and set(found["serving"]) == {"aggregated", "disaggregated"}
    assert (4 % (found["tp"] * found["pp"] * found["ep"]) == 0).all() and (found["gpus"] <= 4).all()
    assert {"none", "k=2"} <= set(found["speculation"]) and {"whole", "chunk 32"} <= set(found["prefill"])
    x, y = found["tokens_per_s_per_user"].to_numpy(), found["tokens_per_s_per_gpu"].to_numpy()
    _check_frontier(x, y, found["on_frontier"].to_numpy())
    assert result.pareto.height == int(found["on_frontier"].sum())
    assert result.reason is None and result.best.height == result.best["hardware"].n_unique() * 5


def test_the_best_under_the_sla_is_the_fastest_that_meets_it():
    result = rooflax.frontier(**TOY, ttft=1e-3, tpot=4e-4)
    rows = result.configurations
    meets = rows.filter((pl.col("ttft_s") <= 1e-3) & (pl.col("tpot_s") <= 4e-4))
    assert 0 < meets.height < rows.height
    assert result.best["tokens_per_s_per_gpu"][0] == meets["tokens_per_s_per_gpu"].max()
    assert (result.best["tpot_s"] <= 4e-4).all()
    text = frontier_table(result).text()
    assert text.splitlines()[0] == "most tokens/s per GPU under TTFT ≤ 1 ms and TPOT ≤ 0.4 ms (achieved)"
    ideal = rooflax.frontier(**TOY, ttft=1e-3, tpot=4e-4, ideal=True)
    assert ideal.rank == "ideal_tokens_per_s_per_gpu" and (ideal.best["ideal_tpot_s"] <= 4e-4).all()


def test_an_sla_nothing_meets_is_an_empty_table_and_a_reason():
    result = rooflax.frontier(**TOY, ttft=1e-9, tpot=1e-9)
    assert result.best.height == 0 and result.configurations.height > 0
    assert result.reason is not None and "\n" not in result.reason
    assert result.reason.startswith("no configuration meets TTFT ≤ 1e-06 ms (the lowest is ")
    table = frontier_table(result)
    assert table.rows == ()


def test_a_one_kind_mix_is_fixed_lengths_bit_for_bit():
    search = dict(model="toy-llama", hardware="h100-sxm", gpus=4, batch=[1, 4, 16], chunk=[None, 32])
    fixed = rooflax.frontier(**search, isl=64, osl=17, disaggregated=True, ttft=1e-3)
    mix = rooflax.frontier(**search, requests=[(64, 17, 1.0)], disaggregated=True, ttft=1e-3)
    for name in ("configurations", "pareto", "best"):
        assert getattr(fixed, name).equals(getattr(mix, name)), name
    assert frontier_table(fixed).text() == frontier_table(mix).text()


def test_every_request_of_a_mix_must_meet_the_ttft_bound():
    # 9 in 10 requests are short: the mean TTFT is far below the long prompts' (ttft_max_s)
    search = dict(
        model="toy-llama", hardware="h100-sxm", gpus=2, batch=[1, 4], requests=[(64, 16, 0.9), (2048, 16, 0.1)]
    )
    free = rooflax.frontier(**search).configurations
    bound = float(free["ttft_max_s"].min()) * 0.99  # below every configuration's longest prompt
    assert (free["ttft_s"] <= bound).any()  # though some configurations' mean meets it
    result = rooflax.frontier(**search, ttft=bound)
    assert result.best.height == 0 and not result.configurations["meets_sla"].any()
    assert result.reason is not None and result.reason.startswith(f"no configuration meets TTFT ≤ {bound * 1e3:g} ms")
    # a bound between the longest prompts' TTFTs keeps exactly the configurations whose longest meet it
    middle = float(free["ttft_max_s"].median())
    rows = rooflax.frontier(**search, ttft=middle).configurations
    assert rows["meets_sla"].equals((rows["ttft_max_s"] <= middle).alias("meets_sla"))
    header = frontier_table(rooflax.frontier(**search, ttft=middle)).text().splitlines()[1].split()
    assert header[7:9] == ["ttft_ms", "ttft_max_ms"]


@pytest.mark.parametrize(
    ("options", "fragments"),
    [
        ({"osl": 0}, ("osl", "0")),
        ({"ttft": 0.0}, ("ttft", "0.0")),
        ({"tpot": -1.0}, ("tpot", "-1.0")),
        ({"gpus": 0}, ("gpus", "0")),
        ({"tp": [2]}, ("tp", "searches every layout")),
        ({"chunk": []}, ("chunk", "[]")),
    ],
)
def test_bad_input_is_one_line(options, fragments):
    one_line_error(lambda: rooflax.frontier(**{**TOY, **options}), *fragments)


def test_a_budget_no_layout_holds_the_model_on_is_one_line():
    small = dataclasses.replace(rooflax.get_hardware("h100-sxm"), name="h100-tiny", memory_bytes=4e6)
    # toy-llama's 3.67 M fp16 parameters take 7.3 MB: split in 2 they fit, whole on 1 device they do not
    one_line_error(
        lambda: rooflax.frontier(**{**TOY, "hardware": small, "gpus": 1}),
        "gpus: on 1 × h100-tiny, no layout of toy-llama dividing 1 (sizes 1)",
        "has no memory left after its weights",
    )
    assert rooflax.frontier(**{**TOY, "hardware": small, "gpus": 2}).configurations.height > 0


CLI = ["frontier", "--model", "toy-llama", "--hardware", "h100-sxm", "--isl", "64", "--osl", "17", "--gpus", "4"]
CLI += ["--concurrency", "1,4,16,64"]


def test_cli_prints_the_best_under_the_sla_and_writes_the_table_and_chart(tmp_path, capsys):
    from rooflax.cli import main

    table, chart = tmp_path / "frontier.csv", tmp_path / "frontier.png"
    code = main([*CLI, "--tpot-ms", "0.4", "--gpu-hour-usd", "2.5", "-o", str(table), "--plot", str(chart)])
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert (
        out[0]
        .split(" configurations on 4 GPUs, ")[1]
        .endswith("on the frontier (tokens/s per GPU against tokens/s per user)")
    )
    assert out[1] == "most tokens/s per GPU under TPOT ≤ 0.4 ms (achieved)"
    assert out[2].split() == [
        "hardware", "dtype", "layout", "gpus", "conc", "spec", "prefill", "ttft_ms", "tpot_ms", "tok/s/user",
        "tok/s/gpu", "kv_%", "J/tok", "$/Mtok",
    ]  # fmt: skip
    assert len(out) == 3 + 5 + 2  # five best, then the two files written
    written = pl.read_csv(table)
    assert {"on_frontier", "meets_sla", "usd_per_million_tokens", "layout"} <= set(written.columns)
    assert chart.stat().st_size > 0


def test_cli_prices_each_accelerator(tmp_path):
    from rooflax.cli import main

    # 3.6 and 7.2 USD an hour: a million tokens at t tokens/s per GPU cost 1000 / t and 2000 / t USD
    table = tmp_path / "frontier.csv"
    flags = ["--hardware", "h100-sxm,h200", "--gpu-hour-usd", "h200=7.2, h100-sxm=3.6", "-o", str(table), "--quiet"]
    assert main([*CLI, *flags]) == 0
    written = pl.read_csv(table)
    for hardware, usd_seconds in (("h100-sxm", 1000.0), ("h200", 2000.0)):
        rows = written.filter(hardware=hardware)
        assert rows.height > 0
        spent = rows["usd_per_million_tokens"] * rows["tokens_per_s_per_gpu"]
        assert ((spent - usd_seconds).abs() / usd_seconds).max() < 1e-12


def test_cli_an_sla_nothing_meets_prints_the_reason(capsys):
    from rooflax.cli import main

    assert main([*CLI, "--ttft-ms", "1e-6"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1].startswith("no configuration meets TTFT ≤ 1e-06 ms (the lowest is ")
    assert len(out) == 4  # the count, the title, the header, the reason


@pytest.mark.parametrize(
    ("flags", "fragment"),
    [
        (["--osl", "0"], "osl: expected an integer ≥ 2"),
        (["--ttft-ms", "0"], "--ttft-ms: expected a positive finite number, got 0.0"),
        (["--gpus", "0"], "gpus: expected a positive integer"),
        (["--chunk", "half"], "--chunk: expected 'whole' or prompt tokens per step"),
        (["--kv-link", "-3"], "--kv-link: expected a positive finite number, got -3.0"),
        (["--mtp"], "mtp: toy-llama has no multi-token prediction module (mtp_layers 0)"),
        (["--gpu-hour-usd", "cheap"], "--gpu-hour-usd: expected USD or HARDWARE=USD,HARDWARE=USD, got 'cheap'"),
        (["--gpu-hour-usd", "h100-sxm=2,3"], "--gpu-hour-usd: expected USD or HARDWARE=USD"),
        (["--gpu-hour-usd", "h100-sxm=x"], "--gpu-hour-usd: expected USD or HARDWARE=USD"),
        (["--gpu-hour-usd", "h100-sxm=-1"], "--gpu-hour-usd h100-sxm: expected a positive finite number, got -1.0"),
        (["--gpu-hour-usd", "h100-sxm=1,h100-sxm=2"], "--gpu-hour-usd: h100-sxm is priced twice"),
        (["--gpu-hour-usd", "h100=2"], "gpu_hour_usd: 'h100' is not an accelerator served here; did you mean"),
        (["--hardware", "h100-sxm,h200", "--gpu-hour-usd", "h200=2"], "gpu_hour_usd: no price for h100-sxm"),
        (["--requests", "64:17:1"], "--requests: give --isl and --osl or --requests, not both"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(flags, fragment, capsys):
    from rooflax.cli import main

    assert main([*CLI, *flags]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and fragment in err, err


def test_the_chart_draws_a_curve_per_accelerator_and_the_sla():
    from rooflax.plot import frontier_chart

    result = rooflax.frontier(**{**TOY, "hardware": ["h100-sxm", "a100-80gb-sxm"]}, tpot=4e-4, ttft=1e-3)
    fig = frontier_chart(result)
    (ax,) = fig.axes
    assert (ax.get_xscale(), ax.get_yscale()) == ("log", "log")
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels == ["a100-80gb-sxm frontier", "h100-sxm frontier", "TPOT ≤ 0.4 ms"]  # presets' order
    assert ax.get_lines()[-1].get_xdata()[0] == pytest.approx(1 / 4e-4)
    on = result.pareto.filter(hardware="h100-sxm")
    assert list(ax.get_lines()[1].get_xdata()) == on["tokens_per_s_per_user"].to_list()
    labelled = [part for text in ax.texts for part in text.get_text().split(" / ")]
    assert sorted(labelled) == sorted(f"{r['layout']} c{r['concurrency']}" for r in result.pareto.iter_rows(named=True))
    by_strategy = frontier_chart(result, by="speculation")
    assert by_strategy.axes[0].get_lines()[0].get_label() == "none frontier"


def test_points_that_fall_together_share_one_label():
    # a round of no drafts is plain decode: the k=0 curve lies on the none curve, point for point
    from rooflax.plot import frontier_chart

    result = rooflax.frontier(**TOY, k=[0])
    ax = frontier_chart(result, by="speculation").axes[0]
    none = result.configurations.filter(speculation="none")
    front = pareto_mask(none["tokens_per_s_per_user"].to_numpy(), none["tokens_per_s_per_gpu"].to_numpy())
    parts = [text.get_text().split(" / ") for text in ax.texts]
    assert sum(map(len, parts)) == 2 * int(front.sum())
    for shared in parts:  # each place names a configuration and its k=0 twin, once each
        plain = [p for p in shared if not p.endswith(" k=0")]
        assert sorted(shared) == sorted([*plain, *(f"{p} k=0" for p in plain)]), shared


MIXED = ["frontier", "--model", "toy-llama", "--hardware", "h100-sxm", "--gpus", "2", "--concurrency", "1,4"]


@pytest.mark.parametrize(
    ("flags", "fragment"),
    [
        (["--requests", "64:17"], "--requests: expected comma-separated isl:osl:share kinds"),
        (["--requests", "64:17:half"], "--requests: expected comma-separated isl:osl:share kinds"),
        (["--requests", "64:17:0.5,256:9:0.4"], "requests: the shares sum to 0.9"),
        (["--requests", "64:1:1"], "requests[0] osl: expected an integer ≥ 2"),
        (["--isl", "64"], "--isl: give --isl and --osl (fixed requests) or --requests (a mix)"),
    ],
)
def test_cli_a_bad_mix_is_one_line_and_exit_2(flags, fragment, capsys):
    from rooflax.cli import main

    assert main([*MIXED, *flags]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and fragment in err, err


def test_cli_serves_a_mix(tmp_path, capsys):
    from rooflax.cli import main

    assert main([*MIXED, "--requests", "64:16:0.75,256:8:0.25", "--plot", str(tmp_path / "mix.png")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[2].split()[7:9] == ["ttft_ms", "ttft_max_ms"]
    assert (tmp_path / "mix.png").stat().st_size > 0


def test_the_chart_of_a_mix_names_its_kinds():
    from rooflax.plot import frontier_chart

    result = rooflax.frontier(
        model="toy-llama", hardware="h100-sxm", gpus=2, batch=[1, 4], requests=[(64, 16, 0.75), (256, 8, 0.25)]
    )
    title = frontier_chart(result).axes[0].get_title()
    assert title == "Serving toy-llama on 2 GPUs: a mix: 75% 64 in / 16 out, 25% 256 in / 8 out"


def test_the_chart_of_a_mix_marks_the_configurations_whose_longest_prompt_misses_ttft():
    from matplotlib.collections import PathCollection

    from rooflax.plot import frontier_chart

    mix = [(64, 16, 0.75), (256, 8, 0.25)]
    free = rooflax.frontier(model="toy-llama", hardware="h100-sxm", gpus=2, batch=[1, 4], requests=mix)
    found = free.configurations
    # a bound that the means and the longest prompts split differently (the chart must follow the longest)
    bound = next(
        b
        for b in sorted({*found["ttft_s"].to_list(), *found["ttft_max_s"].to_list()})
        if (found["ttft_max_s"] > b).sum() != (found["ttft_s"] > b).sum()
    )
    result = rooflax.frontier(model="toy-llama", hardware="h100-sxm", gpus=2, batch=[1, 4], requests=mix, ttft=bound)
    ax = frontier_chart(result).axes[0]
    hollow = [c for c in ax.collections if isinstance(c, PathCollection) and len(c.get_facecolors()) == 0]
    missing = sum(len(c.get_offsets()) for c in hollow if len(c.get_offsets()))
    assert missing == (found["ttft_max_s"] > bound).sum() > 0
