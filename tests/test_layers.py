"""The architecture as a test: the layers' import rule, no import cycle, one leaf of shared names (issue 18 item 3).

Imports are read from the source with :mod:`ast`, not by importing, so a lazy import inside a
function counts for the layer rule (it runs sooner or later) and an ``if TYPE_CHECKING:``
import counts for cycles (a type checker follows it).
"""

from __future__ import annotations

import ast
import graphlib
import os
import subprocess
import sys
from pathlib import Path

import rooflax
import rooflax.names

PACKAGE = Path(rooflax.__file__).parent
#: Layers the cost model may never import, not even lazily: it is imported by them.
ABOVE_COST = ("engine", "data", "answers", "plot", "cli", "validate", "calibration")


def _modules(root: Path, package: str) -> dict[str, Path]:
    """Every module of the package under ``root`` by dotted name (a package by its ``__init__``)."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = [package, *path.relative_to(root).with_suffix("").parts]
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _statements(node: ast.AST, anywhere: bool):
    """The imports under ``node``: those run on import (inside ``if``, ``try``, ``with``, classes), or all."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.Import | ast.ImportFrom):
            yield child
        elif anywhere or not isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            yield from _statements(child, anywhere)


def _imports(module: str, path: Path, modules: dict[str, Path], *, anywhere: bool = False) -> set[str]:
    """The package's modules that ``module`` imports (each name resolved to the module that defines it)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in _statements(ast.parse(path.read_text(encoding="utf-8")), anywhere):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            base = node.module or ""
            if node.level:  # relative: ``.`` is the module's package, ``..`` the one above
                parts = package.split(".")
                base = ".".join([*parts[: len(parts) - node.level + 1], *([base] if base else [])])
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != module:
                found.add(name)
    return found


def _graph(root: Path, package: str, *, anywhere: bool = False) -> dict[str, set[str]]:
    modules = _modules(root, package)
    return {module: _imports(module, path, modules, anywhere=anywhere) for module, path in modules.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as error:
        return error.args[1]
    return None


def test_the_import_reader_sees_module_level_edges_and_cycles(tmp_path):
    """The reader on a small package: a cycle through ``if TYPE_CHECKING`` is one, a function's import is not."""
    (tmp_path / "__init__.py").write_text("")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "__init__.py").write_text("")
    (tmp_path / "a.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.sub.b import B\n")
    (tmp_path / "sub" / "b.py").write_text("from pkg import a\n\ndef f():\n    from pkg.sub import c\n")
    (tmp_path / "sub" / "c.py").write_text("from . import b\nfrom .. import a\n")
    graph = _graph(tmp_path, "pkg")
    assert graph == {
        "pkg": set(),
        "pkg.a": {"pkg.sub.b"},
        "pkg.sub": set(),
        "pkg.sub.b": {"pkg.a"},
        "pkg.sub.c": {"pkg.sub.b", "pkg.a"},
    }
    assert set(_cycle(graph)) == {"pkg.a", "pkg.sub.b"}
    assert _graph(tmp_path, "pkg", anywhere=True)["pkg.sub.b"] == {"pkg.a", "pkg.sub.c"}
    assert _cycle({"x": {"y"}, "y": set()}) is None


def test_rooflax_modules_import_no_cycle():
    graph = _graph(PACKAGE, "rooflax")
    assert {"rooflax.cost.shape", "rooflax.names"} <= graph["rooflax.cost.ops"]  # the reader sees real imports
    assert "rooflax.cost.ops" in graph["rooflax.engine.vectorized"]
    cycle = _cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_cost_layer_imports_no_engine_or_edge_module():
    """The cost model imports only itself, the config values, errors and names, never a layer built on it."""
    graph = _graph(PACKAGE, "rooflax", anywhere=True)
    cost = [module for module in graph if module.startswith("rooflax.cost.")]
    assert len(cost) >= 6
    above = tuple(f"rooflax.{layer}" for layer in ABOVE_COST)
    bad = {
        module: sorted(name for name in graph[module] if name == "rooflax" or name.startswith(above)) for module in cost
    }
    assert not any(bad.values()), {module: names for module, names in bad.items() if names}


def test_names_is_a_leaf():
    """``rooflax.names`` imports nothing, so every layer (and ``rooflax --help``) can read it."""
    tree = ast.parse(Path(rooflax.names.__file__).read_text(encoding="utf-8"))
    assert not [node for node in ast.walk(tree) if isinstance(node, ast.Import | ast.ImportFrom)]


def _vocabulary() -> dict[str, tuple[str, ...]]:
    return {
        name: value
        for name in rooflax.names.__all__
        if isinstance(value := getattr(rooflax.names, name), tuple) and all(isinstance(v, str) for v in value)
    }


def test_the_vocabulary_is_spelled_only_in_names():
    """No other module writes out a tuple of names of :mod:`rooflax.names` (in any order): it imports it."""
    vocabulary = _vocabulary()
    assert {"PHASES", "GROUPS", "PEAK_DTYPES", "BOUNDS", "LAYOUT", "CELL", "KEY_COLUMNS"} <= set(vocabulary)
    spelled = []
    for module, path in _modules(PACKAGE, "rooflax").items():
        if module == "rooflax.names":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Tuple | ast.List | ast.Set)
                and len(node.elts) > 1
                and all(isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts)
            ):
                values = [e.value for e in node.elts]
                spelled += [
                    f"{module}:{node.lineno} {name}"
                    for name, names in vocabulary.items()
                    if sorted(values) == sorted(names)
                ]
    assert not spelled


def test_the_vocabulary_is_what_the_frames_hold():
    """The names agree with the frame contract: key columns lead the schema, the enums are the names."""
    ops = rooflax.OPS_SCHEMA
    assert tuple(ops.names()[: len(rooflax.names.KEY_COLUMNS)]) == rooflax.names.KEY_COLUMNS
    assert ops["phase"].categories.to_list() == list(rooflax.names.PHASES)
    assert ops["group"].categories.to_list() == list(rooflax.names.GROUPS)
    assert ops["bound"].categories.to_list() == list(rooflax.names.BOUNDS)
    assert set(rooflax.names.PEAK_DTYPES) >= {policy.compute for policy in rooflax.DTYPES.values()}
    assert rooflax.PHASES is rooflax.names.PHASES and rooflax.GROUPS is rooflax.names.GROUPS


def test_importing_the_presets_loads_no_jax():
    code = (
        "import sys, rooflax.config.hardware, rooflax.config.models, rooflax.config.dtypes, rooflax.names; "
        "import rooflax; rooflax.get_hardware('a40'); rooflax.get_model('llama-13b'); rooflax.get_dtype('fp16'); "
        "print(sorted(m for m in ('jax', 'polars') if m in sys.modules))"
    )
    env = {**os.environ, "PYTHONPATH": str(PACKAGE.parent)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.split() == ["[]"], out.stderr
