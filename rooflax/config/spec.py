"""Sweep specs: what to sweep, read from TOML or keyword arguments with the same names.

A spec file::

    model = "llama-13b"            # or a list: a categorical axis; or a .toml/.json path
    hardware = "a40"               # or a list, or a hardware .toml path
    dtype = "fp16"                 # or a list
    kv_dtype = "fp8"               # optional: KV-cache dtype override
    phases = ["prefill", "decode"] # any of prefill, decode, verify
    fused_attention = false        # optional
    causal = false                 # optional
    mla_decode = "absorbed"        # optional: how latent attention runs decode and verify,
                                   # "absorbed" or "naive" (rooflax.cost.ops; prefill is naive)
    tree = "chain"                 # optional, verify under a tree mask: "chain", or a list of
                                   # trees [{depths = [1, 2, 2]}, {top_k = [4, 2]}] (rooflax.trees)
    description = "..."            # optional

    [axes]
    batch = [1, 2, 4, 8]                                  # explicit values
    seq_len = { start = 128, stop = 4096, step = 128 }    # linear, stop included
    hidden = { start = 4096, stop = 16384, powers_of = 2 } # geometric, stop included
    spec_k = [16, 32, 48]                                 # verify draft lengths
    tp = [1, 2, 4, 8]                                     # tensor-parallel degrees (default 1)
    pp = [1]                                              # pipeline stages (default 1)
    ep = [1]                                              # expert-parallel degrees (default 1)

``tp`` must divide every model's heads and MLP widths (and its KV heads divide, or be
divided by, ``tp``), ``pp`` its layers, ``ep`` its experts (experts only). Each layout
``(tp, pp, ep)`` is a block of the sweep with ``tp·pp·ep`` devices (:mod:`rooflax.ops`).
``hidden`` defaults to each model's own; ``spec_k`` is required with ``verify`` and not
allowed without it, except with a list of trees: then ``spec_k`` is their candidate counts
(one tree per count). Axis values are sorted; a repeated value is an error. Every count is
at most 2**53 (:data:`rooflax.errors.MAX_INT`).

A model, accelerator or dtype file may not take a preset's name (or another file's)
unless it is the same thing in every figure: frames label rows by name.
"""

from __future__ import annotations

import bisect
import itertools
import json
import numbers
import operator
import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypedDict, Unpack

import numpy as np

from rooflax.config._files import read_text
from rooflax.config.dtypes import DTYPES, DtypePolicy, get_dtype
from rooflax.config.hardware import HARDWARE, Hardware, get_hardware
from rooflax.config.models import MODELS, LayerKind, Model, get_model
from rooflax.cost.ops import OpDef, model_ops
from rooflax.cost.shape import absorbs, op_flags
from rooflax.cost.trees import check_tree, tree_pairs
from rooflax.errors import MAX_INT, SpecError, boolean, check_keys, positive_int, unknown_name
from rooflax.names import LAYOUT, MLA_DECODE, PHASES, SWEEP_AXES

__all__ = ["DEFAULT_SPEC_TOML", "SpecKeys", "SweepKeys", "SweepSpec", "default_spec", "load_spec", "parse_spec"]

#: One axis as a spec gives it: a value, a list of values, or ``{start, stop, step | powers_of}``.
Axis = int | Sequence[int] | Mapping[str, int] | None


class SweepKeys(TypedDict, total=False):
    """The spec's TOML keys as keyword arguments, all but ``tree`` (:class:`SpecKeys` adds it).

    :func:`rooflax.speculate` takes these: its own ``tree`` is the candidate tree of a round.
    Every key may be None, the same as leaving it out.
    """

    model: str | os.PathLike[str] | Model | Sequence[str | os.PathLike[str] | Model] | None
    hardware: str | os.PathLike[str] | Hardware | Sequence[str | os.PathLike[str] | Hardware] | None
    dtype: str | DtypePolicy | Sequence[str | DtypePolicy] | None
    kv_dtype: str | None
    phases: str | Sequence[str] | None
    fused_attention: bool | None
    causal: bool | None
    mla_decode: str | None
    description: str | None
    batch: Axis
    seq_len: Axis
    hidden: Axis
    spec_k: Axis
    tp: Axis
    pp: Axis
    ep: Axis
    axes: Mapping[str, Axis] | None


class SpecKeys(SweepKeys, total=False):
    """The spec's TOML keys as keyword arguments (:func:`rooflax.sweep`, :func:`parse_spec`, ...).

    The same names as a spec file's keys, axes given flat (``batch=[1, 8]``) or under ``axes``.
    """

    tree: str | Mapping[str, Sequence[int]] | Sequence[str | Mapping[str, Sequence[int]]] | None


#: The reference sweep ("Roofline Model (Llama 13B, A40)", Cai et al. 2024, arXiv 2401.10774, appendix),
#: on the paper's grid; ``sweeps/llama13b_a40.toml``.
DEFAULT_SPEC_TOML = """\
description = "The reference chart: Roofline Model (Llama 13B, A40), on the Medusa paper's grid, prefill and decode"
model = "llama-13b"
hardware = "a40"
dtype = "fp16"
phases = ["prefill", "decode"]

[axes]
batch = { start = 1, stop = 64, powers_of = 2 }
seq_len = { start = 128, stop = 8192, powers_of = 2 }
hidden = [5120]
"""

_TOP_KEYS = (
    "model",
    "hardware",
    "dtype",
    "kv_dtype",
    "phases",
    "fused_attention",
    "causal",
    "mla_decode",
    "tree",
    "description",
    "axes",
)
#: The fields that hold models, accelerators and dtypes, and their types (stored as their own dicts).
_ITEMS = {"models": Model, "hardware": Hardware, "dtypes": DtypePolicy}
_MAX_AXIS_VALUES = 10_000_000


def _axis(name: str, value: object) -> Sequence[int]:
    """Parse one axis: an int, a list of ints, or a ``{start, stop, step | powers_of}`` table.

    Returns:
        The increasing values: a ``range`` for a ``{start, stop, step}`` table (built in no
        time, and taken as valid by :class:`SweepSpec`), else a tuple.
    """
    where = f"axes.{name}"
    if isinstance(value, dict):
        check_keys(where, value, ("start", "stop"), ("step", "powers_of"))
        start, stop = positive_int(f"{where}.start", value["start"]), positive_int(f"{where}.stop", value["stop"])
        if stop < start:
            raise SpecError(f"{where}: stop ({stop}) is below start ({start})")
        if ("step" in value) == ("powers_of" in value):
            raise SpecError(f"{where}: give exactly one of step (linear) or powers_of (geometric)")
        if "step" in value:
            step = positive_int(f"{where}.step", value["step"])
            if (stop - start) // step + 1 > _MAX_AXIS_VALUES:
                raise SpecError(f"{where}: more than {_MAX_AXIS_VALUES} values")
            return range(start, stop + 1, step)
        base = positive_int(f"{where}.powers_of", value["powers_of"])
        if base < 2:
            raise SpecError(f"{where}.powers_of: expected an integer ≥ 2, got {base}")
        values = [start]
        while values[-1] * base <= stop:
            values.append(values[-1] * base)
        return tuple(values)
    if isinstance(value, numbers.Number):
        return (positive_int(where, value),)
    if isinstance(value, np.ndarray) and value.ndim != 1:
        raise SpecError(f"{where}: expected a 1-D array of integers, got an array of shape {value.shape}")
    if isinstance(value, range) and value.step > 0 and len(value) and value.start > 0 and value[-1] <= MAX_INT:
        return value  # increasing, distinct, positive: nothing to sort or check value by value
    if isinstance(value, list | tuple | range | np.ndarray):
        if len(value) == 0:
            raise SpecError(f"{where}: empty axis (give at least one value)")
        values = sorted(positive_int(f"{where}[{i}]", v) for i, v in enumerate(value))
        for a, b in itertools.pairwise(values):
            if a == b:
                raise SpecError(f"{where}: value {a} is repeated")
        return tuple(values)
    raise SpecError(
        f"{where}: expected an integer, a list of integers or a table {{start, stop, step | powers_of}}, got {value!r}"
    )


def _as_given(value: Any) -> object:
    """An axis as given (already checked by :func:`_axis`), in plain JSON terms: a table's keys, a range as a
    table, values as a list."""
    if isinstance(value, dict):
        return {key: int(value[key]) for key in ("start", "stop", "step", "powers_of") if key in value}
    if isinstance(value, range) and len(value) > 2 and value.step > 0:
        return {"start": value.start, "stop": value[-1], "step": value.step}
    if isinstance(value, numbers.Number):
        return [int(value)]  # type: ignore[call-overload]  # numbers.Number declares no __int__; _axis let ints through
    return sorted(int(v) for v in value)


def _given_axes(given: object, spec: SweepSpec) -> dict | None:
    """``given`` checked against the spec's axes: each entry must parse to the axis it describes."""
    if given is None:
        return None
    if not isinstance(given, dict):
        raise SpecError(f"given_axes: expected a dict of axis forms, got {given!r}")
    for name, form in given.items():
        axis = getattr(spec, name) if name in SWEEP_AXES else None
        values = _axis(name, form) if axis is not None else ()
        if axis is None or len(values) != len(axis) or not all(map(operator.eq, values, axis)):
            raise SpecError(f"given_axes: {name} = {form!r} does not give the spec's {name} axis")
    return dict(given)


def _names(key: str, value: object) -> tuple:
    """A categorical key: one name or a non-empty list of distinct names."""
    items = value if isinstance(value, list | tuple) else [value]
    if not items:
        raise SpecError(f"{key}: empty list (give at least one name)")
    if len(set(map(str, items))) != len(items):
        raise SpecError(f"{key}: a name is repeated in {list(items)!r}")
    return tuple(items)


def _items(key: str, values: object, kind: type) -> tuple:
    """A non-empty tuple of ``kind`` instances (a SweepSpec field)."""
    if not isinstance(values, list | tuple) or not values:
        raise SpecError(f"{key}: expected a non-empty tuple of rooflax.{kind.__name__}, got {values!r}")
    for i, value in enumerate(values):
        if not isinstance(value, kind):
            raise SpecError(f"{key}[{i}]: expected a rooflax.{kind.__name__} (parse_spec takes names), got {value!r}")
    return tuple(values)


def _differences(a: Model | Hardware | DtypePolicy, b: Model | Hardware | DtypePolicy) -> list[str]:
    """The fields in which two models, accelerators or dtypes differ, labels and sources aside."""
    da, db = a.to_dict(), b.to_dict()
    return [key for key in {**da, **db} if key not in ("label", "source") and da.get(key) != db.get(key)]


def _distinct(key: str, noun: str, items: tuple, presets: Mapping[str, Any]) -> None:
    """Refuse two different things under one name (a preset's, or each other's): frames label rows by name."""

    def origin(item: Model | Hardware | DtypePolicy) -> str:
        if item is presets.get(item.name):
            return f"the preset {item.name!r}"
        source = getattr(item, "source", "")
        return repr(source) if source else f"a {type(item).__name__} built in Python"

    for item in items:
        preset = presets.get(item.name)
        if preset is not None and _differences(item, preset):
            raise SpecError(
                f"{key}: {origin(item)} is named {item.name!r} like the preset but differs from it in "
                f"{', '.join(_differences(item, preset))}; give it another name, e.g. {item.name + '-custom'!r}"
            )
    for a, b in itertools.combinations(items, 2):
        if a.name == b.name:
            differ = _differences(a, b)
            if differ:
                raise SpecError(
                    f"{key}: two different {noun} are named {a.name!r} ({origin(a)} and {origin(b)} "
                    f"differ in {', '.join(differ)}); give one of them another name"
                )
            raise SpecError(
                f"{key}: {a.name!r} is given twice ({origin(a)} and {origin(b)} are the same); give it once"
            )


def _axis_values(key: str, values: object) -> tuple[int, ...]:
    """A SweepSpec axis: a non-empty, increasing tuple of positive integers ≤ 2**53.

    The common case (Python ints, increasing) is checked by C loops (``map``), so an axis of
    10**7 values takes a fraction of a second; anything else is checked value by value for the error.
    """
    if not isinstance(values, list | tuple | range) or len(values) == 0:
        raise SpecError(f"{key}: expected a non-empty tuple of positive integers, got {values!r}")
    if isinstance(values, range) and values.step > 0 and 0 < values.start and values[-1] <= MAX_INT:
        return tuple(values)
    values = tuple(values)
    if set(map(type, values)) == {int} and all(map(operator.lt, values, values[1:])):
        if 0 < values[0] and values[-1] <= MAX_INT:
            return values
    values = tuple(positive_int(f"{key}[{i}]", v) for i, v in enumerate(values))  # numpy ints, or the error
    for a, b in itertools.pairwise(values):
        if a >= b:
            raise SpecError(
                f"{key}: values must be increasing and distinct, got {a} before {b} (parse_spec sorts them)"
            )
    return values


def _stored_axis(values: tuple[int, ...]) -> list[int] | dict[str, int]:
    """An axis as :meth:`SweepSpec.to_dict` stores it: three or more evenly spaced values as their
    ``{start, stop, step}`` table (what :func:`_axis` reads back), so a spec's JSON grows with its
    axes, not with their values (10**7 batch sizes are one table); other axes as their values."""
    if len(values) > 2:
        start, step = values[0], values[1] - values[0]
        stop = start + step * (len(values) - 1)
        if values[-1] == stop and all(map(operator.eq, values, range(start, stop + 1, step))):
            return {"start": start, "stop": stop, "step": step}
    return list(values)


def _trees(tree: object, phases: tuple[str, ...], spec_k: tuple[int, ...] | None):
    """The ``tree`` field: None, ``"chain"``, or one tree (candidate depths) per ``spec_k`` value."""
    if tree is None:
        return None
    if "verify" not in phases:
        raise SpecError("tree: only meaningful with the 'verify' phase; add it to phases or drop tree")
    if tree == "chain":
        return tree
    if not isinstance(tree, list | tuple) or not tree:
        raise SpecError(
            f'tree: expected "chain" or a non-empty list of trees ({{depths = [...]}} or '
            f"{{top_k = [...]}}), got {tree!r}"
        )
    trees = tuple(check_tree(t, f"tree[{i}]") for i, t in enumerate(tree))
    sizes = tuple(len(t) for t in trees)
    if sizes != spec_k:
        raise SpecError(
            f"tree: the trees hold {list(sizes)} candidates, spec_k is {list(spec_k or ())}; "
            "each spec_k needs one tree of that many candidates (leave out spec_k to take the trees')"
        )
    return trees


def _phases(phases: object) -> tuple[str, ...]:
    """Phases: a non-empty tuple of distinct names of :data:`PHASES`, in that order."""
    if not isinstance(phases, list | tuple) or not phases:
        raise SpecError(f"phases: expected a non-empty list of {', '.join(PHASES)}, got {phases!r}")
    for phase in phases:
        if phase not in PHASES:
            raise unknown_name("phases", phase, PHASES)
    if len(set(phases)) != len(phases):
        raise SpecError(f"phases: a phase is repeated in {list(phases)!r}")
    if list(phases) != sorted(phases, key=PHASES.index):
        raise SpecError(f"phases: expected the order {', '.join(PHASES)}, got {list(phases)!r} (parse_spec sorts them)")
    return tuple(phases)


@dataclass(frozen=True, slots=True, kw_only=True)
class SweepSpec:
    """A validated, immutable, hashable sweep.

    Build it with :func:`parse_spec` (names, TOML forms) or directly (objects, increasing
    axes): both are validated the same way on construction.

    Categorical axes are ``models``, ``hardware`` and ``dtypes``; numeric axes are
    ``batch``, ``seq_len``, ``hidden`` (None: each model's own), ``spec_k`` (verify only)
    and the parallel degrees ``tp``, ``pp``, ``ep`` (``(1,)`` each by default).
    ``given_axes`` remembers how :func:`parse_spec` was given each axis (a range table
    stays a table); it is not part of the sweep's identity (see :meth:`axes_as_given`).
    """

    models: tuple[Model, ...]
    hardware: tuple[Hardware, ...]
    dtypes: tuple[DtypePolicy, ...]
    phases: tuple[str, ...]
    batch: tuple[int, ...]
    seq_len: tuple[int, ...]
    hidden: tuple[int, ...] | None = None
    spec_k: tuple[int, ...] | None = None
    tp: tuple[int, ...] = (1,)
    pp: tuple[int, ...] = (1,)
    ep: tuple[int, ...] = (1,)
    fused_attention: bool = False
    causal: bool = False
    mla_decode: str = "absorbed"
    tree: str | tuple[tuple[int, ...], ...] | None = None  # "chain", or candidate depths per spec_k
    description: str = field(default="", compare=False)
    given_axes: dict | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        def put(name: str, value: object) -> None:
            object.__setattr__(self, name, value)

        put("models", _items("models", self.models, Model))
        put("hardware", _items("hardware", self.hardware, Hardware))
        put("dtypes", _items("dtypes", self.dtypes, DtypePolicy))
        _distinct("model", "models", self.models, MODELS)
        _distinct("hardware", "accelerators", self.hardware, HARDWARE)
        _distinct("dtype", "dtype policies", self.dtypes, DTYPES)
        put("phases", _phases(self.phases))
        for name in SWEEP_AXES:
            value = getattr(self, name)
            if value is not None or name in ("batch", "seq_len", *LAYOUT):
                put(name, _axis_values(name, value))
        if "verify" in self.phases and self.spec_k is None:
            raise SpecError("spec_k: required when phases include 'verify' (e.g. spec_k = [16, 32, 48])")
        if "verify" not in self.phases and self.spec_k is not None:
            raise SpecError("spec_k: only meaningful with the 'verify' phase; add it to phases or drop spec_k")
        if self.spec_k is not None and self.spec_k[-1] > self.seq_len[-1]:
            raise SpecError(
                f"spec_k: {self.spec_k[-1]} exceeds every seq_len (largest {self.seq_len[-1]}); "
                "verify needs seq_len ≥ spec_k"
            )
        put("tree", _trees(self.tree, self.phases, self.spec_k))
        put("fused_attention", boolean("fused_attention", self.fused_attention))
        put("causal", boolean("causal", self.causal))
        if self.mla_decode not in MLA_DECODE:
            raise unknown_name("mla_decode", self.mla_decode, MLA_DECODE)
        put("given_axes", _given_axes(self.given_axes, self))
        if not isinstance(self.description, str):
            raise SpecError(f"description: expected a string, got {self.description!r}")
        for hw in self.hardware:
            for dt in self.dtypes:
                hw.peak(dt.compute, policy=dt.name)  # raises when the part has no such peak
            for tp, pp, ep in self.layouts():
                hw.check_layout(tp=tp, pp=pp, ep=ep)
        for model in self.models:
            for h in self.hidden or ():
                model.check_hidden(h, where="hidden")
            for h in self.hidden_for(model):
                for tp, pp, ep in self.layouts():
                    model.at_hidden(h).check_layout(tp=tp, pp=pp, ep=ep)

    def layouts(self) -> tuple[tuple[int, int, int], ...]:
        """Every parallel layout ``(tp, pp, ep)`` of the sweep, in frame order."""
        return tuple(itertools.product(self.tp, self.pp, self.ep))

    def ops_for(
        self, model: Model, layout: tuple[int, int, int] = (1, 1, 1), *, phase: str
    ) -> tuple[tuple[LayerKind | None, OpDef], ...]:
        """``(layer kind, op)`` of ``model``'s rows under ``layout`` in ``phase`` (:func:`rooflax.cost.ops.model_ops`
        of its :func:`~rooflax.cost.shape.op_flags`; kind None: once per model; latent attention's ops differ by
        phase)."""
        tp, pp, ep = layout
        absorbed = absorbs(phase, self.mla_decode)
        return model_ops(
            **op_flags(model, fused_attention=self.fused_attention, absorbed=absorbed, tp=tp, pp=pp, ep=ep)
        )

    def hidden_for(self, model: Model) -> tuple[int, ...]:
        """The hidden sizes swept for ``model``."""
        return self.hidden if self.hidden is not None else (model.hidden,)

    def tree_pairs(self, spec_k: int | None) -> int:
        """Scores the verify step's tree mask keeps among its ``spec_k`` candidates; 0 without a tree."""
        if self.tree is None or spec_k is None:
            return 0
        if isinstance(self.tree, str):  # "chain" (_trees)
            return spec_k * (spec_k + 1) // 2
        return tree_pairs(self.tree[(self.spec_k or ()).index(spec_k)])  # trees come with spec_k (_trees)

    def steps(self) -> tuple[tuple[str, int | None, int], ...]:
        """``(phase, spec_k, first valid seq_len index)`` per phase step, in frame order."""
        out = []
        for phase in PHASES:
            if phase not in self.phases:
                continue
            ks: tuple[int | None, ...] = (self.spec_k or ()) if phase == "verify" else (None,)  # verify has spec_k
            for k in ks:
                out.append((phase, k, 0 if k is None else bisect.bisect_left(self.seq_len, k)))
        return tuple(out)

    def _points(self, model: Model, first: int) -> int:
        """Grid points of one phase step (whose first valid seq_len is ``first``) for one model, every
        accelerator and dtype."""
        points = len(self.batch) * (len(self.seq_len) - first) * len(self.hidden_for(model))
        return points * len(self.hardware) * len(self.dtypes)

    def configurations(self) -> int:
        """Grid points times phase steps: the rows of the summary frame."""
        return sum(self._points(m, first) for m in self.models for _, _, first in self.steps()) * len(self.layouts())

    def rows(self) -> int:
        """Rows of the long (one row per op) frame."""
        return sum(
            self._points(m, first) * len(self.ops_for(m, layout, phase=phase))
            for m in self.models
            for phase, _, first in self.steps()
            for layout in self.layouts()
        )

    def to_dict(self) -> dict:
        """Everything that defines the sweep, presets expanded, for metadata and resume checks.

        Built from the dataclass fields, as :meth:`from_dict` reads them back, so no field can be
        left out of one and not the other: the numeric axes go under ``axes`` (the parallel
        degrees only when other than 1; three or more evenly spaced values as their
        ``{start, stop, step}`` table, so the JSON's size does not grow with an axis's length),
        models, accelerators and dtypes as their own dicts, ``tree`` only when given. ``given_axes``
        is how the axes were written, not the sweep.
        """
        data: dict = {}
        axes: dict = {}
        for item in fields(self):
            name, value = item.name, getattr(self, item.name)
            if name == "given_axes":
                continue
            if name in SWEEP_AXES:
                if name not in LAYOUT or value != (1,):
                    axes[name] = None if value is None else _stored_axis(value)
            elif name in _ITEMS:
                data[name] = [v.to_dict() for v in value]
            elif name == "tree":
                if value is not None:
                    data[name] = value if value == "chain" else [list(t) for t in value]
            else:
                data[name] = list(value) if isinstance(value, tuple) else value
        return {**data, "axes": axes}

    def axes_as_given(self) -> dict:
        """Each numeric axis as the user gave it: a ``{start, stop, step | powers_of}`` table
        or a list of values (None: not swept), for metadata; :meth:`to_dict` has them expanded.
        The parallel degrees appear when given or other than 1, as in :meth:`to_dict`.

        >>> parse_spec(batch=[1, 2], seq_len={"start": 128, "stop": 4096, "step": 128}).axes_as_given()["seq_len"]
        {'start': 128, 'stop': 4096, 'step': 128}
        """
        given = self.given_axes or {}
        return {
            name: given[name] if name in given else None if getattr(self, name) is None else list(getattr(self, name))
            for name in SWEEP_AXES
            if name in given or name not in LAYOUT or getattr(self, name) != (1,)
        }

    @classmethod
    def from_dict(cls, data: dict, *, given_axes: dict | None = None) -> SweepSpec:
        """The sweep of a :meth:`to_dict` (as a dataset's metadata stores it); a key it does not
        know is refused, so nothing :meth:`to_dict` writes is dropped.

        >>> spec = default_spec()
        >>> SweepSpec.from_dict(spec.to_dict()) == spec
        True
        """
        try:
            top = tuple(f.name for f in fields(cls) if f.name not in (*SWEEP_AXES, "given_axes"))
            check_keys("spec", data, ("axes",), top)
            check_keys("spec.axes", data["axes"], (), SWEEP_AXES)
            keys: dict = {}
            for item in fields(cls):
                name = item.name
                source = data["axes"] if name in SWEEP_AXES else data
                if name == "given_axes" or name not in source:
                    continue
                value = source[name]
                if name in _ITEMS:
                    value = tuple(_ITEMS[name](**v) for v in value)
                elif name == "tree" and isinstance(value, list):
                    value = tuple(tuple(t) for t in value)
                elif name in SWEEP_AXES and isinstance(value, dict):
                    value = _axis(name, value)
                elif isinstance(value, list):
                    value = tuple(value)
                keys[name] = value
            return cls(**keys, given_axes=given_axes)
        except (KeyError, TypeError, AttributeError) as exc:
            raise SpecError(f"spec: not a stored rooflax spec ({type(exc).__name__}: {exc})") from None

    def to_json(self) -> str:
        """:meth:`to_dict` as canonical JSON."""
        return json.dumps(self.to_dict(), sort_keys=True)

    def with_keys(self, **keys: Unpack[SpecKeys]) -> SweepSpec:
        """This sweep with some of its keys replaced (the keywords of :func:`parse_spec`).

        An axis keyword replaces that axis only; None removes a key. ``kv_dtype`` applies
        to the dtypes in effect (this sweep's, or the ``dtype`` keyword's).

        >>> default_spec().with_keys(batch=[256], phases="decode").batch
        (256,)
        """
        own = {
            "model": self.models,
            "hardware": self.hardware,
            "dtype": self.dtypes,
            "phases": self.phases,
            "fused_attention": self.fused_attention,
            "causal": self.causal,
            "mla_decode": self.mla_decode,
            "tree": self.tree,
            "description": self.description,
            **{
                name: (self.given_axes or {}).get(name, getattr(self, name))
                for name in SWEEP_AXES
                if name in (self.given_axes or {}) or name not in LAYOUT or getattr(self, name) != (1,)
            },
        }
        return _build(own, keys, base=None, where="")


def parse_spec(*, base: Path | None = None, where: str = "", **keys: Unpack[SpecKeys]) -> SweepSpec:
    """Build a :class:`SweepSpec` from the TOML keys (axes given flat or under ``axes``).

    Args:
        base: folder that relative model and hardware paths are read from.
        where: prefix for error messages (the spec file's name).
        **keys: ``model``, ``hardware``, ``dtype``, ``kv_dtype``, ``phases``,
            ``fused_attention``, ``causal``, ``mla_decode``, ``tree``, ``description``, ``batch``, ``seq_len``,
            ``hidden``, ``spec_k``, ``tp``, ``pp``, ``ep``, or ``axes`` holding the last seven. None is the same
            as leaving a key out.
    """
    return _build(keys, {}, base=base, where=where)


def load_spec(path: str | Path, **keys: Unpack[SpecKeys]) -> SweepSpec:
    """Read a spec file; model and hardware paths in it are relative to its folder.

    Args:
        path: the TOML spec.
        **keys: keys of :func:`parse_spec` that replace the file's own: an axis keyword
            replaces that axis only, None removes a key. Paths given here are relative
            to the current folder.
    """
    path = Path(path)
    text = read_text(path, "spec", "a TOML sweep spec")
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path}: not valid TOML ({exc})") from None
    where = f"{path} (keywords {', '.join(keys)})" if keys else str(path)
    return _build(table, keys, base=path.parent, where=where)


def _split(keys: Mapping[str, object]) -> tuple[dict, dict]:
    """A spec's top-level keys and its axes (given flat or under ``axes``)."""
    top = dict(keys)
    axes = top.pop("axes", None)
    axes = {} if axes is None else axes
    if not isinstance(axes, dict):
        raise SpecError(f"axes: expected a table, got {axes!r}")
    check_keys("axes", axes, (), SWEEP_AXES)
    axes = dict(axes)
    for name in SWEEP_AXES:
        if name in top:
            if name in axes:
                raise SpecError(f"{name}: given both at the top level and under axes")
            axes[name] = top.pop(name)
    check_keys("spec", top, (), (*_TOP_KEYS, *SWEEP_AXES))  # axes were taken out above; listed for the hints
    return top, axes


def _build(table: Mapping[str, object], keys: Mapping[str, object], *, base: Path | None, where: str) -> SweepSpec:
    """A spec from ``table`` (paths relative to ``base``) with ``keys`` in place of its keys."""
    try:
        top, axes = _split(table)
        key_top, key_axes = _split(keys)
        top = {name: value for name, value in {**top, **key_top}.items() if value is not None}
        axes = {name: value for name, value in {**axes, **key_axes}.items() if value is not None}
        return _parse(
            top,
            axes,
            model_base=None if "model" in key_top else base,
            hardware_base=None if "hardware" in key_top else base,
        )
    except SpecError as exc:
        raise SpecError(f"{where}: {exc}" if where else str(exc)) from None


def _parse(top: dict, axes: dict, *, model_base: Path | None, hardware_base: Path | None) -> SweepSpec:
    """The TOML level: names to objects, axis forms to values; :class:`SweepSpec` checks the rest."""
    for name in ("batch", "seq_len"):
        if name not in axes:
            raise SpecError(f"axes.{name}: missing (every sweep needs batch and seq_len)")
    kv_dtype = top.get("kv_dtype")
    models = tuple(get_model(m, base=model_base) for m in _names("model", top.get("model", "llama-13b")))
    hardware = tuple(get_hardware(h, base=hardware_base) for h in _names("hardware", top.get("hardware", "a40")))
    dtypes = tuple(get_dtype(d, kv_dtype) for d in _names("dtype", top.get("dtype", "fp16")))
    phases = top.get("phases", ["prefill", "decode"])
    if isinstance(phases, str):
        phases = [phases]
    if not isinstance(phases, list | tuple):
        raise SpecError(f"phases: expected a non-empty list of {', '.join(PHASES)}, got {phases!r}")
    # a {start, stop, step} table stays a range: SweepSpec makes it its tuple without checking value by value
    values: dict[str, Any] = {name: _axis(name, value) for name, value in axes.items()}
    tree: Any = top.get("tree")  # as given: SweepSpec checks it
    if isinstance(tree, list | tuple):  # trees in order of their candidate counts, which are spec_k
        tree = tuple(sorted((check_tree(t, f"tree[{i}]") for i, t in enumerate(tree)), key=len)) if tree else tree
        if "spec_k" not in values and tree:
            values["spec_k"] = tuple(len(t) for t in tree)
    try:
        return SweepSpec(
            models=models,
            hardware=hardware,
            dtypes=dtypes,
            phases=tuple(sorted(phases, key=lambda p: PHASES.index(p) if p in PHASES else len(PHASES))),
            batch=values["batch"],
            seq_len=values["seq_len"],
            hidden=values.get("hidden"),
            spec_k=values.get("spec_k"),
            tp=values.get("tp", (1,)),
            pp=values.get("pp", (1,)),
            ep=values.get("ep", (1,)),
            fused_attention=top.get("fused_attention", False),
            causal=top.get("causal", False),
            mla_decode=top.get("mla_decode", "absorbed"),
            tree=tree,
            description=top.get("description", ""),
            given_axes={name: _as_given(value) for name, value in axes.items()},
        )
    except SpecError as exc:  # name the axes as the TOML does
        message = str(exc)
        raise SpecError("axes." + message if message.startswith(SWEEP_AXES) else message) from None


def default_spec() -> SweepSpec:
    """The reference sweep, Llama-13B on the A40 (:data:`DEFAULT_SPEC_TOML`)."""
    return parse_spec(where="default spec", **tomllib.loads(DEFAULT_SPEC_TOML))
