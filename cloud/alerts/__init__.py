"""The alert lifecycle: detections become alerts that are opened, updated,
acknowledged and resolved, with de-duplication, hold-off, flapping suppression,
maintenance windows and an audit trail of every transition.

:class:`AlertManager` is the entry point; notification channels subscribe to it.
"""

from cloud.alerts.config import AlertConfig
from cloud.alerts.errors import AlertError, AlertNotFound, AlertStateError
from cloud.alerts.manager import AlertChange, AlertManager

__all__ = [
    "AlertChange",
    "AlertConfig",
    "AlertError",
    "AlertManager",
    "AlertNotFound",
    "AlertStateError",
]
