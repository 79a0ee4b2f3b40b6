"""Sweep specs: what to sweep, read from TOML or keyword arguments with the same names.

A spec file::

    model = "llama-13b"            # or a list: a categorical axis; or a .toml/.json path
    hardware = "a40"               # or a list, or a hardware .toml path
    dtype = "fp16"                 # or a list
    kv_dtype = "fp8"               # optional: KV-cache dtype override
    phases = ["prefill", "decode"] # any of prefill, decode, verify
    fused_attention = false        # optional
    causal = false                 # optional
    description = "..."            # optional

    [axes]
    batch = [1, 2, 4, 8]                                  # explicit values
    seq_len = { start = 128, stop = 4096, step = 128 }    # linear, stop included
    hidden = { start = 4096, stop = 16384, powers_of = 2 } # geometric, stop included
    spec_k = [16, 32, 48]                                 # verify draft lengths

``hidden`` defaults to each model's own; ``spec_k`` is required with ``verify`` and not
allowed without it. Axis values are sorted; a repeated value is an error.
"""

from __future__ import annotations

import bisect
import itertools
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from rooflax.dtypes import DtypePolicy, get_dtype
from rooflax.errors import SpecError, check_keys, positive_int, unknown_name
from rooflax.hardware import Hardware, get_hardware
from rooflax.models import Model, get_model
from rooflax.ops import PHASES, layer_ops

__all__ = ["DEFAULT_SPEC_TOML", "SweepSpec", "default_spec", "load_spec", "parse_spec"]

#: The reference sweep ("Roofline Model (Llama 13B, A40)"); ``sweeps/llama13b_a40.toml``.
DEFAULT_SPEC_TOML = """\
description = "The reference chart: Roofline Model (Llama 13B, A40), prefill and decode"
model = "llama-13b"
hardware = "a40"
dtype = "fp16"
phases = ["prefill", "decode"]

[axes]
batch = { start = 1, stop = 128, powers_of = 2 }
seq_len = { start = 128, stop = 4096, step = 128 }
hidden = [5120]
"""

_TOP_KEYS = ("model", "hardware", "dtype", "kv_dtype", "phases", "fused_attention", "causal",
             "description", "axes")
_AXES = ("batch", "seq_len", "hidden", "spec_k")
_MAX_AXIS_VALUES = 10_000_000


def _axis(name: str, value: object) -> tuple[int, ...]:
    """Parse one axis: an int, a list of ints, or a ``{start, stop, step | powers_of}`` table."""
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
            return tuple(range(start, stop + 1, step))
        base = positive_int(f"{where}.powers_of", value["powers_of"])
        if base < 2:
            raise SpecError(f"{where}.powers_of: expected an integer ≥ 2, got {base}")
        values = [start]
        while values[-1] * base <= stop:
            values.append(values[-1] * base)
        return tuple(values)
    if isinstance(value, int) and not isinstance(value, bool):
        return (positive_int(where, value),)
    if isinstance(value, list | tuple | range):
        if not value:
            raise SpecError(f"{where}: empty axis (give at least one value)")
        values = sorted(positive_int(f"{where}[{i}]", v) for i, v in enumerate(value))
        for a, b in itertools.pairwise(values):
            if a == b:
                raise SpecError(f"{where}: value {a} is repeated")
        return tuple(values)
    raise SpecError(
        f"{where}: expected an integer, a list of integers or a table "
        f"{{start, stop, step | powers_of}}, got {value!r}"
    )


def _names(key: str, value: object) -> tuple:
    """A categorical key: one name or a non-empty list of distinct names."""
    items = value if isinstance(value, list | tuple) else [value]
    if not items:
        raise SpecError(f"{key}: empty list (give at least one name)")
    if len(set(map(str, items))) != len(items):
        raise SpecError(f"{key}: a name is repeated in {list(items)!r}")
    return tuple(items)


def _flag(key: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise SpecError(f"{key}: expected true or false, got {value!r}")
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class SweepSpec:
    """A validated, immutable, hashable sweep. Build it with :func:`parse_spec`.

    Categorical axes are ``models``, ``hardware`` and ``dtypes``; numeric axes are
    ``batch``, ``seq_len``, ``hidden`` (None: each model's own) and ``spec_k`` (verify only).
    """

    models: tuple[Model, ...]
    hardware: tuple[Hardware, ...]
    dtypes: tuple[DtypePolicy, ...]
    phases: tuple[str, ...]
    batch: tuple[int, ...]
    seq_len: tuple[int, ...]
    hidden: tuple[int, ...] | None = None
    spec_k: tuple[int, ...] | None = None
    fused_attention: bool = False
    causal: bool = False
    description: str = field(default="", compare=False)

    def hidden_for(self, model: Model) -> tuple[int, ...]:
        """The hidden sizes swept for ``model``."""
        return self.hidden if self.hidden is not None else (model.hidden,)

    def steps(self) -> tuple[tuple[str, int | None, int], ...]:
        """``(phase, spec_k, first valid seq_len index)`` per phase step, in frame order."""
        out = []
        for phase in PHASES:
            if phase not in self.phases:
                continue
            ks = self.spec_k if phase == "verify" else (None,)
            for k in ks:
                out.append((phase, k, 0 if k is None else bisect.bisect_left(self.seq_len, k)))
        return tuple(out)

    def _points(self, model: Model) -> int:
        """Grid points times phase steps for one model on one accelerator and dtype."""
        per_width = sum(len(self.batch) * (len(self.seq_len) - first) for _, _, first in self.steps())
        return per_width * len(self.hidden_for(model)) * len(self.hardware) * len(self.dtypes)

    def configurations(self) -> int:
        """Grid points times phase steps: the rows of the summary frame."""
        return sum(self._points(m) for m in self.models)

    def rows(self) -> int:
        """Rows of the long (one row per op) frame."""
        return sum(self._points(m) * len(layer_ops(gated_mlp=m.gated_mlp, fused_attention=self.fused_attention))
                   for m in self.models)

    def to_dict(self) -> dict:
        """Everything that defines the sweep, presets expanded, for metadata and resume checks."""
        return {
            "description": self.description,
            "models": [m.to_dict() for m in self.models],
            "hardware": [h.to_dict() for h in self.hardware],
            "dtypes": [d.to_dict() for d in self.dtypes],
            "phases": list(self.phases),
            "fused_attention": self.fused_attention,
            "causal": self.causal,
            "axes": {name: None if getattr(self, name) is None else list(getattr(self, name)) for name in _AXES},
        }

    def to_json(self) -> str:
        """:meth:`to_dict` as canonical JSON."""
        return json.dumps(self.to_dict(), sort_keys=True)


def parse_spec(*, base: Path | None = None, where: str = "", **keys: object) -> SweepSpec:
    """Build a :class:`SweepSpec` from the TOML keys (axes given flat or under ``axes``).

    Args:
        base: folder that relative model and hardware paths are read from.
        where: prefix for error messages (the spec file's name).
        **keys: ``model``, ``hardware``, ``dtype``, ``kv_dtype``, ``phases``,
            ``fused_attention``, ``causal``, ``description``, ``batch``, ``seq_len``,
            ``hidden``, ``spec_k``, or ``axes`` holding the last four.
    """
    prefix = f"{where}: " if where else ""
    try:
        return _parse(base, dict(keys))
    except SpecError as exc:
        raise SpecError(prefix + str(exc)) from None


def _parse(base: Path | None, keys: dict) -> SweepSpec:
    axes = keys.pop("axes", {})
    if not isinstance(axes, dict):
        raise SpecError(f"axes: expected a table, got {axes!r}")
    check_keys("axes", axes, (), _AXES)
    for name in _AXES:
        if name in keys:
            if name in axes:
                raise SpecError(f"{name}: given both at the top level and under axes")
            axes[name] = keys.pop(name)
    axes = {name: value for name, value in axes.items() if value is not None}
    check_keys("spec", keys, (), _TOP_KEYS)
    for name in ("batch", "seq_len"):
        if name not in axes:
            raise SpecError(f"axes.{name}: missing (every sweep needs batch and seq_len)")

    kv_dtype = keys.get("kv_dtype")
    models = tuple(get_model(m, base=base) for m in _names("model", keys.get("model", "llama-13b")))
    hardware = tuple(get_hardware(h, base=base) for h in _names("hardware", keys.get("hardware", "a40")))
    dtypes = tuple(get_dtype(d, kv_dtype) for d in _names("dtype", keys.get("dtype", "fp16")))
    phases = keys.get("phases", ["prefill", "decode"])
    if isinstance(phases, str):
        phases = [phases]
    if not isinstance(phases, list | tuple) or not phases:
        raise SpecError(f"phases: expected a non-empty list of {', '.join(PHASES)}, got {phases!r}")
    for phase in phases:
        if phase not in PHASES:
            raise unknown_name("phases", phase, PHASES)
    if len(set(phases)) != len(phases):
        raise SpecError(f"phases: a phase is repeated in {list(phases)!r}")
    for hw in hardware:
        for dt in dtypes:
            hw.peak(dt.compute)  # raises when the part has no such peak

    values = {name: _axis(name, value) for name, value in axes.items()}
    if "verify" in phases and "spec_k" not in values:
        raise SpecError("axes.spec_k: required when phases include 'verify' (e.g. spec_k = [16, 32, 48])")
    if "verify" not in phases and "spec_k" in values:
        raise SpecError("axes.spec_k: only meaningful with the 'verify' phase; add it to phases or drop spec_k")
    for k in values.get("spec_k", ()):
        if k > values["seq_len"][-1]:
            raise SpecError(
                f"axes.spec_k: {k} exceeds every seq_len (largest {values['seq_len'][-1]}); "
                "verify needs seq_len ≥ spec_k"
            )
    for model in models:
        for h in values.get("hidden", ()):
            model.check_hidden(h, where="axes.hidden")
    description = keys.get("description", "")
    if not isinstance(description, str):
        raise SpecError(f"description: expected a string, got {description!r}")
    return SweepSpec(
        models=models, hardware=hardware, dtypes=dtypes,
        phases=tuple(p for p in PHASES if p in phases),
        batch=values["batch"], seq_len=values["seq_len"], hidden=values.get("hidden"),
        spec_k=values.get("spec_k"),
        fused_attention=_flag("fused_attention", keys.get("fused_attention", False)),
        causal=_flag("causal", keys.get("causal", False)),
        description=description,
    )


def load_spec(path: str | Path) -> SweepSpec:
    """Read a spec file; model and hardware paths in it are relative to its folder."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise SpecError(f"spec: {str(path)!r} does not exist") from None
    except IsADirectoryError:
        raise SpecError(f"spec: {str(path)!r} is a directory, expected a .toml file") from None
    try:
        table = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path}: not valid TOML ({exc})") from None
    return parse_spec(base=path.parent, where=str(path), **table)


def default_spec() -> SweepSpec:
    """The reference sweep, Llama-13B on the A40 (:data:`DEFAULT_SPEC_TOML`)."""
    return parse_spec(where="default spec", **tomllib.loads(DEFAULT_SPEC_TOML))
