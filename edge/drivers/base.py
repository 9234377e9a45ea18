"""The two driver shapes every field protocol fits into.

A :class:`PollDriver` is asked for values (Modbus); a :class:`StreamDriver` pushes
values as the device sends them (NMEA GPS, call units). Both raise
:class:`edge.errors.DeviceError` with a short ``reason`` that ends up in the
device's offline status.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # edge.config validates drivers against the registry: no import cycle
    from edge.config import Device


class PollDriver(ABC):
    """A device the gateway polls. ``requests`` counts protocol requests sent so far.

    ``missing`` holds, after each :meth:`read`, the fields that poll could not read and
    why (one failing register block does not take the device's other fields with it).
    """

    requests: int
    missing: dict[str, str]

    def __init__(self, device: Device) -> None:
        self.device = device
        self.requests = 0
        self.missing = {}

    @abstractmethod
    async def open(self) -> None:
        """Prepare the connection; a device that is down is not an error here."""

    @abstractmethod
    async def read(self) -> dict[str, Any]:
        """One poll: field -> decoded, scaled value; raises DeviceError when nothing answers."""

    @abstractmethod
    async def close(self) -> None:
        """Release the connection (idempotent)."""


class StreamDriver(ABC):
    """A device that talks on its own. ``garbage`` counts frames refused (bad checksum...)."""

    garbage: int
    last_error: str | None

    def __init__(self, device: Device) -> None:
        self.device = device
        self.garbage = 0
        self.last_error = None

    @abstractmethod
    async def open(self) -> None:
        """Open the line. Raises DeviceError when the port or host cannot be opened."""

    @abstractmethod
    def stream(self) -> AsyncIterator[dict[str, Any]]:
        """Values dicts as they arrive; ends only when the driver is closed."""

    @abstractmethod
    async def close(self) -> None:
        """Close the line (idempotent)."""
