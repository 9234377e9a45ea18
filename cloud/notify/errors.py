"""Errors raised while sending notifications."""

from __future__ import annotations

from cloud.errors import CloudError


class NotifyError(CloudError):
    """A message could not be sent. ``retryable`` says whether trying again may help
    (a refused connection or a 5xx may pass later; a refused recipient will not)."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class NotifyConfigError(NotifyError):
    """Notification configuration is invalid (names the setting and the value)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False)
