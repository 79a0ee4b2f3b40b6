"""The public API is consistent (issue 18 item 6): spec first, read-only presets, keyword-only values,
typed spec keywords, chart-only ``rooflax.plot``, and every public function's arguments documented."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil
import re
import types

import pytest
from matplotlib.figure import Figure

import rooflax
import rooflax.plot
from rooflax.config import spec as spec_module
from rooflax.config.spec import SpecKeys, SweepKeys
from rooflax.cost.ops import layer_ops
from rooflax.names import SWEEP_AXES


def _public_functions():
    for module in (rooflax, rooflax.plot):
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isfunction(obj):
                yield f"{module.__name__}.{name}", obj


def _modules():
    """Every module of the package (but ``python -m rooflax.cli``'s entry point), imported."""
    for info in pkgutil.walk_packages(rooflax.__path__, "rooflax."):
        if not info.name.endswith("__main__"):
            yield importlib.import_module(info.name)


def test_every_function_that_takes_a_spec_takes_it_first():
    """A spec given positionally is the first argument (``describe`` reads a dataset, and takes ``spec=``)."""
    takes = {
        name: list(parameters)
        for name, f in _public_functions()
        if (spec := (parameters := inspect.signature(f).parameters).get("spec")) is not None
        and spec.kind is not inspect.Parameter.KEYWORD_ONLY
    }
    assert {"rooflax.compare", "rooflax.sweep", "rooflax.crossover", "rooflax.speculate"} <= set(takes)
    assert {name: params[0] for name, params in takes.items() if params[0] != "spec"} == {}


def test_compare_takes_the_spec_then_the_accelerators_as_keywords():
    keys = dict(phases=["decode"], batch=[1, 8], seq_len=[512])
    spec = rooflax.parse_spec(model="llama-7b", **keys)
    by_spec = rooflax.compare(spec, a="a40", b="l4")
    assert by_spec.equals(rooflax.compare(a="a40", b="l4", model="llama-7b", **keys))
    assert set(by_spec.get_column("a")) == {"a40"} and set(by_spec.get_column("b")) == {"l4"}
    swapped = rooflax.compare(spec, a="l4", b="a40").get_column("speedup").to_list()
    assert swapped == pytest.approx([1 / s for s in by_spec.get_column("speedup").to_list()], rel=1e-12)
    parameters = inspect.signature(rooflax.compare).parameters
    assert [parameters[name].kind for name in ("a", "b")] == [inspect.Parameter.KEYWORD_ONLY] * 2
    with pytest.raises(TypeError, match="positional"):
        rooflax.compare("a40", "l4", **keys)  # the old order (a, b, spec) is refused, not misread


@pytest.mark.parametrize("name", ["HARDWARE", "MODELS", "DTYPES"])
def test_preset_registries_are_read_only(name):
    registry = getattr(rooflax, name)
    first = next(iter(registry))
    assert isinstance(registry, types.MappingProxyType)
    with pytest.raises(TypeError, match="does not support item assignment"):
        registry["mine"] = registry[first]
    with pytest.raises(TypeError, match="does not support item deletion"):
        del registry[first]
    for method in ("update", "pop", "clear", "setdefault"):
        with pytest.raises(AttributeError):
            getattr(registry, method)
    assert first in registry and len(registry) == len(dict(registry))


def test_presets_are_still_found_by_name():
    assert rooflax.get_hardware("a40") is rooflax.HARDWARE["a40"]
    assert rooflax.get_model("llama-13b") is rooflax.MODELS["llama-13b"]
    assert rooflax.get_dtype("fp16") is rooflax.DTYPES["fp16"]


def test_every_value_dataclass_is_frozen_and_keyword_only():
    classes = {
        f"{m.__name__}.{name}": obj
        for m in _modules()
        for name, obj in vars(m).items()
        if isinstance(obj, type) and dataclasses.is_dataclass(obj) and obj.__module__ == m.__name__
    }
    assert {"rooflax.engine.vectorized.Task", "rooflax.answers.report.Report", "rooflax.cost.ops.OpDef"} <= set(classes)
    positional = sorted(name for name, cls in classes.items() if not all(f.kw_only for f in dataclasses.fields(cls)))
    assert positional == []
    assert sorted(name for name, cls in classes.items() if not cls.__dataclass_params__.frozen) == []
    with pytest.raises(TypeError, match="positional"):
        rooflax.Report("frame", "ops", 0, "", None, None, None, None, (), None)


def test_evaluate_returns_a_typed_value_with_the_frames_columns():
    """``evaluate`` gives an Evaluation: ops in layer order with the long frame's columns, the totals with the
    summary's; read-only, its repr names the totals and the ops."""
    r = rooflax.evaluate(phase="decode", batch=8, seq_len=512, fused_attention=True)
    assert type(r) is rooflax.Evaluation and r.__slots__
    assert all(type(op) is rooflax.OpEvaluation for op in r.ops.values())
    keys = ("model", "hardware", "dtype", "batch", "seq_len", "hidden", "tp", "pp", "ep", "spec_k", "phase")
    columns = [f.name for f in dataclasses.fields(rooflax.OpEvaluation)]
    assert columns == [c for c in rooflax.OPS_SCHEMA if c not in keys]
    assert list(r.totals()) == [c for c in rooflax.SUMMARY_SCHEMA if c not in keys]
    assert [op.op for op in r.ops.values()] == list(r.ops) == [op.name for op in layer_ops(fused_attention=True)]
    assert r.totals()["time_s"] == r.time_s and r.fits_in_memory is True
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.time_s = 0.0
    with pytest.raises(TypeError, match="does not support item assignment"):
        r.ops["attention"] = r.ops["o_proj"]
    assert repr(r).startswith(f"Evaluation(flops={r.flops!r}, bytes={r.bytes!r}, ")
    assert repr(r).endswith(f"ops=<{len(r.ops)}: {', '.join(r.ops)}>)")


def test_spec_keys_are_the_keys_a_spec_file_takes():
    """``SpecKeys`` names exactly the keys the parser accepts (top-level and axes), ``SweepKeys`` all but tree."""
    keys = SpecKeys.__required_keys__ | SpecKeys.__optional_keys__
    assert SpecKeys.__required_keys__ == frozenset()
    assert keys == {*spec_module._TOP_KEYS, *SWEEP_AXES}
    assert SweepKeys.__optional_keys__ == keys - {"tree"}
    grid = {"batch": [1], "seq_len": [64]}
    for key in keys - set(grid):  # the parser knows each key; None is the same as leaving it out
        assert rooflax.parse_spec(**grid, **{key: None}) == rooflax.parse_spec(**grid)
    assert rooflax.SpecKeys is SpecKeys


def test_spec_keywords_are_typed():
    typed = {
        "rooflax.sweep": "SpecKeys",
        "rooflax.sweep_to_parquet": "SpecKeys",
        "rooflax.crossover": "SpecKeys",
        "rooflax.compare": "SpecKeys",
        "rooflax.parse_spec": "SpecKeys",
        "rooflax.load_spec": "SpecKeys",
        "rooflax.speculate": "SweepKeys",
    }
    functions = dict(_public_functions())
    for name, keys in typed.items():
        assert inspect.signature(functions[name]).parameters["keys"].annotation == f"Unpack[{keys}]", name
    assert inspect.signature(rooflax.SweepSpec.with_keys).parameters["keys"].annotation == "Unpack[SpecKeys]"


def test_plot_exports_only_chart_functions():
    for name in rooflax.plot.__all__:
        function = getattr(rooflax.plot, name)
        assert inspect.isfunction(function), name
        returns = inspect.signature(function).return_annotation
        assert name == "save" or "Figure" in returns, f"{name} returns {returns}"
    assert rooflax.plot.save.__module__ == "rooflax.plot.files"
    assert isinstance(
        rooflax.plot.regime_map(rooflax.sweep(phases=["decode"], batch=[1, 2], seq_len=[64, 128])), Figure
    )
    for plumbing in (
        "chart_path",
        "plan_chart",
        "ChartPlan",
        "error_table",
        "read_validation",
        "write_validation",
        "validation_path",
        "measured_errors",
    ):
        assert not hasattr(rooflax.plot, plumbing), plumbing


def _documented(doc: str) -> set[str] | None:
    """The argument names of a Google-style ``Args:`` section (``a, b:`` documents two), or None without one."""
    lines = doc.splitlines()
    if "Args:" not in lines:
        return None
    names = set()
    for line in lines[lines.index("Args:") + 1 :]:
        if line.strip() and not line.startswith(" "):
            break
        entry = re.match(r"^    (\*{0,2}\w+(?:, \*{0,2}\w+)*)(?: \([^)]*\))?:", line)
        if entry:
            names |= {name.lstrip("*") for name in entry.group(1).split(", ")}
    return names


def test_the_args_reader_reads_google_sections():
    doc = "Do it.\n\nArgs:\n    a, b: two.\n        more on b: not an entry\n    **keys: rest.\n\nReturns:\n    x: no."
    assert _documented(doc) == {"a", "b", "keys"}
    assert _documented("Do it.\n\nReturns:\n    x.") is None


def test_every_public_function_documents_its_arguments():
    undocumented = {}
    for name, function in _public_functions():
        parameters = set(inspect.signature(function).parameters)
        documented = _documented(inspect.getdoc(function) or "")
        if parameters and (documented is None or parameters - documented):
            undocumented[name] = sorted(parameters - (documented or set()))
    assert undocumented == {}
