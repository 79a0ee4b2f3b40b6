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

No preset of the Medusa paper's fitted acceleration curve is shipped: its text could not
be read here to cite the formula, so give its measured rates as a table.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np

from rooflax.errors import SpecError, check_keys

__all__ = ["Acceptance", "parse_acceptance"]

KINDS = ("geometric", "table")


@dataclass(frozen=True, slots=True)
class Acceptance:
    """A validated acceptance model; :meth:`tokens_per_round` evaluates it."""

    kind: str
    alpha: float = 0.0
    by: str = "k"  # table: "k" or "candidates"
    points: tuple[tuple[float, float], ...] = ()  # table: (key, tokens per round), increasing keys

    def tokens_per_round(self, draft_k: np.ndarray, candidates: np.ndarray) -> np.ndarray:
        """Expected tokens per round for each round's draft length and candidate count."""
        draft_k = np.asarray(draft_k, np.float64)
        if self.kind == "geometric":
            if self.alpha == 0:
                return np.ones_like(draft_k)
            return (1 - self.alpha ** (draft_k + 1)) / (1 - self.alpha)
        key = draft_k if self.by == "k" else np.asarray(candidates, np.float64)
        xs, ys = zip(*self.points, strict=True)
        outside = (key < xs[0]) | (key > xs[-1])
        if outside.any():
            bad = sorted({int(v) for v in key[outside]})
            name = "K" if self.by == "k" else "candidates"
            raise SpecError(f"acceptance: the table covers {name} {xs[0]:g}..{xs[-1]:g}, asked for {name} "
                            f"{', '.join(map(str, bad[:5]))}; measure those or narrow the sweep (no extrapolation)")
        return np.interp(key, xs, ys)


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
    if not isinstance(acceptance, dict):
        raise SpecError(f"acceptance: expected a table {{kind = \"geometric\", alpha = 0.8}} or "
                        f"{{kind = \"table\", ...}}, got {acceptance!r}")
    kind = acceptance.get("kind")
    if kind not in KINDS:
        raise SpecError(f"acceptance.kind: expected one of {', '.join(KINDS)}, got {kind!r}")
    if kind == "geometric":
        check_keys("acceptance", acceptance, ("kind", "alpha"), ())
        alpha = _number("acceptance.alpha", acceptance["alpha"])
        if not 0 <= alpha < 1:
            raise SpecError(f"acceptance.alpha: {alpha!r} is outside [0, 1); the probability that a draft token "
                            "is accepted (1 would accept forever)")
        return Acceptance("geometric", alpha=alpha)
    by = acceptance.get("by", "k")
    if by not in ("k", "candidates"):
        raise SpecError(f"acceptance.by: expected \"k\" or \"candidates\", got {by!r}")
    check_keys("acceptance", acceptance, ("kind", by, "tokens_per_round"), ("by",))
    keys, values = acceptance[by], acceptance["tokens_per_round"]
    if not isinstance(keys, list | tuple) or not isinstance(values, list | tuple) or len(keys) != len(values) \
            or not keys:
        raise SpecError(f"acceptance: {by} and tokens_per_round must be non-empty lists of one length, got "
                        f"{keys!r} and {values!r}")
    lowest = 0 if by == "k" else 1
    points = {float(lowest): 1.0}  # one candidate (K = 0) yields the target's own token
    for i, (key, value) in enumerate(zip(keys, values, strict=True)):
        key, value = _number(f"acceptance.{by}[{i}]", key), _number(f"acceptance.tokens_per_round[{i}]", value)
        if key < lowest or not key.is_integer():
            raise SpecError(f"acceptance.{by}[{i}]: expected an integer ≥ {lowest}, got {key:g}")
        most = key + 1 if by == "k" else key
        if not 1 <= value <= most:
            raise SpecError(f"acceptance.tokens_per_round[{i}]: {value:g} at {by} = {key:g} is outside "
                            f"[1, {most:g}] (a round yields at least its own token and at most one per candidate)")
        if key in points and key != lowest:
            raise SpecError(f"acceptance.{by}: value {key:g} is repeated")
        points[key] = value
    return Acceptance("table", by=by, points=tuple(sorted(points.items())))
