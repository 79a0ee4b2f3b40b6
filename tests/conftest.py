import matplotlib
from hypothesis import HealthCheck, settings

matplotlib.use("Agg")

# No per-example time limit: the suite runs on shared machines, and timing is not what these tests check.
settings.register_profile("rooflax", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("rooflax")
