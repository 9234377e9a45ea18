"""Rows the console tests put in the real database and store: devices, an alert opened
through the real AlertManager from a real detection, and residents' reports filed
through the citizen module's own function."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cloud.citizen import reports
from cloud.db.citizen import create_tables
from cloud.db.models import DeviceRow
from cloud.detect.base import Detection
from cloud.service import CloudService
from schemas.alert import Severity


def add_device(service: CloudService, device_id: str, kind: str, **kw: object) -> None:
    with service.sessionmaker() as s, s.begin():
        s.add(DeviceRow(device_id=device_id, kind=kind, state=kw.pop("state", "online"), **kw))


def open_alert(
    service: CloudService,
    device_id: str,
    *,
    kind: str = "flood_stage",
    severity: Severity = Severity.EXTREME,
    title: str = "道路冠水 危険 (danger): 34 cm",
    extra: dict[str, object] | None = None,
) -> str:
    now = datetime.now(UTC)
    det = Detection(
        device_id=device_id,
        kind=kind,
        severity=severity,
        active=True,
        ts=now,
        value=34.0,
        title=title,
        message="",
        detector="flood",
        extra=extra if extra is not None else {"stage": "danger", "stage_ja": "危険"},
    )
    (change,) = service.alerts.handle([det], now)
    return change.alert.id


def file_report(service: CloudService, description: str, *, days_ago: float = 0, **kw: str) -> str:
    """File a report as a resident would (status ``received``), ``days_ago`` in the past."""
    create_tables(service.engine)
    form = reports.parse_report(
        {"category": "road:pothole", "description": description, "address": "山王一丁目", **kw},
        None,
    )
    now = datetime.now(UTC) - timedelta(days=days_ago)
    row, _token = reports.file_report(service.sessionmaker, form, now=now)
    return str(row.ref)
