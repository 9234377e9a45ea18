"""vehicle: GPS fix every 30 s, served as an NMEA stream; its generated edge config
also names the vehicle's type and route (a [[devices]] entry's own keys)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from firmware_sim.parts import SimPart, Transport, register

if TYPE_CHECKING:
    from firmware_sim.plan import SimDevice


def edge_keys(dev: SimDevice) -> dict[str, Any]:
    assert dev.info.vehicle_type is not None
    return {"vehicle_type": dev.info.vehicle_type.value, "route_id": dev.facts["route_id"]}


PART = register(
    SimPart("vehicle", poll_s=30.0, fleet=True, transport=Transport.NMEA, edge_keys=edge_keys)
)
