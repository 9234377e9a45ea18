"""Field protocol drivers behind one small interface (contract D).

``create(device, config)`` returns a :class:`~edge.drivers.base.PollDriver` (Modbus
TCP, RTU on a shared serial bus, RTU over TCP) or a
:class:`~edge.drivers.base.StreamDriver` (NMEA 0183 GPS, AKCU call units), built by the
driver registered under the device's ``driver`` name (:mod:`edge.drivers.registry`:
each driver folder's ``spec.py`` registers itself).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edge.drivers.base import PollDriver, StreamDriver
from edge.drivers.registry import UnknownDriver, spec
from edge.errors import ConfigError

if TYPE_CHECKING:
    from edge.config import Device, EdgeConfig

__all__ = ["PollDriver", "StreamDriver", "create"]


def create(device: Device, config: EdgeConfig) -> PollDriver | StreamDriver:
    """The driver for ``device``; serial buses and shared lines are shared per process."""
    try:
        found = spec(device.driver)
    except UnknownDriver as exc:
        raise ConfigError(f"device {device.id!r} -> driver: {exc}") from None
    return found.make(device, config)
