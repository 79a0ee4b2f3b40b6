"""Charts of sweep frames (rooflines, families, regime maps, the interconnect roof) and the serving frontier.

Only chart functions are exported, and :func:`save` to write one. What the command line
needs besides (checking a chart's path or a sweep's chart before the work, reading and
writing validation results, the table of measured errors) lives in the modules
:mod:`rooflax.plot.files`, :mod:`rooflax.plot.plan` and ``rooflax/plot/measured.py``.
"""

from rooflax.plot.draw import draw
from rooflax.plot.files import save
from rooflax.plot.frontier import frontier_chart
from rooflax.plot.interconnect import interconnect
from rooflax.plot.maps import ratio_map, regime_map
from rooflax.plot.measured import measured, over_measured
from rooflax.plot.roofline import family, roofline
from rooflax.plot.speculative import speculation_map

__all__ = [
    "draw",
    "family",
    "frontier_chart",
    "interconnect",
    "measured",
    "over_measured",
    "ratio_map",
    "regime_map",
    "roofline",
    "save",
    "speculation_map",
]
