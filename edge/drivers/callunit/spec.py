"""Registers ``call_unit``: emergency-call units on an AKCU line (serial or TCP)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from edge.drivers.registry import DriverSpec, needs_line, register

if TYPE_CHECKING:
    from edge.config import Device, EdgeConfig
    from edge.drivers.base import StreamDriver

NAME = "call_unit"


def make(device: Device, config: EdgeConfig) -> StreamDriver:
    from edge.drivers.callunit.driver import CallUnitDriver  # pyserial only when used

    return CallUnitDriver(device)


def check(device: Device) -> None:
    if device.unit_id < 1:
        raise ValueError("unit_id must be 1..65535 for a call unit")
    needs_line(device)


register(DriverSpec(NAME, make, check, kinds=("call_unit",), commands="notice"))
