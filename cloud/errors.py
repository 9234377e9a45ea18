"""Errors raised by the cloud side."""

from schemas.errors import AkitaError


class CloudError(AkitaError):
    """Base for cloud errors."""


class StoreError(CloudError):
    """A time-series store call failed. ``retryable`` says whether trying again may help."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class SettingsError(CloudError):
    """Cloud settings are invalid (names the setting)."""
