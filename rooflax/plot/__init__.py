"""Charts of sweep frames: rooflines, families, regime maps (matplotlib Figures)."""

from rooflax.plot.maps import ratio_map, regime_map
from rooflax.plot.measured import measured
from rooflax.plot.roofline import roofline

__all__ = ["measured", "ratio_map", "regime_map", "roofline"]
