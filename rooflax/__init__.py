"""rooflax: roofline analysis of LLM inference over huge grids, with JAX, polars and matplotlib.

>>> import rooflax
>>> df = rooflax.sweep(batch=[1, 64], seq_len=[2048], phases=["decode"])
>>> df.filter(op="up_proj").get_column("bound").to_list()
['memory', 'memory']

Each public name is imported from its module on first use, so ``import rooflax`` (and the
command line's ``--help``) loads neither JAX nor polars until a name that needs them is read.
"""

import importlib

from rooflax._version import __version__

#: The module each public name comes from.
_SOURCES = {
    "rooflax.answers.compare": ("compare",),
    "rooflax.answers.crossover": ("crossover",),
    "rooflax.answers.report": ("Report", "describe"),
    "rooflax.answers.speculate": ("best_k", "speculate", "unfit_cells"),
    "rooflax.calibration.fit": ("accuracy", "calibrate"),
    "rooflax.calibration.measurements": ("read_measurements",),
    "rooflax.calibration.predict": ("predict_measurements",),
    "rooflax.config.dtypes": ("DTYPES", "DtypePolicy", "get_dtype"),
    "rooflax.config.hardware": ("HARDWARE", "Hardware", "get_hardware", "load_hardware"),
    "rooflax.config.models": ("MODELS", "LayerKind", "Model", "get_model", "load_model"),
    "rooflax.config.spec": ("SpecKeys", "SweepSpec", "default_spec", "load_spec", "parse_spec"),
    "rooflax.cost.ops": ("OP_NAMES",),
    "rooflax.data.dataset": ("sweep_to_parquet",),
    "rooflax.data.export": ("export_dataset",),
    "rooflax.data.frames": ("OPS_SCHEMA", "SUMMARY_SCHEMA", "sweep"),
    "rooflax.data.scan": ("DatasetInfo", "check_dataset", "dataset_metadata", "scan_dataset"),
    "rooflax.engine.evaluate": ("evaluate",),
    "rooflax.errors": ("DeviceError", "RooflaxError", "SpecError"),
    "rooflax.names": ("GROUPS", "LAYER_KINDS", "PHASES"),
}
_MODULE_OF = {name: module for module, names in _SOURCES.items() for name in names}

__all__ = [
    "DTYPES",
    "GROUPS",
    "HARDWARE",
    "LAYER_KINDS",
    "MODELS",
    "OPS_SCHEMA",
    "OP_NAMES",
    "PHASES",
    "SUMMARY_SCHEMA",
    "DatasetInfo",
    "DeviceError",
    "DtypePolicy",
    "Hardware",
    "LayerKind",
    "Model",
    "Report",
    "RooflaxError",
    "SpecError",
    "SpecKeys",
    "SweepSpec",
    "__version__",
    "accuracy",
    "best_k",
    "calibrate",
    "check_dataset",
    "compare",
    "crossover",
    "dataset_metadata",
    "default_spec",
    "describe",
    "evaluate",
    "export_dataset",
    "get_dtype",
    "get_hardware",
    "get_model",
    "load_hardware",
    "load_model",
    "load_spec",
    "parse_spec",
    "plot",
    "predict_measurements",
    "read_measurements",
    "scan_dataset",
    "speculate",
    "sweep",
    "sweep_to_parquet",
    "unfit_cells",
]


def __getattr__(name: str):
    """A public name, imported from its module on first use (and kept)."""
    if name == "plot":
        value = importlib.import_module("rooflax.plot")
    elif name in _MODULE_OF:
        value = getattr(importlib.import_module(_MODULE_OF[name]), name)
    else:
        raise AttributeError(f"module 'rooflax' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
