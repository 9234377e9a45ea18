"""Field protocol drivers behind one small interface (contract D).

``create(device, config)`` returns a :class:`~edge.drivers.base.PollDriver` (Modbus
TCP, RTU on a shared serial bus, RTU over TCP) or a
:class:`~edge.drivers.base.StreamDriver` (NMEA 0183 GPS, AKCU call units).
"""

from __future__ import annotations

from edge.config import Device, Driver, EdgeConfig
from edge.drivers.base import PollDriver, StreamDriver
from edge.errors import ConfigError

__all__ = ["PollDriver", "StreamDriver", "create"]


def create(device: Device, config: EdgeConfig) -> PollDriver | StreamDriver:
    """The driver for ``device``; serial buses and shared lines are shared per process."""
    if device.driver in (Driver.MODBUS_TCP, Driver.MODBUS_RTU, Driver.MODBUS_RTU_OVER_TCP):
        from edge.drivers.modbus.driver import ModbusDriver

        bus = None
        if device.driver is Driver.MODBUS_RTU:
            bus = next((b for b in config.buses if b.name == device.bus), None)
            if bus is None:
                raise ConfigError(f"device {device.id!r} -> bus: no bus named {device.bus!r}")
        return ModbusDriver(device, bus=bus)
    if device.driver is Driver.NMEA:
        from edge.drivers.nmea.driver import NmeaDriver

        return NmeaDriver(device)
    if device.driver is Driver.CALL_UNIT:
        from edge.drivers.callunit.driver import CallUnitDriver

        return CallUnitDriver(device)
    raise ConfigError(f"device {device.id!r} -> driver: unsupported {device.driver!r}")
