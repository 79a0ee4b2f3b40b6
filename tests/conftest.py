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

# No per-example time limit: the suite runs on shared machines, and timing is not what these tests check.
settings.register_profile("rooflax", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("rooflax")


@pytest.fixture(autouse=True)
def _one_device(monkeypatch):
    """Sweeps run on one device unless a test picks more with ``on_devices``: sharded over four CPU devices, a
    layout sweep compiles several times slower, and only the device-count tests need that."""
    on_devices(monkeypatch, 1)
