"""Errors raised by the edge gateway."""

from schemas.errors import AkitaError


class EdgeError(AkitaError):
    """Base for edge gateway errors."""


class ConfigError(EdgeError):
    """The gateway config is invalid. The message names the file, the device and the field."""

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


class DeviceError(EdgeError):
    """A device could not be read. ``reason`` is what the offline status reports."""

    def __init__(self, device_id: str, reason: str) -> None:
        super().__init__(f"{device_id}: {reason}")
        self.device_id = device_id
        self.reason = reason


class SpoolError(EdgeError):
    """The on-disk spool failed (disk full, corrupt file)."""
