"""The ``medusa`` acceptance: tokens a round from per-head top-k accuracies, and the likeliest trees."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from one_line import one_line_error

import rooflax
from rooflax.cli.commands import main
from rooflax.config.acceptance import MEDUSA_HEADS, parse_acceptance
from rooflax.cost.trees import check_tree

# head 0: top-1 0.5, top-2 0.75 (so rank 2 alone 0.25); head 1: top-1 0.4
SMALL = {"kind": "medusa", "top_k_accuracy": [[0.5, 0.75], [0.4]]}


def _tokens(acceptance, draft_k, candidates):
    return [float(v) for v in parse_acceptance(acceptance).tokens_per_round(np.array(draft_k), np.array(candidates))]


def test_small_heads_by_hand():
    # paths (rank per head → probability): (1)=.5, (2)=.25, (1,1)=.5·.4=.2, (2,1)=.25·.4=.1
    assert _tokens(SMALL, [0, 1, 2], [1, 2, 3]) == pytest.approx([1, 1.5, 1 + 0.5 + 0.2])  # chains of top-1s
    assert _tokens(SMALL, [1, 2, 2], [3, 4, 5]) == pytest.approx([1.75, 1.95, 2.05])  # the likeliest trees
    small = parse_acceptance(SMALL)
    assert small.sparse_tree(3) == (1, 2, 2) and small.sparse_tree(4) == (1, 2, 2, 3)
    one_line_error(lambda: small.sparse_tree(4, depth=2), "tree.sparse", "2 continuations", "at most 3 candidates")
    for bad in (0, -1, 1.5):
        one_line_error(lambda bad=bad: small.sparse_tree(bad), "tree.sparse")
    one_line_error(lambda: small.tokens_per_round(np.array([2]), np.array([2])), "acceptance", "K + 1 candidates")
    one_line_error(lambda: small.tokens_per_round(np.array([-1]), np.array([0])), "acceptance", "K ≥ 0")


def _brute_force(accuracy, candidates, depth):
    """The best prefix-closed set of candidates − 1 paths no longer than depth − 1, by enumeration."""
    ranks = [np.diff(head, prepend=0.0) for head in accuracy]
    paths = [p for d in range(1, depth) for p in itertools.product(*(range(len(r)) for r in ranks[:d]))]
    best = -1.0
    for chosen in itertools.combinations(paths, candidates - 1):
        kept = set(chosen)
        if all(p[:-1] in kept for p in chosen if len(p) > 1):
            best = max(best, sum(math.prod(ranks[i][r] for i, r in enumerate(p)) for p in chosen))
    return 1 + best


@given(
    st.lists(st.lists(st.floats(0, 0.5), min_size=1, max_size=2), min_size=1, max_size=3),
    st.integers(2, 6),
    st.integers(2, 4),
)
def test_likeliest_tree_beats_every_other_tree(raw, candidates, depth):
    # each rank adds at most what the one before added, and a head's ranks add up to at most 1
    accuracy = [np.cumsum(sorted(head, reverse=True)).tolist() for head in raw]
    depth = min(depth, len(accuracy) + 1)
    acceptance = parse_acceptance({"kind": "medusa", "top_k_accuracy": accuracy})
    paths = sum(math.prod(len(h) for h in accuracy[:d]) for d in range(1, depth))
    if candidates - 1 > paths:  # no such tree
        return
    tree = acceptance.sparse_tree(candidates, depth)
    assert check_tree(list(tree)) == tree and len(tree) == candidates and max(tree) <= depth
    # priced at its own depth (a chain as the top-1 guesses: the likeliest chain, ranks going likeliest first)
    got = float(acceptance.tokens_per_round(np.array([max(tree) - 1]), np.array([candidates]))[0])
    assert got == pytest.approx(_brute_force(accuracy, candidates, depth), abs=1e-12)


def test_presets_are_the_published_accuracies():
    """The presets' shape: 5 heads of cumulative top-1…top-5 accuracies, farther heads guessing worse."""
    assert set(MEDUSA_HEADS) == {"vicuna-7b", "vicuna-13b", "vicuna-33b"}
    for heads in MEDUSA_HEADS.values():
        assert len(heads) == 5 and all(len(h) == 5 and list(h) == sorted(h) for h in heads)
        assert [h[0] for h in heads] == sorted((h[0] for h in heads), reverse=True)  # farther heads guess worse
    seven = parse_acceptance("medusa-vicuna-7b")
    assert _tokens("medusa-vicuna-7b", [1], [2]) == pytest.approx([1.5604])
    assert _tokens("medusa-vicuna-7b", [2], [3]) == pytest.approx([1 + 0.5604 + 0.5604 * 0.3164])
    values = _tokens(seven, [4] * 6, [8, 16, 32, 48, 64, 112])
    assert values == sorted(values) and values[-1] < 1 / (1 - 0.7799) + 1  # grows, and saturates


@given(st.integers(1, 5), st.integers(2, 200))
def test_medusa_tokens_stay_within_one_and_candidates(draft_k, candidates):
    candidates = min(max(candidates, draft_k + 1), 1 + sum(5**d for d in range(1, draft_k + 1)))
    value = _tokens("medusa-vicuna-13b", [draft_k], [candidates])[0]
    assert 1 <= value <= min(candidates, draft_k + 1)  # a round accepts one path: at most its depth


def test_speculate_with_sparse_trees_prices_each_tree():
    df = rooflax.speculate(
        model="llama-7b",
        hardware="a40",
        batch=[1],
        seq_len=[512],
        medusa_heads=2,
        tree=[{"sparse": 4}, {"sparse": 5}],
        acceptance=SMALL,
    )
    assert df["candidates"].to_list() == [4, 5] and df["draft_k"].to_list() == [2, 2]
    assert df["tokens_per_round"].to_list() == pytest.approx([1.95, 2.05])
    depths = rooflax.speculate(
        model="llama-7b",
        hardware="a40",
        batch=[1],
        seq_len=[512],
        medusa_heads=2,
        tree=[{"depths": [1, 2, 2, 3]}],
        acceptance=SMALL,
    )
    assert depths.drop("tree").equals(df.filter(candidates=4).drop("tree"))
    assert df["tree"].to_list() == ["sparse 4", "sparse 5"] and depths["tree"].to_list() == ["depths #0"]


def test_trees_of_one_size_are_told_apart():
    """A chain of 3, a bushy tree of 3 and the likeliest (= bushy) one: same size, other rounds."""
    cell = {
        "model": "llama-7b",
        "hardware": "a40",
        "batch": [1, 8],
        "seq_len": [512],
        "medusa_heads": 2,
        "acceptance": SMALL,
    }
    df = rooflax.speculate(tree=[{"depths": [1, 2, 3]}, {"top_k": [2]}, {"sparse": 4}], **cell)
    assert df.filter(batch=1).select("candidates", "draft_k", "tree", "tokens_per_round").rows() == [
        (3, 2, "depths #0", pytest.approx(1.7)),
        (3, 1, "top_k 2", pytest.approx(1.75)),
        (4, 2, "sparse 4", pytest.approx(1.95)),
    ]
    chain = rooflax.speculate(k=[2], **cell)  # the chain of 3 is exactly a K = 2 round
    assert df.filter(tree="depths #0").drop("tree").equals(chain.drop("tree"))
    bushy = df.filter(tree="top_k 2")  # one Medusa head, two candidates: fewer scores than the chain
    assert (bushy["verify_time_s"] <= df.filter(tree="depths #0")["verify_time_s"]).all()
    assert rooflax.best_k(df).height == 2
    one_line_error(
        lambda: rooflax.speculate(tree=[{"top_k": [2]}, {"depths": [1, 2, 2]}], **cell),
        "tree[1]",
        "the same tree as tree[0]",
    )


def test_sparse_trees_stay_within_the_heads():
    df = rooflax.speculate(
        model="llama-7b",
        hardware="a40",
        batch=[1],
        seq_len=[512],
        medusa_heads=1,
        tree=[{"sparse": 3}],
        acceptance=SMALL,
    )
    assert df["draft_k"].to_list() == [1] and df["tokens_per_round"].to_list() == pytest.approx([1.75])


def test_paper_shape_on_the_a100():
    """Medusa paper (arXiv 2401.10774, App.): speedup peaks near 64 candidates alone and falls with batch."""
    sizes = [16, 32, 48, 64, 80, 96, 112]
    df = rooflax.speculate(
        model="llama-33b",
        hardware="a100-80gb-pcie",
        batch=[1, 16, 32, 64],
        seq_len=[1024],
        medusa_heads=5,
        tree=[{"sparse": q} for q in sizes],
        acceptance="medusa-vicuna-33b",
    )
    alone = df.filter(batch=1).sort("candidates")
    assert alone["candidates"][alone["speedup"].arg_max()] in (48, 64)
    best = rooflax.best_k(df).sort("batch")["speedup"].to_list()
    assert best == sorted(best, reverse=True) and best[0] > 2 > 1 > best[3]


@pytest.mark.parametrize(
    ("acceptance", "fragments"),
    [
        ("medusa-vicuna-7", ("acceptance: unknown acceptance preset", "did you mean 'medusa-vicuna-7b'")),
        ({"kind": "medusa"}, ('kind "medusa" takes heads',)),
        ({"kind": "medusa", "heads": "vicuna-70b"}, ("acceptance.heads", "'vicuna-70b'", "vicuna-7b")),
        ({"kind": "medusa", "top_k_accuracy": [[0.7, 0.6]]}, ("acceptance.top_k_accuracy[0]", "never fall")),
        ({"kind": "medusa", "top_k_accuracy": [[1.5]]}, ("acceptance.top_k_accuracy[0]", "[0, 1]")),
        ({"kind": "medusa", "top_k_accuracy": []}, ("acceptance.top_k_accuracy", "non-empty")),
        ({"kind": "medusa", "top_k_accuracy": [[0.5]] * 2, "heads": "vicuna-7b"}, ("exactly one",)),
        (
            {"kind": "medusa", "top_k_accuracy": [[0.01 * i for i in range(1, 65)]] * 4},
            ("acceptance.top_k_accuracy", "tree paths"),
        ),
        ({"kind": "medusa", "top_k_accuracy": [[0.33, 0.82]]}, ("acceptance.top_k_accuracy[0]", "likeliest first")),
        ({"kind": "medusa", "heads": ["vicuna-7b"]}, ("acceptance.heads", "['vicuna-7b']", "vicuna-7b")),
        ({"kind": "medusa", "heads": {"a": 1}}, ("acceptance.heads",)),
        ([0.8], ("acceptance: expected", "medusa-vicuna-7b")),
    ],
)
def test_bad_medusa_acceptance_is_one_line(acceptance, fragments):
    one_line_error(lambda: parse_acceptance(acceptance), *fragments)


def test_rounds_the_heads_cannot_price():
    cell = {"model": "llama-7b", "hardware": "a40", "batch": [1], "seq_len": [512]}
    one_line_error(
        lambda: rooflax.speculate(k=[6], acceptance="medusa-vicuna-7b", **cell),
        "k: ",
        "drafts 6 tokens",
        "predict 5 ahead",
    )
    one_line_error(
        lambda: rooflax.speculate(tree=[{"sparse": 9}], acceptance=SMALL, **cell),
        "tree[0].sparse",
        "9 candidates",
        "4 continuations",
        "at most 5",
    )
    one_line_error(
        lambda: rooflax.speculate(tree=[{"depths": [1, 2, 2, 2]}], acceptance=SMALL, **cell),
        "tree[0]: ",
        "4 candidates and depth 2",
        "at most 3",
    )
    one_line_error(lambda: rooflax.speculate(tree=[{"sparse": 9}], **cell), "tree[0].sparse", "'geometric'")
    one_line_error(lambda: rooflax.speculate(tree=[{"sparse": 0}], acceptance=SMALL, **cell), "tree[0].sparse")
    one_line_error(
        lambda: rooflax.sweep(phases=["verify"], spec_k=[4], tree=[{"sparse": 4}], batch=[1], seq_len=[512]),
        "tree",
        "sparse",
    )


def test_cli_medusa_preset_and_sparse_trees(capsys):
    args = [
        "--model",
        "llama-7b",
        "--hardware",
        "a40",
        "--batch",
        "1",
        "--seq-len",
        "1024",
        "--medusa-heads",
        "5",
        "--acceptance",
        "medusa-vicuna-7b",
    ]
    assert main(["speculate", *args, "--sparse-tree", "2,16,64"]) == 0
    out = capsys.readouterr().out
    assert out.count("| llama-7b") == 3 and "1.5604" in out
    assert main(["speculate", *args, "--sparse-tree", "7", "--top-k", "2,2"]) == 0  # a dense and a sparse tree of 7
    out = capsys.readouterr().out
    assert "| top_k 2,2 " in out and "| sparse 7 " in out
    assert main(["best-k", *args, "--sparse-tree", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: tree[0].sparse") and err.count("\n") == 1
    assert main(["best-k", *args[:-1], "medusa-vicuna-8b", "--k", "1"]) == 2
    assert "did you mean 'medusa-vicuna-7b'" in capsys.readouterr().err
    assert main(["best-k", *args[:-1], "vicuna-7b", "--k", "1"]) == 2  # a preset without its kind
    assert "did you mean 'medusa-vicuna-7b'" in capsys.readouterr().err
    assert main(["speculate", *args]) == 0  # no --k: every draft length the five heads price, 0..5
    assert capsys.readouterr().out.count("| llama-7b") == 6
