"""call_unit: heartbeat every 30 min, served on an AKCU line; it speaks on events (its
heartbeats, button presses and cancels), so the export writes its messages."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from firmware_sim.models.base import DeviceModel
from firmware_sim.models.callunit import CallUnitModel
from firmware_sim.parts import SimPart, Transport, register
from schemas.devices import CallUnitEvent

EVENTS = {"HB": CallUnitEvent.HEARTBEAT, "BTN": CallUnitEvent.BUTTON, "CAN": CallUnitEvent.CANCEL}


def messages(model: DeviceModel, t0: float, t1: float) -> Iterator[tuple[float, dict[str, Any]]]:
    """The unit's messages in [t0, t1) as the wire's fields: the event first."""
    assert isinstance(model, CallUnitModel)
    for msg in model.messages(t0, t1):
        yield msg.t, {"event": EVENTS[msg.type].value, **msg.values}


PART = register(
    SimPart("call_unit", poll_s=1800.0, fleet=True, transport=Transport.AKCU, events=messages)
)
