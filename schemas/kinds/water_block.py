"""Distribution-block (DMA) inlet meter.

FIWARE: WaterObserved (dataModel.WaterQuality/Environment): ``flow`` -> ``flow`` (MQH),
``pressure`` -> ``pressure`` (WaterObserved uses hPa; we keep MPa and ``unitCode`` says
so), ``totaliser`` -> ``totalFlow`` (MTQ). A meter's diagnostics (temperatures, signal
quality, error bits) are the device's declared extra fields, not fields of the kind.
"""

from __future__ import annotations

from schemas.kinds.base import Kind, Values, quantity


class WaterBlockValues(Values):
    """Distribution-block (DMA) inlet meter: flow, pressure, totaliser."""

    flow: float | None = quantity("m³/h", "MQH", "flow", ge=-5000, le=50000, desc="Volumetric flow")
    pressure: float | None = quantity(
        "MPa", "MPA", "pressure", ge=-0.1, le=2.5, desc="Line pressure"
    )
    totaliser: float | None = quantity(
        "m³", "MTQ", "totalFlow", ge=0, le=1e12, desc="Forward totaliser"
    )


KIND = Kind(
    name="water_block",
    values=WaterBlockValues,
    title="Water distribution block",
    domain="water",
    fiware="WaterObserved",
    headline="flow",
)
