"""Charts of sweep frames: rooflines, families, regime maps, the interconnect roof (matplotlib Figures)."""

from rooflax.plot.files import chart_path, save
from rooflax.plot.interconnect import interconnect
from rooflax.plot.maps import ratio_map, regime_map
from rooflax.plot.measured import measured
from rooflax.plot.plan import ChartPlan, plan_chart
from rooflax.plot.roofline import roofline
from rooflax.plot.speculative import speculation_map

__all__ = ["ChartPlan", "chart_path", "interconnect", "measured", "plan_chart", "ratio_map", "regime_map", "roofline",
           "save", "speculation_map"]
