"""Charts of sweep frames: rooflines, families, regime maps, the interconnect roof (matplotlib Figures)."""

from rooflax.plot.draw import draw
from rooflax.plot.files import chart_path, save
from rooflax.plot.interconnect import interconnect
from rooflax.plot.maps import ratio_map, regime_map
from rooflax.plot.measured import (
    error_table,
    measured,
    measured_errors,
    over_measured,
    read_validation,
    write_validation,
)
from rooflax.plot.plan import ChartPlan, plan_chart
from rooflax.plot.roofline import family, roofline
from rooflax.plot.speculative import speculation_map

__all__ = ["ChartPlan", "chart_path", "draw", "error_table", "family", "interconnect", "measured", "measured_errors",
           "over_measured", "plan_chart", "ratio_map", "read_validation", "regime_map", "roofline", "save",
           "speculation_map", "write_validation"]
