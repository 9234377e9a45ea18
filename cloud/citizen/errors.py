"""Errors of the citizen module."""

from __future__ import annotations

from cloud.errors import CloudError


class CitizenError(CloudError):
    """Base for citizen-module errors."""


class FormError(CitizenError):
    """A submitted form is invalid. ``errors`` maps field name -> Japanese message."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


class PhotoError(CitizenError):
    """An uploaded photo was refused (too large, not JPEG/PNG, unreadable)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
