"""Charts of sweep frames: rooflines, families, regime maps, the interconnect roof (matplotlib Figures)."""

from rooflax.plot.interconnect import interconnect
from rooflax.plot.maps import ratio_map, regime_map
from rooflax.plot.measured import measured
from rooflax.plot.roofline import roofline

__all__ = ["interconnect", "measured", "ratio_map", "regime_map", "roofline"]
