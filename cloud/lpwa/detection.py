"""Meter readings the LPWA worker stored -> the cloud's detectors and alert lifecycle.

One code path: the hours go to :meth:`cloud.service.CloudService.handle_readings`, the
same ``DetectorEngine`` and ``AlertManager`` (and the notifier attached to it) that
``akita cloud run`` feeds with gateway batches; the silence of a meter (days without a
reading) to :meth:`CloudService.detect_tick`. Both run on the worker's network thread,
after the write, so a reading is judged only once it is stored, and in arrival order.

The alert ticks (auto-resolve after the hold-off, escalation) are left to ``akita cloud
run``: they work on the alert rows in the shared database, and two processes ticking
them would race.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.exc import SQLAlchemyError

from cloud.errors import CloudError
from schemas.wire import READING_MODELS

log = logging.getLogger(__name__)


class Detects(Protocol):
    """What of the cloud service the LPWA worker needs (``CloudService`` has it)."""

    def handle_readings(self, readings: list[Any], now: datetime | None = None) -> Any: ...

    def detect_tick(self, now: datetime | None = None) -> Any: ...


def as_readings(stored: list[tuple[str, str, datetime, Any]]) -> list[Any]:
    """The worker's stored (device, kind, hour end, values) as wire readings."""
    return [
        READING_MODELS[kind].model_validate(
            {"device_id": device, "kind": kind, "ts": ts, "values": values}
        )
        for device, kind, ts, values in stored
    ]


class MeterDetection:
    """The worker's ``on_readings`` and ``on_tick`` hooks onto a cloud service."""

    def __init__(self, service: Detects) -> None:
        self.service = service
        self.failures = 0

    def on_readings(self, stored: list[tuple[str, str, datetime, Any]]) -> None:
        try:
            self.service.handle_readings(as_readings(stored))
        except (CloudError, SQLAlchemyError) as exc:
            # the readings are stored and acknowledged; only their detection is lost
            self.failures += 1
            log.error("lpwa_detect_failed readings=%d reason=%s", len(stored), exc)

    def on_tick(self) -> None:
        try:
            self.service.detect_tick()
        except (CloudError, SQLAlchemyError) as exc:
            self.failures += 1
            log.error("lpwa_detect_tick_failed reason=%s", exc)
