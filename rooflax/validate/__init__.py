"""Validation on the device: real products timed beside the roofline's predictions."""

from rooflax.validate.device import DeviceInfo, detect_device, preset_for_kind
from rooflax.validate.run import (
    DEFAULT_MODEL,
    DEFAULT_POINTS,
    Validation,
    calibrate,
    points_from_spec,
    spread_points,
    validate,
)
from rooflax.validate.timing import time_call

__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_POINTS",
    "DeviceInfo",
    "Validation",
    "calibrate",
    "detect_device",
    "points_from_spec",
    "preset_for_kind",
    "spread_points",
    "time_call",
    "validate",
]
