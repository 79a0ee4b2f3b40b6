"""Speculative decoding: trees, drafters, acceptance, speculate and best_k, against hand-derived values."""

from __future__ import annotations

import itertools

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from one_line import one_line_error

import rooflax
from rooflax.cli.commands import main
from rooflax.cost.trees import medusa_tree, tree_pairs

A40_PEAK, A40_BW = 149.7e12, 696e9


def _row(df: pl.DataFrame, **where) -> dict:
    rows = df.filter(**where).to_dicts()
    assert len(rows) == 1, rows
    return rows[0]


# --- trees -----------------------------------------------------------------------------------------------------


def test_medusa_tree_levels_are_cartesian_products():
    # root, 3 first-head choices, 3·2 second-head choices
    assert medusa_tree([3, 2]) == (1, 2, 2, 2, 3, 3, 3, 3, 3, 3)
    assert tree_pairs(medusa_tree([3, 2])) == 1 + 3 * 2 + 6 * 3


@pytest.mark.slow
def test_chain_tree_is_exactly_the_causal_verify():
    keys = {"phases": ["verify"], "spec_k": [1, 5, 16], "batch": [1, 8], "seq_len": [16, 1000]}
    tree = rooflax.sweep(tree="chain", **keys)
    assert tree.equals(rooflax.sweep(causal=True, **keys))
    assert not tree.equals(rooflax.sweep(**keys))  # dense verify counts more scores


def test_tree_mask_keeps_the_prefix_and_the_ancestors():
    depths = [1, 2, 2, 3, 3, 3, 3]
    df = rooflax.sweep(phases=["verify"], batch=[2], seq_len=[100], tree=[{"depths": depths}])
    assert df["spec_k"].unique().to_list() == [7]
    pairs = 7 * (100 - 7) + (1 + 2 + 2 + 3 * 4)  # prefix for every candidate, then ancestors and itself
    heads, head_dim = 40, 128  # llama-13b
    assert _row(df, op="qk")["flops"] == 2 * 2 * heads * pairs * head_dim
    assert _row(df, op="softmax")["flops"] == 5 * 2 * heads * pairs


# --- acceptance and speedup -------------------------------------------------------------------------------------


def test_geometric_four_drafts_yield_3_3616_tokens():
    df = rooflax.speculate(batch=[1], seq_len=[512], k=[4], acceptance={"kind": "geometric", "alpha": 0.8})
    assert df["tokens_per_round"].item() == pytest.approx(1 + 0.8 + 0.64 + 0.512 + 0.4096, rel=1e-12)
    assert df["candidates"].item() == 5


@pytest.mark.parametrize(
    "drafter", [{}, {"draft_model": "llama-7b"}, {"medusa_heads": 4}, {"medusa_heads": 4, "shared_lm_head": True}]
)
def test_no_drafts_is_plain_decode_exactly(drafter):
    df = rooflax.speculate(batch=[1, 3, 64], seq_len=[100, 2048], k=[0, 2], **drafter)
    zero = df.filter(draft_k=0)
    assert zero.height == 6
    assert zero["speedup"].to_list() == [1.0] * 6
    assert zero["achieved_speedup"].to_list() == [1.0] * 6
    assert zero["tokens_per_round"].to_list() == [1.0] * 6


@pytest.mark.slow
@pytest.mark.parametrize(
    ("target", "layouts"),
    [
        ({"model": "llama-2-70b", "tp": [1, 2], "pp": [1, 2]}, [(t, p, 1) for t in (1, 2) for p in (1, 2)]),
        ({"model": "mixtral-8x7b", "ep": [1, 2]}, [(1, 1, 1), (1, 1, 2)]),
    ],
)
def test_each_layout_is_its_own_cell(target, layouts):
    """Plain decode and verify of one layout are compared with each other only, never across layouts."""
    k = 2
    df = rooflax.speculate(
        hardware="h100-sxm",
        batch=[1, 2],
        seq_len=[128],
        k=[0, k],
        draft_model="llama-7b" if target["model"] == "llama-2-70b" else None,
        **target,
    )
    assert df.height == len(layouts) * 2 * 2  # layouts × batches × draft lengths
    assert df.filter(draft_k=0)["speedup"].to_list() == [1.0] * len(layouts) * 2
    assert df.filter(draft_k=0)["achieved_speedup"].to_list() == [1.0] * len(layouts) * 2
    step = rooflax.evaluate(model="llama-7b", hardware="h100-sxm", batch=2, seq_len=128).time_s
    for tp, pp, ep in layouts:
        where = {
            "model": target["model"],
            "hardware": "h100-sxm",
            "batch": 2,
            "seq_len": 128,
            "tp": tp,
            "pp": pp,
            "ep": ep,
        }
        decode = rooflax.evaluate(phase="decode", **where).time_s
        verify = rooflax.evaluate(phase="verify", spec_k=k + 1, causal=True, **where).time_s
        draft = k * step if target["model"] == "llama-2-70b" else 0.0  # a draft model runs on one device
        row = _row(df, draft_k=k, batch=2, tp=tp, pp=pp, ep=ep)
        assert row["decode_time_s"] == pytest.approx(decode, rel=1e-9)
        assert row["round_time_s"] == pytest.approx(draft + verify, rel=1e-9)
        assert row["speedup"] == pytest.approx((1 + 0.8 + 0.64) * decode / (draft + verify), rel=1e-9)
    assert rooflax.best_k(df).height == len(layouts) * 2


def test_alpha_zero_yields_one_token_and_no_speedup():
    df = rooflax.speculate(
        batch=[1, 64], seq_len=[1024], k=[0, 1, 4, 8], medusa_heads=8, acceptance={"kind": "geometric", "alpha": 0.0}
    )
    assert df["tokens_per_round"].to_list() == [1.0] * df.height
    assert (df["speedup"] <= 1).all() and (df["achieved_speedup"] <= 1).all()
    assert (df.filter(pl.col("draft_k") > 0)["speedup"] < 1).all()


def test_draft_model_row_by_hand():
    """Draft: K decode steps of llama-7b at seq_len S; verify: a causal step of K+1 tokens; decode: one step."""
    b, s, k = 4, 1024, 3
    df = rooflax.speculate(
        model="llama-13b",
        batch=[b],
        seq_len=[s],
        k=[k],
        draft_model="llama-7b",
        acceptance={"kind": "geometric", "alpha": 0.6},
    )
    row = df.row(0, named=True)
    step = rooflax.evaluate(model="llama-7b", phase="decode", batch=b, seq_len=s)
    verify = rooflax.evaluate(model="llama-13b", phase="verify", batch=b, seq_len=s, spec_k=k + 1, causal=True)
    decode = rooflax.evaluate(model="llama-13b", phase="decode", batch=b, seq_len=s)
    tokens = 1 + 0.6 + 0.36 + 0.216
    for prefix, key in (("", "time_s"), ("achieved_", "achieved_time_s")):
        round_s = k * getattr(step, key) + getattr(verify, key)
        assert row[f"{prefix}draft_time_s"] == pytest.approx(k * getattr(step, key), rel=1e-9)
        assert row[f"{prefix}round_time_s"] == pytest.approx(round_s, rel=1e-9)
        assert row[f"{prefix}effective_tokens_per_s"] == pytest.approx(b * tokens / round_s, rel=1e-9)
        assert row[f"{prefix}speedup"] == pytest.approx(tokens * getattr(decode, key) / round_s, rel=1e-9)


def test_draft_model_from_a_path(tmp_path):
    """draft_model is typed str | Path | Model: a pathlib.Path to a model file drafts as its name as text does."""
    path = tmp_path / "draft.toml"
    path.write_text('name = "draft-7b"\nhidden = 4096\nlayers = 32\nheads = 32\nintermediate = 11008\nvocab = 32000\n')
    cell = dict(batch=[1], seq_len=[512], k=[0, 2])
    by_text = rooflax.speculate(draft_model=str(path), **cell)
    assert rooflax.speculate(draft_model=path, **cell).equals(by_text) and by_text.height == 2


@pytest.mark.parametrize("shared", [False, True])
def test_medusa_heads_by_hand(shared):
    """Three heads on llama-13b (h 5120, V 32000), fp16, batch 2, each op at the A40's roof."""
    b, h, v, n = 2, 5120, 32000, 3
    ops = [
        (2 * n * b * h * h, n * (2 * h * h + 2 * b * h + 2 * b * h)),  # residual block's linear
        (4 * n * b * h, 2 * 2 * n * b * h),  # SiLU
        (n * b * h, 3 * 2 * n * b * h),  # residual add
        (2 * n * b * h * v, (1 if shared else n) * 2 * h * v + n * (2 * b * h + 2 * b * v)),  # LM heads
    ]
    expected = sum(max(f / A40_PEAK, by / A40_BW) for f, by in ops)
    df = rooflax.speculate(batch=[b], seq_len=[1024], k=[n], medusa_heads=5, shared_lm_head=shared)
    assert df["draft_time_s"].item() == pytest.approx(expected, rel=1e-12)
    assert df["achieved_draft_time_s"].item() > expected


def test_medusa_tree_rounds_use_one_head_per_level():
    df = rooflax.speculate(
        batch=[1],
        seq_len=[1024],
        medusa_heads=2,
        tree=[{"top_k": [4, 2]}, {"depths": [1]}],
        acceptance={"kind": "table", "by": "candidates", "candidates": [13], "tokens_per_round": [2.5]},
    )
    assert df["candidates"].to_list() == [1, 13]
    assert df["draft_k"].to_list() == [0, 2]
    assert df["tokens_per_round"].to_list() == [1.0, 2.5]
    one_line_error(
        lambda: rooflax.speculate(batch=[1], seq_len=[1024], medusa_heads=1, tree=[{"top_k": [4, 2]}]),
        "medusa_heads",
        "2",
    )


def test_table_acceptance_interpolates_linearly_and_never_extrapolates():
    table = {"kind": "table", "by": "k", "k": [2, 4], "tokens_per_round": [2.0, 3.0]}
    df = rooflax.speculate(batch=[1], seq_len=[512], k=[0, 1, 2, 3, 4], acceptance=table)
    assert df["tokens_per_round"].to_list() == [1.0, 1.5, 2.0, 2.5, 3.0]
    one_line_error(lambda: rooflax.speculate(batch=[1], seq_len=[512], k=[5], acceptance=table), "acceptance", "5")


def test_best_k_picks_the_fastest_round_of_each_cell():
    df = rooflax.speculate(
        model="llama-33b",
        hardware="a100-80gb-pcie",
        batch=[1, 16, 128],
        seq_len=[512, 4096],
        k=[0, 1, 2, 4, 8],
        draft_model="llama-7b",
    )
    best = rooflax.best_k(df)
    assert best.height == 6
    for cell in best.iter_rows(named=True):
        rows = df.filter(batch=cell["batch"], seq_len=cell["seq_len"])
        assert cell["effective_tokens_per_s"] == rows["effective_tokens_per_s"].max()
    achieved = rooflax.best_k(df, achieved=True)
    for cell in achieved.iter_rows(named=True):
        rows = df.filter(batch=cell["batch"], seq_len=cell["seq_len"])
        assert cell["achieved_effective_tokens_per_s"] == rows["achieved_effective_tokens_per_s"].max()


@pytest.mark.slow
@settings(max_examples=15, deadline=None)
@given(
    alpha=st.floats(0, 0.99),
    more=st.floats(0, 0.99),
    batch=st.sampled_from([1, 7, 32, 200]),
    seq_len=st.sampled_from([64, 999, 8192]),
)
def test_speedup_is_monotone_in_alpha_and_below_tokens_per_round(alpha, more, batch, seq_len):
    low, high = sorted((alpha, more))
    keys = {"batch": [batch], "seq_len": [seq_len], "k": [0, 1, 3, 6], "medusa_heads": 6}
    a = rooflax.speculate(acceptance={"kind": "geometric", "alpha": low}, **keys)
    b = rooflax.speculate(acceptance={"kind": "geometric", "alpha": high}, **keys)
    for df in (a, b):
        assert (df["speedup"] <= df["tokens_per_round"] * (1 + 1e-12)).all()
        assert (df["achieved_speedup"] <= df["tokens_per_round"] * (1 + 1e-12)).all()
    assert (b["tokens_per_round"] >= a["tokens_per_round"]).all()
    assert (b["speedup"] >= a["speedup"]).all()
    assert (b["achieved_effective_tokens_per_s"] >= a["achieved_effective_tokens_per_s"]).all()


# --- bad input --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("alpha", [-0.1, 1.0, 1.5])
def test_alpha_outside_unit_interval(alpha):
    one_line_error(
        lambda: rooflax.speculate(batch=[1], seq_len=[512], acceptance={"kind": "geometric", "alpha": alpha}),
        "acceptance.alpha",
        repr(alpha),
        "[0, 1)",
    )


def test_shared_lm_head_needs_medusa_heads():
    one_line_error(
        lambda: rooflax.speculate(batch=[1], seq_len=[512], shared_lm_head=True), "shared_lm_head", "medusa_heads"
    )
    one_line_error(
        lambda: rooflax.speculate(batch=[1], seq_len=[512], shared_lm_head=True, draft_model="llama-7b"),
        "shared_lm_head",
        "medusa_heads",
    )


def test_draft_model_of_another_vocabulary():
    one_line_error(
        lambda: rooflax.speculate(model="llama-7b", batch=[1], seq_len=[512], draft_model="llama-3-8b"),
        "draft_model",
        "128256",
        "32000",
    )


@pytest.mark.parametrize(
    ("options", "fragments"),
    [
        ({"tree": [{"depths": []}]}, ("tree[0].depths",)),
        ({"tree": [{"depths": [1, 3]}]}, ("tree[0].depths[1]", "parent")),
        (
            {"acceptance": {"kind": "table", "by": "candidates", "candidates": [0], "tokens_per_round": [1]}},
            ("acceptance.candidates[0]", "≥ 1"),
        ),
        ({"k": [-1]}, ("k[0]",)),
    ],
)
def test_fewer_than_one_candidate(options, fragments):
    one_line_error(lambda: rooflax.speculate(batch=[1], seq_len=[512], **options), *fragments)


def test_spec_tree_must_match_spec_k():
    one_line_error(
        lambda: rooflax.sweep(phases=["verify"], batch=[1], seq_len=[512], spec_k=[4], tree=[{"top_k": [2]}]),
        "tree",
        "[3]",
        "[4]",
    )
    one_line_error(lambda: rooflax.sweep(batch=[1], seq_len=[512], tree="chain"), "tree", "verify")


# --- CLI --------------------------------------------------------------------------------------------------------


def test_cli_speculate_and_best_k(capsys):
    assert main(["speculate", "--batch", "1,8", "--seq-len", "1024", "--k", "0,4", "--alpha", "0.8"]) == 0
    out = capsys.readouterr().out
    assert "3.3616" in out and out.count("| llama-13b") == 4
    assert main(["best-k", "--batch", "1,8", "--seq-len", "1024", "--k", "0,4", "--medusa-heads", "4"]) == 0
    assert capsys.readouterr().out.count("| llama-13b") == 2


def test_cli_bad_input_is_one_line(capsys):
    assert main(["speculate", "--batch", "1", "--seq-len", "1024", "--alpha", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: acceptance.alpha") and err.count("\n") == 1


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["speculate", "--shared-lm-head"], "shared_lm_head"),
        (["best-k", "--shared-lm-head", "--draft-model", "llama-7b"], "shared_lm_head"),
        (["best-k", "--overwrite"], "--overwrite"),
    ],
)
def test_cli_refuses_options_that_do_nothing(capsys, args, field):
    assert main([*args, "--batch", "1", "--seq-len", "512", "--k", "0,1"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith(f"error: {field}") and err.count("\n") == 1


@pytest.mark.slow
def test_cli_table_tells_every_cell_apart(tmp_path, capsys):
    spec = tmp_path / "layouts.toml"
    spec.write_text(
        'model = "llama-2-70b"\nhardware = "h100-sxm"\ndtype = ["fp16", "fp8"]\n'
        "[axes]\nbatch = [1]\nseq_len = [128]\nhidden = [4096, 8192]\ntp = [1, 2]\npp = [1, 2]\n"
    )
    assert main(["speculate", str(spec), "--k", "0"]) == 0
    header, *lines = capsys.readouterr().out.splitlines()
    lines = [line for line in lines if line.startswith("| llama-2-70b")]
    assert len(lines) == 2 * 2 * 2 * 2  # dtypes × widths × tp × pp
    assert len(set(lines)) == len(lines)
    for column in ("dtype", "hidden", "tp", "pp"):
        assert f"| {column} " in header
    assert "| ep " not in header


# --- regime map -------------------------------------------------------------------------------------------------


def test_speculation_map_shows_speedup_and_best_k_per_cell():
    best = rooflax.best_k(batch=[1, 64], seq_len=[256, 2048], k=[0, 1, 4], medusa_heads=4)
    fig = rooflax.plot.speculation_map(best)
    left, right = fig.axes[:2]  # then their colour bars
    assert [t.get_text() for t in left.get_xticklabels()] == ["1", "64"]
    assert [t.get_text() for t in left.get_yticklabels()] == ["256", "2048"]
    by_cell = {(r["batch"], r["seq_len"]): r for r in best.iter_rows(named=True)}
    shown = {t.get_position(): t.get_text() for t in left.texts}
    ks = {t.get_position(): t.get_text() for t in right.texts}
    for (i, b), (j, s) in itertools.product(enumerate([1, 64]), enumerate([256, 2048])):
        assert shown[(i, j)] == f"{by_cell[(b, s)]['speedup']:.2f}"
        assert ks[(i, j)] == str(by_cell[(b, s)]["draft_k"])
    one_line_error(
        lambda: rooflax.plot.speculation_map(rooflax.speculate(batch=[1], seq_len=[256], k=[0, 1])),
        "speculation map",
        "best_k",
    )


def test_cli_best_k_plot(tmp_path, capsys):
    chart = tmp_path / "map.png"
    args = ["best-k", "--batch", "1,8", "--seq-len", "256,512", "--k", "0,2", "--plot", str(chart)]
    assert main(args) == 0
    assert chart.stat().st_size > 0 and f"wrote {chart}" in capsys.readouterr().out
    assert main(args) == 2  # never silently replaced
    assert "--overwrite" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flags", "column"),
    [
        (["--hardware", "a40,a100-80gb-pcie"], "hardware"),
        (["--model", "llama-7b,llama-13b"], "model"),
        (["--hidden", "2048,4096"], "hidden"),
    ],
)
def test_cli_best_k_plot_of_several_maps_is_refused_first(tmp_path, capsys, flags, column):
    chart = tmp_path / "map.png"
    assert main(["best-k", "--batch", "1,8", "--seq-len", "256", "--k", "0,2", *flags, "--plot", str(chart)]) == 2
    out, err = capsys.readouterr()
    assert out == ""  # refused before the table is computed
    assert err.startswith(f"error: --plot: the speculation map draws one {column}") and err.count("\n") == 1
    assert not chart.exists()


def test_cli_best_k_plot_of_several_layouts_is_refused_first(tmp_path, capsys):
    spec = tmp_path / "tp.toml"
    spec.write_text('model = "llama-2-70b"\nhardware = "h100-sxm"\n[axes]\nbatch = [1]\nseq_len = [128]\ntp = [1, 2]\n')
    assert main(["best-k", str(spec), "--k", "0,1", "--plot", str(tmp_path / "map.png")]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "one tp" in err and err.count("\n") == 1


def test_speculation_map_refuses_several_layouts():
    best = rooflax.best_k(model="llama-2-70b", hardware="h100-sxm", batch=[1], seq_len=[128], tp=[1, 2], k=[0, 1])
    with pytest.raises(rooflax.SpecError, match=r"^speculation map: the frame holds several tp values; select one$"):
        rooflax.plot.speculation_map(best)


def test_memory_adds_the_drafters_weights_to_the_verify_step():
    cell = {"model": "llama-33b", "hardware": "a100-80gb-pcie", "batch": [1], "seq_len": [8192], "k": [0, 2]}
    verify = (
        rooflax.sweep(
            model="llama-33b",
            hardware="a100-80gb-pcie",
            batch=[1],
            seq_len=[8192],
            phases=["verify"],
            spec_k=[1, 3],
            tree="chain",
            summary=True,
        )
        .sort("spec_k")["memory_bytes"]
        .to_list()
    )
    external = rooflax.speculate(**cell)
    assert external["memory_bytes"].to_list() == verify  # nothing beside the target
    assert external["fits_in_memory"].to_list() == [v <= 80e9 for v in verify] == [True, True]
    h, vocab = 6656, 32000  # Llama-33B; four heads, each a block h·h and an LM head h·V, fp16
    heads = rooflax.speculate(medusa_heads=4, **cell)
    assert (heads["memory_bytes"] - external["memory_bytes"]).to_list() == pytest.approx([4 * 2 * h * (h + vocab)] * 2)
    shared = rooflax.speculate(medusa_heads=4, shared_lm_head=True, **cell)
    assert (shared["memory_bytes"] - external["memory_bytes"]).to_list() == pytest.approx([4 * 2 * h * h] * 2)
    draft = rooflax.sweep(
        model="llama-7b", hardware="a100-80gb-pcie", batch=[1], seq_len=[8192], phases=["decode"], summary=True
    )["memory_bytes"].item()
    drafted = rooflax.speculate(draft_model="llama-7b", **cell)
    assert (drafted["memory_bytes"] - external["memory_bytes"]).to_list() == pytest.approx([draft] * 2)
    assert not drafted["fits_in_memory"].any()  # 33B + its 8k cache + 7B do not fit in 80 GB


def test_best_k_can_keep_only_rounds_that_fit():
    df = rooflax.speculate(
        model="llama-13b", hardware="a40", batch=[1, 2], seq_len=[2048, 8192], k=[0, 2], draft_model="llama-7b"
    )
    assert 0 < df["fits_in_memory"].sum() < df.height
    kept = rooflax.best_k(df, fits=True)
    fitting = df.filter("fits_in_memory").select("batch", "seq_len").unique()
    assert kept.select("batch", "seq_len").sort("batch", "seq_len").equals(fitting.sort("batch", "seq_len"))
    assert kept["fits_in_memory"].all() and rooflax.best_k(df).height == 4
    assert (
        main(
            [
                "best-k",
                "--model",
                "llama-13b",
                "--hardware",
                "a40",
                "--batch",
                "1,2",
                "--seq-len",
                "2048,8192",
                "--k",
                "0,2",
                "--draft-model",
                "llama-7b",
                "--fits",
            ]
        )
        == 0
    )


# --- defaults that match the drafter, and a note on each ---------------------------------------------------------


def test_medusa_heads_default_to_their_models_acceptance_and_at_most_one_draft_per_head():
    from rooflax.config.acceptance import MEDUSA_HEADS

    cell = {"model": "llama-33b", "hardware": "a100-80gb-pcie", "batch": [1], "seq_len": [1024]}
    df = rooflax.speculate(medusa_heads=3, **cell)
    assert df["draft_k"].to_list() == [0, 1, 2, 3]  # 0..8 capped by 3 heads
    top1 = [head[0] for head in MEDUSA_HEADS["vicuna-33b"]]  # the heads trained on Vicuna-33B (LLaMA-33B)
    chain = [1 + sum(itertools.accumulate(top1[:k], lambda a, b: a * b)) for k in range(4)]
    assert df["tokens_per_round"].to_list() == pytest.approx(chain)
    geometric = rooflax.speculate(medusa_heads=3, acceptance={"kind": "geometric", "alpha": 0.8}, **cell)
    assert geometric["draft_k"].to_list() == [0, 1, 2, 3]
    assert rooflax.speculate(draft_model="llama-7b", **cell)["draft_k"].to_list() == list(range(9))


def test_choices_say_what_was_chosen():
    from rooflax.answers.speculate import choices

    reference = rooflax.default_spec()
    chosen = choices(model="llama-33b", medusa_heads=5)
    assert (chosen.spec.batch, chosen.spec.seq_len) == (reference.batch, reference.seq_len)
    assert chosen.k == (0, 1, 2, 3, 4, 5) and chosen.acceptance.heads == "vicuna-33b"
    notes = " | ".join(chosen.notes)
    for fragment in (
        f"batch {reference.batch[0]}..{reference.batch[-1]}",
        "the reference sweep's",
        "acceptance medusa-vicuna-33b",
        "k 0..5",
        "one draft per head (5 heads)",
    ):
        assert fragment in notes, notes
    other = choices(model="llama-2-70b", medusa_heads=2, batch=[1], seq_len=[64])
    assert other.acceptance.heads == "vicuna-33b" and "nearest in size to llama-2-70b" in " ".join(other.notes)
    given = choices(batch=[1], seq_len=[64], k=[1, 2], acceptance={"kind": "geometric", "alpha": 0.5})
    assert given.k == (1, 2) and given.notes == (
        "model llama-13b: the reference sweep's (no spec or model given)",
        "hardware a40: the reference sweep's (no spec or hardware given)",
        "dtype fp16: the reference sweep's (no spec or dtype given)",
    )
    assert choices(rooflax.default_spec(), k=[1], acceptance={"kind": "geometric", "alpha": 0.5}).notes == ()
    one_line_error(
        lambda: choices(model=["llama-7b", "llama-33b"], medusa_heads=2, batch=[1], seq_len=[64]),
        "acceptance: the sweep's models llama-7b, llama-33b take different Medusa presets",
    )


def test_cli_best_k_asks_nothing_it_can_default(capsys):
    """The question as a new user asks it: no grid, no K, no acceptance; each default is a note."""
    argv = ["best-k", "--model", "llama-33b", "--hardware", "a100-80gb-pcie", "--medusa-heads", "5"]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    reference = rooflax.default_spec()
    rows = [line for line in out.splitlines() if line.startswith("| llama-33b")]
    assert len(rows) == len(reference.batch) * len(reference.seq_len)
    notes = err.splitlines()  # dtype, batch, seq_len, acceptance, k
    assert len(notes) == 5 and all(line.startswith("note: ") for line in notes)
    assert "acceptance medusa-vicuna-33b" in err and "k 0..5" in err
    speedups = rooflax.best_k(model="llama-33b", hardware="a100-80gb-pcie", medusa_heads=5)["speedup"]
    assert 1.5 < speedups.max() < 2.0  # a Medusa acceptance (≈ 1.8×), not geometric α = 0.8 (≈ 3.5×)


def test_fits_says_which_cells_have_no_row(capsys):
    df = rooflax.speculate(
        model="llama-13b", hardware="a40", batch=[1, 2], seq_len=[2048, 8192], k=[0, 2], draft_model="llama-7b"
    )
    from rooflax.answers.speculate import unfit_cells

    none_fit = {
        (r["batch"], r["seq_len"])
        for r in df.group_by("batch", "seq_len")
        .agg(pl.col("fits_in_memory").any())
        .filter(~pl.col("fits_in_memory"))
        .iter_rows(named=True)
    }
    unfit = unfit_cells(df)
    assert {(r["batch"], r["seq_len"]) for r in unfit.iter_rows(named=True)} == none_fit and none_fit
    least = df.filter(batch=unfit["batch"][0], seq_len=unfit["seq_len"][0])["memory_bytes"].min()
    assert unfit["memory_bytes"][0] == least and unfit["capacity_bytes"][0] == 48e9
    assert (
        main(
            [
                "best-k",
                "--model",
                "llama-13b",
                "--hardware",
                "a40",
                "--batch",
                "1,2",
                "--seq-len",
                "2048,8192",
                "--k",
                "0,2",
                "--draft-model",
                "llama-7b",
                "--fits",
            ]
        )
        == 0
    )
    err = capsys.readouterr().err
    assert f"note: --fits: {len(none_fit)} of 4 cells have no row, as no round fits in memory there" in err
    assert f"{least / 1e9:.1f} GB, a40 has 48.0 GB" in err
    one_line_error(
        lambda: rooflax.best_k(df.filter(seq_len=8192, batch=2), fits=True),
        "fits: no round fits in one device's memory in any of the 1 cells",
        "a40 has 48 GB",
    )


def test_cli_speculate_and_best_k_save_their_table(tmp_path, capsys):
    args = ["--batch", "1,8", "--seq-len", "1024", "--k", "0,4", "--alpha", "0.8"]
    for command in ("speculate", "best-k"):
        out = tmp_path / f"{command}.csv"
        assert main([command, *args, "-o", str(out)]) == 0
        expected = rooflax.speculate(
            batch=[1, 8], seq_len=[1024], k=[0, 4], acceptance={"kind": "geometric", "alpha": 0.8}
        )
        if command == "best-k":
            expected = rooflax.best_k(expected)
        assert pl.read_csv(out).height == expected.height
        assert f"wrote {expected.height:,} rows to {out}" in capsys.readouterr().out
        assert main([command, *args, "-o", str(out)]) == 2  # kept without --overwrite
        assert "--overwrite" in capsys.readouterr().err
        assert main([command, *args, "-o", str(tmp_path / "t.parquet"), "--overwrite", "--quiet"]) == 0
        assert pl.read_parquet(tmp_path / "t.parquet").equals(expected)


def test_speculation_bands_hold_plain_decode_at_one_and_are_null_without_measurements():
    df = rooflax.speculate(batch=[1, 16], seq_len=[1024], k=[0, 4], acceptance={"kind": "geometric", "alpha": 0.8})
    plain = df.filter(draft_k=0)
    assert (plain["achieved_speedup_lo"] == 1).all() and (plain["achieved_speedup_hi"] == 1).all()
    summary = rooflax.sweep(phases=["decode"], batch=[1, 16], seq_len=[1024], summary=True)
    assert plain["achieved_round_time_lo_s"].to_list() == summary.sort("batch")["achieved_time_lo_s"].to_list()
    four = df.filter(draft_k=4)
    assert (four["achieved_speedup_lo"] <= four["achieved_speedup"]).all()
    assert (four["achieved_speedup"] <= four["achieved_speedup_hi"]).all()
    assert (four["achieved_effective_tokens_per_s_lo"] < four["achieved_effective_tokens_per_s"]).all()
    assert "achieved_band" in rooflax.answers.speculate.speculation_table(df)
    none = rooflax.speculate(hardware="mi300x", batch=[1], seq_len=[1024], k=[0, 2])
    assert none["achieved_speedup_lo"].null_count() == none.height
    assert "achieved_band" not in rooflax.answers.speculate.speculation_table(none)
