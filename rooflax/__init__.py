"""rooflax: roofline analysis of LLM inference over huge grids, with JAX, polars and matplotlib.

>>> import rooflax
>>> df = rooflax.sweep(batch=[1, 64], seq_len=[2048], phases=["decode"])
>>> df.filter(op="up_proj").get_column("bound").to_list()
['memory', 'memory']
"""

from rooflax import plot
from rooflax._version import __version__
from rooflax.answers.compare import compare
from rooflax.answers.crossover import crossover
from rooflax.answers.report import Report, describe
from rooflax.answers.speculate import best_k, speculate, unfit_cells
from rooflax.calibration.measurements import read_measurements
from rooflax.config.dtypes import DTYPES, DtypePolicy, get_dtype
from rooflax.config.hardware import HARDWARE, Hardware, get_hardware, load_hardware
from rooflax.config.models import MODELS, Model, get_model, load_model
from rooflax.config.spec import SweepSpec, default_spec, load_spec, parse_spec
from rooflax.cost.ops import GROUPS, OP_NAMES, PHASES
from rooflax.data.dataset import sweep_to_parquet
from rooflax.data.export import export_dataset
from rooflax.data.frames import OPS_SCHEMA, SUMMARY_SCHEMA, sweep
from rooflax.data.scan import DatasetInfo, check_dataset, dataset_metadata, scan_dataset
from rooflax.engine.evaluate import evaluate
from rooflax.errors import DeviceError, RooflaxError, SpecError

__all__ = [
    "DTYPES", "GROUPS", "HARDWARE", "MODELS", "OPS_SCHEMA", "OP_NAMES", "PHASES", "SUMMARY_SCHEMA", "DatasetInfo",
    "DeviceError", "DtypePolicy", "Hardware", "Model", "Report", "RooflaxError", "SpecError", "SweepSpec",
    "__version__", "best_k", "check_dataset", "compare", "crossover", "dataset_metadata", "default_spec", "describe",
    "evaluate", "export_dataset", "get_dtype", "get_hardware", "get_model", "load_hardware", "load_model",
    "load_spec", "parse_spec", "plot", "read_measurements", "scan_dataset", "speculate", "sweep", "sweep_to_parquet",
    "unfit_cells",
]
