"""Road underpass / low-point flood (冠水) sensor with a tipping-bucket rain gauge.

FIWARE: FloodMonitoring (dataModel.Environment): ``depth`` -> ``currentLevel`` (CMT),
``rain_intensity`` -> ``precipitation`` (H67, mm/h).
"""

from __future__ import annotations

from schemas.kinds.base import Kind, Values, quantity


class FloodSensorValues(Values):
    """Road underpass / low-point flood (冠水) sensor with a tipping-bucket rain gauge."""

    depth: float | None = quantity("cm", "CMT", "currentLevel", ge=0, le=1000, desc="Water depth")
    rain_intensity: float | None = quantity(
        "mm/h", "H67", "precipitation", ge=0, le=500, desc="Rain intensity"
    )


KIND = Kind(
    name="flood_sensor",
    values=FloodSensorValues,
    title="Road flood sensor",
    domain="flood",
    fiware="FloodMonitoring",
    headline="depth",
)
