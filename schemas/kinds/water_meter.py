"""Household smart water meter read over LPWA (LoRaWAN through a network server).

Its uplinks reach the city through the network server's MQTT integration, not through a
gateway's serial line: ``cloud/lpwa`` decodes them (one codec per meter model) into
readings of this kind. A reading is one hour of the meter: the index at the end of the
hour, so a reading's time is the hour it describes, never the uplink's time.

FIWARE: WaterConsumptionObserved (dataModel.WaterConsumption); ``leak`` ->
``alarmFlowPersistence`` (continuous use). The other fields have no attribute there we
are sure of and keep our names. Never public: a household's consumption shows whether
anyone is at home.
"""

from __future__ import annotations

from pydantic import Field

from schemas.kinds.base import Kind, Offline, Values, Via, quantity


class WaterMeterValues(Values):
    """One hour of a household meter: index, reverse volume, battery, radio, alarm bits."""

    index: float | None = quantity(
        "m³", "MTQ", None, ge=0, le=1e7, desc="Forward index at the end of the hour"
    )
    reverse_volume: float | None = quantity(
        "m³", "MTQ", None, ge=0, le=1e5, desc="Reverse-flow volume since installation"
    )
    battery: float | None = quantity("%", "P1", "batteryLevel", ge=0, le=100, desc="Battery")
    rssi: float | None = quantity("dBm", "2N", None, ge=-160, le=20, desc="Best gateway RSSI")
    snr: float | None = quantity("dB", "2N", None, ge=-40, le=40, desc="Best gateway SNR")
    leak: bool | None = Field(default=None, description="Meter's own leak alarm bit")
    burst: bool | None = Field(default=None, description="Meter's burst alarm bit")
    tamper: bool | None = Field(default=None, description="Tamper or magnetic interference")
    dry_pipe: bool | None = Field(default=None, description="Pipe empty (no water)")
    low_battery: bool | None = Field(default=None, description="Meter's low-battery bit")


KIND = Kind(
    name="water_meter",
    values=WaterMeterValues,
    title="Household water meter",
    domain="water",
    fiware="WaterConsumptionObserved",
    offline=Offline.EVENTS,  # speaks when it chooses (Class A): silence is judged in days
    public=False,
    headline="index",
    via=Via.LPWA,  # through a network server (akita cloud lpwa), never a gateway
)
