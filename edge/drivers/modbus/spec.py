"""Registers the three Modbus drivers (TCP, RTU on a ``[[buses]]`` line, RTU over TCP)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from edge.drivers.registry import DriverSpec, register
from edge.errors import ConfigError

if TYPE_CHECKING:
    from edge.config import Device, EdgeConfig
    from edge.drivers.base import PollDriver

TCP = "modbus_tcp"
RTU = "modbus_rtu"  # RTU framing on a serial bus from [[buses]]
RTU_OVER_TCP = "modbus_rtu_over_tcp"  # RTU framing through a serial-to-TCP converter


def make(device: Device, config: EdgeConfig) -> PollDriver:
    from edge.drivers.modbus.driver import ModbusDriver  # pymodbus only when used

    bus = None
    if device.driver == RTU:
        bus = next((b for b in config.buses if b.name == device.bus), None)
        if bus is None:
            raise ConfigError(f"device {device.id!r} -> bus: no bus named {device.bus!r}")
    return ModbusDriver(device, bus=bus)


def _slave(device: Device) -> None:
    if device.unit_id > 255:
        raise ValueError(f"unit_id {device.unit_id} is not a Modbus slave id (0..255)")
    if not device.registers:
        raise ValueError(f"driver {device.driver} needs at least one [[devices.registers]] entry")


def check_tcp(device: Device) -> None:
    if not (device.host and device.port):
        raise ValueError(f"driver {device.driver} needs 'host' and 'port'")
    _slave(device)


def check_rtu(device: Device) -> None:
    if not device.bus:
        raise ValueError("driver modbus_rtu needs 'bus' (the name of a [[buses]] entry)")
    _slave(device)


_COMMON = {"unit_id_required": True, "takes_registers": True, "commands": "write"}
register(DriverSpec(TCP, make, check_tcp, **_COMMON))  # type: ignore[arg-type]
register(DriverSpec(RTU, make, check_rtu, uses_bus=True, **_COMMON))  # type: ignore[arg-type]
register(DriverSpec(RTU_OVER_TCP, make, check_tcp, **_COMMON))  # type: ignore[arg-type]
