"""Streaming anomaly detectors, one module per domain.

Detectors keep state per series and run on the ingest stream (they never read
back from the store). Each takes readings and returns :class:`Detection` records:
``active=True`` while a condition holds, ``active=False`` when it clears. The
alert lifecycle (``cloud.alerts``) turns those into alerts.
"""

from cloud.detect.base import Detection, Detector, DeviceContext

__all__ = ["Detection", "Detector", "DeviceContext"]
