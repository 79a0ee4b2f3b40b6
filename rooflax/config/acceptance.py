"""Acceptance models: expected tokens a speculative round yields, by draft length or candidates.

A round drafts ``K`` tokens and verifies ``K + 1`` candidates (a chain: the last token the
target produced, then the drafts); it yields the accepted drafts plus one token the target
produces itself, so between 1 and ``K + 1`` tokens.

- ``{kind = "geometric", alpha = 0.8}``: each draft is accepted with probability ``α``,
  independently, until the first rejection (Leviathan et al. 2023, "Fast Inference from
  Transformers via Speculative Decoding", eq. 1): ``(1 − α^(K+1)) / (1 − α)`` tokens per
  round; ``α`` in ``[0, 1)``. For a tree, ``K`` is its depth − 1 (the chain along one
  path: a lower bound for a tree that contains that chain).
- ``{kind = "table", by = "k", k = [1, 2, 4], tokens_per_round = [1.8, 2.4, 3.1]}``:
  measured tokens per round by draft length (``by = "k"``) or by candidates
  (``by = "candidates"``, with a ``candidates`` list), e.g. the acceleration rates a
  Medusa tree reaches. Values in between are interpolated linearly; ``K = 0`` (one
  candidate) yields 1 token unless the table says otherwise; a ``K`` or candidate count
  outside the table's range is refused, never extrapolated. Each value lies in
  ``[1, K + 1]`` (``[1, candidates]``).

- ``{kind = "medusa", heads = "vicuna-7b"}`` (or the string ``"medusa-vicuna-7b"``): the
  acceleration rate of Medusa heads, computed the way the Medusa paper builds its trees
  (Cai et al. 2024, arXiv 2401.10774, §2.3.3 "optimized tree construction" and Fig. 4a):
  head ``k``'s top-``i`` prediction is right with accuracy ``a[k][i]``, heads independent,
  so a candidate whose path takes ranks ``i₁ … i_d`` is accepted with ``∏ a[k][i_k]`` and a
  tree yields ``1 + Σ`` of that over its candidates. The best tree of ``Q`` candidates
  keeps the ``Q − 1`` most likely paths (a path is never likelier than its parent, so they
  form a tree); :meth:`Acceptance.sparse_tree` gives its depths. A chain (``Q = K + 1``)
  follows each head's top-1: ``1 + a₀ + a₀a₁ + …``. Any other tree of ``Q`` candidates and
  depth ``K + 1`` is priced as the best one of that size and depth (an upper bound for it).
  Presets ``vicuna-7b``, ``vicuna-13b``, ``vicuna-33b``: the per-head top-1…top-5
  accuracies of the authors' Medusa-1 heads (5 heads, 1 layer each) at the end of
  training, as published in the paper's repository (FasterDecoding/Medusa,
  ``assets/medusa_acc.csv``, commit 5d374e9, 2023-09-20). Or give your own calibration:
  ``{kind = "medusa", top_k_accuracy = [[0.6, 0.72], [0.35, 0.47]]}`` (per head, the
  cumulative top-1, top-2, … accuracy). Head accuracies measured at training time, heads
  independent, ranks 1–5 only: the presets give Vicuna-7B 2.38 tokens a round at 64
  candidates where the paper's Fig. 4a measured about 3.1 for its (Medusa-2, top-10)
  sparse tree, so read them as a conservative Medusa-1 curve.

- ``"deepseek-v3-mtp"``: DeepSeek-V3's multi-token prediction module as the drafter
  (:func:`rooflax.speculate` with ``mtp``): one draft a round, the second token accepted
  85%–90% of the time (DeepSeek-V3 technical report, arXiv 2412.19437, §5.4.3, which also
  reports 1.8× the tokens per second); the table ``k = [1]``, ``tokens_per_round = [1.85]``
  (:data:`TABLES`).

The Medusa paper's own fitted curve of §12.3 (its coefficients) is not shipped: its text
could not be read here to cite; the ``medusa`` kind above rebuilds the curve from the
authors' published head accuracies instead.
"""

from __future__ import annotations

import functools
import itertools
import math
import numbers
from dataclasses import dataclass

import numpy as np

from rooflax.errors import SpecError, check_keys, positive_int, unknown_name

__all__ = ["Acceptance", "parse_acceptance"]

KINDS = ("geometric", "table", "medusa")

#: Cumulative top-1…top-5 accuracy of each of the 5 Medusa-1 heads (head k predicts the token
#: k + 2 ahead), Vicuna 7B/13B/33B v1.3, end of training: FasterDecoding/Medusa
#: ``assets/medusa_acc.csv`` (columns ``train/medusa{k}_top{i}``), rounded to 4 digits.
MEDUSA_HEADS: dict[str, tuple[tuple[float, ...], ...]] = {
    "vicuna-7b": (
        (0.5604, 0.6717, 0.7271, 0.7599, 0.7799),
        (0.3164, 0.4236, 0.4851, 0.5282, 0.5625),
        (0.2010, 0.2879, 0.3475, 0.3834, 0.4169),
        (0.1474, 0.2250, 0.2737, 0.3109, 0.3397),
        (0.1175, 0.1866, 0.2346, 0.2721, 0.2998),
    ),
    "vicuna-13b": (
        (0.5939, 0.7053, 0.7578, 0.7925, 0.8161),
        (0.3397, 0.4400, 0.5068, 0.5465, 0.5803),
        (0.2161, 0.3085, 0.3612, 0.4030, 0.4364),
        (0.1500, 0.2317, 0.2878, 0.3234, 0.3541),
        (0.1223, 0.1957, 0.2434, 0.2791, 0.3070),
    ),
    "vicuna-33b": (
        (0.6046, 0.7162, 0.7649, 0.7983, 0.8223),
        (0.3558, 0.4690, 0.5287, 0.5692, 0.5961),
        (0.2246, 0.3197, 0.3785, 0.4210, 0.4462),
        (0.1596, 0.2488, 0.3073, 0.3480, 0.3755),
        (0.1370, 0.2067, 0.2621, 0.2984, 0.3258),
    ),
}
#: Acceptance presets by name (strings ``parse_acceptance`` takes).
#: Measured acceptance of drafters other than Medusa heads, as tables. ``deepseek-v3-mtp``: DeepSeek-V3's
#: one multi-token prediction module drafts the second token, accepted 85% to 90% of the time (DeepSeek-V3
#: technical report, arXiv 2412.19437, §5.4.3): the lower end, 1.85 tokens a round of one draft.
TABLES: dict[str, dict[str, object]] = {
    "deepseek-v3-mtp": {"kind": "table", "by": "k", "k": [1], "tokens_per_round": [1.85]},
}
MEDUSA_PRESETS = tuple(f"medusa-{name}" for name in MEDUSA_HEADS)
PRESETS = (*MEDUSA_PRESETS, *TABLES)
#: Most paths a ``medusa`` acceptance enumerates (ranks^1 + … + ranks^heads).
MAX_PATHS = 1 << 20


@dataclass(frozen=True, slots=True, kw_only=True)
class Acceptance:
    """A validated acceptance model; :meth:`tokens_per_round` evaluates it."""

    kind: str
    alpha: float = 0.0
    by: str = "k"  # table: "k" or "candidates"
    points: tuple[tuple[float, float], ...] = ()  # table: (key, tokens per round), increasing keys
    heads: str = ""  # medusa: the preset's name, or "" for given accuracies
    accuracy: tuple[tuple[float, ...], ...] = ()  # medusa: per head, P(the top-i prediction is right)

    def tokens_per_round(self, draft_k: np.ndarray, candidates: np.ndarray) -> np.ndarray:
        """Expected tokens per round for each round's draft length and candidate count."""
        draft_k, candidates = np.asarray(draft_k, np.float64), np.asarray(candidates, np.float64)
        if draft_k.shape != candidates.shape or (draft_k < 0).any() or (candidates < draft_k + 1).any():
            raise SpecError(
                f"acceptance: rounds need draft lengths K ≥ 0 and at least K + 1 candidates each, got K "
                f"{draft_k.tolist()[:5]} and candidates {candidates.tolist()[:5]}"
            )
        if self.kind == "geometric":
            if self.alpha == 0:
                return np.ones_like(draft_k)
            return (1 - self.alpha ** (draft_k + 1)) / (1 - self.alpha)
        if self.kind == "medusa":
            return self._medusa(draft_k.astype(np.int64), candidates.astype(np.int64))
        key = draft_k if self.by == "k" else candidates
        xs, ys = zip(*self.points, strict=True)
        outside = (key < xs[0]) | (key > xs[-1])
        if outside.any():
            bad = sorted({int(v) for v in key[outside]})
            name = "K" if self.by == "k" else "candidates"
            raise SpecError(
                f"acceptance: the table covers {name} {xs[0]:g}..{xs[-1]:g}, asked for {name} "
                f"{', '.join(map(str, bad[:5]))}; measure those or narrow the sweep (no extrapolation)"
            )
        return np.interp(key, xs, ys)

    def _paths(self) -> tuple[np.ndarray, np.ndarray]:
        return _ranked_paths(self.accuracy)

    def _name(self) -> str:
        return f"the Medusa heads {self.heads!r}" if self.heads else "the given Medusa heads"

    def check_round(self, draft_k: int, candidates: int, field: str = "acceptance") -> None:
        """A one-line error naming ``field`` when a ``medusa`` acceptance cannot price this round."""
        if self.kind != "medusa":
            return
        if draft_k > len(self.accuracy):
            raise SpecError(
                f"{field}: a round of depth {draft_k + 1} drafts {draft_k} tokens, {self._name()} "
                f"predict {len(self.accuracy)} ahead; use K ≤ {len(self.accuracy)} or trees of depth ≤ "
                f"{len(self.accuracy) + 1}"
            )
        paths = int((self._paths()[1] <= draft_k).sum())
        if candidates - 1 > paths:
            raise SpecError(
                f"{field}: a tree of {candidates} candidates and depth {draft_k + 1}; {self._name()} "
                f"rank {paths} continuations that deep, so at most {paths + 1} candidates"
            )

    def sparse_tree(self, candidates: int, depth: int | None = None, field: str = "tree.sparse") -> tuple[int, ...]:
        """Depths of the likeliest tree of ``candidates`` (root included), at most ``depth`` deep.

        >>> parse_acceptance("medusa-vicuna-7b").sparse_tree(6)
        (1, 2, 2, 2, 3, 3)
        """
        candidates = positive_int(field, candidates)
        if self.kind != "medusa":
            raise SpecError(
                f"{field}: {candidates}: a sparse tree is built from Medusa head accuracies and the "
                f'acceptance is {self.kind!r}; give acceptance {{kind = "medusa", ...}} or a preset '
                f"({', '.join(MEDUSA_PRESETS)})"
            )
        most = len(self.accuracy) if depth is None else min(depth - 1, len(self.accuracy))
        self.check_round(most, candidates, field)
        depths = self._paths()[1]
        return (1, *sorted(int(d) + 1 for d in depths[depths <= most][: candidates - 1]))

    def _medusa(self, draft_k: np.ndarray, candidates: np.ndarray) -> np.ndarray:
        probs, depths = self._paths()
        top1 = np.cumprod([head[0] for head in self.accuracy])
        out = np.empty(draft_k.shape)
        for k in np.unique(draft_k):
            rows = draft_k == k
            chain = candidates[rows] == k + 1
            kept = np.concatenate([[1.0], 1 + np.cumsum(probs[depths <= k])])
            self.check_round(int(k), int(candidates[rows].max()))
            out[rows] = np.where(chain, 1 + top1[:k].sum(), kept[candidates[rows] - 1])
        return out


@functools.lru_cache(maxsize=16)
def _ranked_paths(accuracy: tuple[tuple[float, ...], ...]) -> tuple[np.ndarray, np.ndarray]:
    """Every tree path's acceptance probability and length (heads used), likeliest first
    (enumerated once per accuracy table: up to :data:`MAX_PATHS`; read-only arrays)."""
    levels: list[np.ndarray] = []
    level_depths: list[np.ndarray] = []
    level = np.ones(1)
    for depth, head in enumerate(accuracy, start=1):
        level = np.multiply.outer(level, np.diff(head, prepend=0.0)).ravel()
        levels.append(level)
        level_depths.append(np.full(level.size, depth))
    probs, depths = np.concatenate(levels), np.concatenate(level_depths)
    order = np.lexsort((depths, -probs))  # a parent is never less likely: it comes first
    probs, depths = probs[order], depths[order]
    probs.flags.writeable = depths.flags.writeable = False
    return probs, depths


def _number(where: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise SpecError(f"{where}: expected a finite number, got {value!r}")
    return float(value)


def parse_acceptance(acceptance: object) -> Acceptance:
    """An :class:`Acceptance` from its table form (module docstring), or a one-line error.

    >>> a = parse_acceptance({"kind": "geometric", "alpha": 0.8})
    >>> round(float(a.tokens_per_round([4], [5])[0]), 4)
    3.3616
    """
    if isinstance(acceptance, Acceptance):
        return acceptance
    if isinstance(acceptance, str):
        if acceptance not in PRESETS:
            raise unknown_name("acceptance", acceptance, PRESETS, "acceptance preset")
        if acceptance in TABLES:
            return parse_acceptance(TABLES[acceptance])
        return _medusa({"kind": "medusa", "heads": acceptance.removeprefix("medusa-")})
    if not isinstance(acceptance, dict):
        raise SpecError(
            f'acceptance: expected a table {{kind = "geometric", alpha = 0.8}}, {{kind = "table", '
            f'...}} or {{kind = "medusa", ...}}, or a preset ({", ".join(PRESETS)}), got {acceptance!r}'
        )
    kind = acceptance.get("kind")
    if kind not in KINDS:
        raise SpecError(f"acceptance.kind: expected one of {', '.join(KINDS)}, got {kind!r}")
    if kind == "geometric":
        check_keys("acceptance", acceptance, ("kind", "alpha"), ())
        alpha = _number("acceptance.alpha", acceptance["alpha"])
        if not 0 <= alpha < 1:
            raise SpecError(
                f"acceptance.alpha: {alpha!r} is outside [0, 1); the probability that a draft token "
                "is accepted (1 would accept forever)"
            )
        return Acceptance(kind="geometric", alpha=alpha)
    if kind == "medusa":
        return _medusa(acceptance)
    by = acceptance.get("by", "k")
    if by not in ("k", "candidates"):
        raise SpecError(f'acceptance.by: expected "k" or "candidates", got {by!r}')
    check_keys("acceptance", acceptance, ("kind", by, "tokens_per_round"), ("by",))
    keys, values = acceptance[by], acceptance["tokens_per_round"]
    if (
        not isinstance(keys, list | tuple)
        or not isinstance(values, list | tuple)
        or len(keys) != len(values)
        or not keys
    ):
        raise SpecError(
            f"acceptance: {by} and tokens_per_round must be non-empty lists of one length, got {keys!r} and {values!r}"
        )
    lowest = 0 if by == "k" else 1
    points = {float(lowest): 1.0}  # one candidate (K = 0) yields the target's own token
    for i, (key, value) in enumerate(zip(keys, values, strict=True)):
        key, value = _number(f"acceptance.{by}[{i}]", key), _number(f"acceptance.tokens_per_round[{i}]", value)
        if key < lowest or not key.is_integer():
            raise SpecError(f"acceptance.{by}[{i}]: expected an integer ≥ {lowest}, got {key:g}")
        most = key + 1 if by == "k" else key
        if not 1 <= value <= most:
            raise SpecError(
                f"acceptance.tokens_per_round[{i}]: {value:g} at {by} = {key:g} is outside "
                f"[1, {most:g}] (a round yields at least its own token and at most one per candidate)"
            )
        if key in points and key != lowest:
            raise SpecError(f"acceptance.{by}: value {key:g} is repeated")
        points[key] = value
    ordered = tuple(sorted(points.items()))
    for (k_a, v_a), (k_b, v_b) in itertools.pairwise(ordered):
        if v_b < v_a:
            raise SpecError(
                f"acceptance.tokens_per_round: {v_b:g} at {by} = {k_b:g} is below {v_a:g} at {by} = "
                f"{k_a:g}; tokens per round cannot fall as {by} grows (a longer draft holds the shorter "
                "one's tokens)"
            )
    return Acceptance(kind="table", by=by, points=ordered)


def _medusa(acceptance: dict) -> Acceptance:
    check_keys("acceptance", acceptance, ("kind",), ("heads", "top_k_accuracy"))
    if ("heads" in acceptance) == ("top_k_accuracy" in acceptance):
        raise SpecError(
            f'acceptance: kind "medusa" takes heads (one of {", ".join(MEDUSA_HEADS)}) or '
            "top_k_accuracy (per head, cumulative top-1, top-2, … accuracies), exactly one"
        )
    if "heads" in acceptance:
        name = acceptance["heads"]
        if not isinstance(name, str) or name not in MEDUSA_HEADS:
            raise unknown_name("acceptance.heads", name, MEDUSA_HEADS, "Medusa head preset")
        return Acceptance(kind="medusa", heads=name, accuracy=MEDUSA_HEADS[name])
    heads = acceptance["top_k_accuracy"]
    if not isinstance(heads, list | tuple) or not heads or not all(isinstance(h, list | tuple) and h for h in heads):
        raise SpecError(
            f"acceptance.top_k_accuracy: expected a non-empty list per head of cumulative top-1, "
            f"top-2, … accuracies, e.g. [[0.6, 0.72], [0.35, 0.47]], got {heads!r}"
        )
    accuracy = []
    for k, head in enumerate(heads):
        values = tuple(_number(f"acceptance.top_k_accuracy[{k}][{i}]", v) for i, v in enumerate(head))
        if not all(0 <= v <= 1 for v in values) or any(b < a for a, b in itertools.pairwise(values)):
            raise SpecError(
                f"acceptance.top_k_accuracy[{k}]: {list(values)} must be probabilities in [0, 1] that "
                "never fall (the top-2 holds the top-1, and so on)"
            )
        gains = np.diff(values, prepend=0.0)
        if any(b > a + 1e-12 for a, b in itertools.pairwise(gains)):
            raise SpecError(
                f"acceptance.top_k_accuracy[{k}]: {list(values)} adds more at a rank than at the one "
                f"before ({', '.join(f'{g:.4g}' for g in gains)}); ranks go likeliest first, so each "
                "step is at most the one before"
            )
        accuracy.append(values)
    paths = sum(math.prod(len(h) for h in accuracy[: d + 1]) for d in range(len(accuracy)))
    if paths > MAX_PATHS:
        raise SpecError(
            f"acceptance.top_k_accuracy: {len(accuracy)} heads of these ranks make {paths} tree paths; "
            f"at most {MAX_PATHS} (give fewer heads or ranks)"
        )
    return Acceptance(kind="medusa", accuracy=tuple(accuracy))
