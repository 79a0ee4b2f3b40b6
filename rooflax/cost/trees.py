"""Verification trees: which scores a tree attention mask keeps when a verify step checks candidates.

A speculative round verifies ``Q`` candidate tokens (the paper's "# cand.") in one step
of the target model. The candidates form a tree: the root is the last token the target
itself produced (its key and value are not cached yet), and every other candidate
continues its parent. The tree attention mask lets each candidate attend

- the ``T − Q`` tokens of the prefix (already in the KV cache), and
- its ancestors in the tree and itself: ``depth`` tokens, where the root has depth 1.

So a sequence's head keeps ``Q·(T − Q) + Σ depth`` scores (:func:`tree_pairs` gives the
sum). A chain of ``Q`` candidates has depths ``1, 2, …, Q``: ``Q(Q+1)/2``, the causal
count of :func:`rooflax.cost.ops.scored_pairs`, so a chain is exactly today's causal verify.

A tree is given as the depth of every candidate (``{depths = [1, 2, 2, 3]}``, listed so
that each candidate's parent comes before it: the first has depth 1, and each depth is at
most one more than the deepest before it), or Medusa-style as the top-k of each head
(``{top_k = [4, 2]}``: the root, then the Cartesian product of the heads' choices, level
``i`` holding ``k₁·…·kᵢ`` candidates at depth ``i + 1``).
"""

from __future__ import annotations

import math

from rooflax.errors import SpecError, check_keys, positive_int

__all__ = ["chain", "check_tree", "medusa_tree", "tree_pairs"]

#: Most candidates a tree may hold (a verify step of more tokens is a prefill).
MAX_CANDIDATES = 1 << 16


def chain(candidates: int) -> tuple[int, ...]:
    """The depths of a chain: ``1, 2, …, candidates`` (plain speculative decoding).

    >>> chain(4)
    (1, 2, 3, 4)
    """
    return tuple(range(1, positive_int("candidates", candidates) + 1))


def medusa_tree(top_k: list[int] | tuple[int, ...]) -> tuple[int, ...]:
    """The depths of a Medusa tree: the root, then ``k₁·…·kᵢ`` candidates at depth ``i + 1`` per head.

    >>> medusa_tree([2, 2])
    (1, 2, 2, 3, 3, 3, 3)
    """
    if not isinstance(top_k, list | tuple) or not top_k:
        raise SpecError(f"tree.top_k: expected a non-empty list of positive integers (one per head), got {top_k!r}")
    sizes = [math.prod(positive_int(f"tree.top_k[{i}]", k) for k in top_k[: i + 1]) for i in range(len(top_k))]
    if 1 + sum(sizes) > MAX_CANDIDATES:
        raise SpecError(f"tree.top_k: {list(top_k)} makes {1 + sum(sizes)} candidates; at most {MAX_CANDIDATES}")
    return (1, *(depth for level, size in enumerate(sizes, start=2) for depth in [level] * size))


def _depths(where: str, depths: object) -> tuple[int, ...]:
    if not isinstance(depths, list | tuple) or not depths:
        raise SpecError(f"{where}: expected a non-empty list of candidate depths (the root is 1), got {depths!r}")
    if len(depths) > MAX_CANDIDATES:
        raise SpecError(f"{where}: {len(depths)} candidates; at most {MAX_CANDIDATES}")
    out, deepest = [], 0
    for i, value in enumerate(depths):
        depth = positive_int(f"{where}[{i}]", value)
        if depth > deepest + 1:
            raise SpecError(
                f"{where}[{i}]: depth {depth} has no parent (the deepest candidate before it has depth "
                f"{deepest}); list each candidate after its parent, the root first at depth 1"
            )
        if i > 0 and depth == 1:
            raise SpecError(f"{where}[{i}]: a second root (depth 1); a tree has one root, the last verified token")
        out.append(depth)
        deepest = max(deepest, depth)
    return tuple(out)


def check_tree(tree: object, where: str = "tree") -> tuple[int, ...]:
    """The candidate depths of a tree given as ``{depths = [...]}`` or ``{top_k = [...]}``, or a one-line error."""
    if isinstance(tree, list | tuple) and tree and all(isinstance(d, int) for d in tree):
        return _depths(where, tree)  # already depths (a SweepSpec field)
    if not isinstance(tree, dict):
        raise SpecError(f"{where}: expected {{depths = [...]}} or {{top_k = [...]}}, got {tree!r}")
    if "sparse" in tree:
        raise SpecError(
            f"{where}.sparse: the likeliest tree is built from Medusa head accuracies; give it to "
            'rooflax speculate or best-k with acceptance {kind = "medusa", ...}, or give depths'
        )
    check_keys(where, tree, (), ("depths", "top_k"))
    if len(tree) != 1:
        raise SpecError(f"{where}: give exactly one of depths (per candidate) or top_k (per Medusa head)")
    if "top_k" in tree:
        return medusa_tree(tree["top_k"])
    return _depths(f"{where}.depths", tree["depths"])


def tree_pairs(depths: tuple[int, ...]) -> int:
    """Scores kept among the candidates, per sequence and head: ``Σ depth`` (ancestors and itself).

    >>> tree_pairs(chain(4)), tree_pairs(medusa_tree([2, 2]))
    (10, 17)
    """
    return sum(depths)
