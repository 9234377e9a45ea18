"""Registers ``nmea``: NMEA 0183 GPS (RMC + GGA) of a vehicle, serial or a TCP stream."""

from __future__ import annotations

from typing import TYPE_CHECKING

from edge.drivers.registry import DriverSpec, needs_line, register

if TYPE_CHECKING:
    from edge.config import Device, EdgeConfig
    from edge.drivers.base import StreamDriver

NAME = "nmea"


def make(device: Device, config: EdgeConfig) -> StreamDriver:
    from edge.drivers.nmea.driver import NmeaDriver  # pyserial only when used

    return NmeaDriver(device)


register(DriverSpec(NAME, make, needs_line, kinds=("vehicle",)))
