import jax
import matplotlib
from hypothesis import HealthCheck, settings

matplotlib.use("Agg")

# Four CPU devices in the test process (as equinox's conftest does), so sweeps sharded over several devices run
# in-process (tests/devices.py picks how many a sweep uses). Set before JAX starts its backend.
CPU_DEVICES = 4
jax.config.update("jax_num_cpu_devices", CPU_DEVICES)

# No per-example time limit: the suite runs on shared machines, and timing is not what these tests check.
settings.register_profile("rooflax", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("rooflax")
