import atexit
import os
import shutil
import tempfile

import jax
import matplotlib
import pytest
from devices import on_devices
from hypothesis import HealthCheck, settings

matplotlib.use("Agg")

# Four CPU devices in the test process (as equinox's conftest does), so the device-count tests shard sweeps over
# several devices in-process. Set before JAX starts its backend (importing rooflax does not start it).
CPU_DEVICES = 4
jax.config.update("jax_num_cpu_devices", CPU_DEVICES)

# One persistent compilation cache for the whole run, made by the controlling process and inherited by the
# xdist workers and the subprocesses, so that a function compiled by one is read from disk by the others.
if "ROOFLAX_TEST_JAX_CACHE" not in os.environ:
    os.environ["ROOFLAX_TEST_JAX_CACHE"] = tempfile.mkdtemp(prefix="rooflax-test-jax-cache-")
    atexit.register(shutil.rmtree, os.environ["ROOFLAX_TEST_JAX_CACHE"], ignore_errors=True)
for _name, _value in (
    ("jax_compilation_cache_dir", os.environ["ROOFLAX_TEST_JAX_CACHE"]),
    ("jax_persistent_cache_min_compile_time_secs", 0),
    ("jax_persistent_cache_min_entry_size_bytes", -1),
):
    jax.config.update(_name, _value)
    os.environ[_name.upper()] = str(_value)

# No per-example time limit: the suite runs on shared machines, and timing is not what these tests check.
settings.register_profile("rooflax", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("rooflax")


@pytest.fixture(autouse=True)
def _one_device(monkeypatch):
    """Sweeps run on one device unless a test picks more with ``on_devices``: sharded over four CPU devices, a
    layout sweep compiles several times slower, and only the device-count tests need that."""
    on_devices(monkeypatch, 1)
