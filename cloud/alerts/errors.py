"""Errors of the alert lifecycle."""

from cloud.errors import CloudError


class AlertError(CloudError):
    """Base for alert lifecycle errors."""


class AlertNotFound(AlertError):
    """No alert (or maintenance window) with that id."""


class AlertStateError(AlertError):
    """The transition is not allowed from the alert's current state."""
