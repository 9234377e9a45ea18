"""The alert lifecycle: open -> acknowledged -> resolved.

Rules, in the order they apply to a detection (``Detection.kind`` + ``device_id``
is the dedup key; at most one alert per key is active, i.e. open or acknowledged):

- An active detection with no active alert opens one, unless a maintenance window
  silences the device or its site. A silenced condition is remembered: if it still
  holds when the window ends, the alert opens then.
- An active detection for an active alert changes nothing, except that a change of
  severity or of ``extra["stage"]`` is an ``update`` (one message per flood stage).
- A cleared detection (``active=False``) only starts the hold-off: the alert
  auto-resolves in :meth:`AlertManager.tick` once the condition has stayed clear for
  ``hold_off_s`` and the alert has been open ``min_open_s``. A condition that comes
  back within the hold-off keeps the same alert: a flapping sensor makes one alert.
- Staff acknowledge and resolve by hand; every transition is an ``alert_events`` row
  with who and when, and each change goes to the subscribed listeners and, as the
  ``alert`` measurement, to the time-series store.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from cloud.alerts.config import AlertConfig
from cloud.alerts.errors import AlertNotFound, AlertStateError
from cloud.alerts.maintenance import MaintenanceWindows, silencing_window
from cloud.db.models import AlertEventRow, AlertRow, DeviceRow
from cloud.detect.base import Detection
from cloud.errors import StoreError
from cloud.store.base import Point, TimeSeriesStore
from schemas.alert import Alert, AlertState, Severity

log = logging.getLogger(__name__)

ACTIVE_STATES = (AlertState.OPEN.value, AlertState.ACKNOWLEDGED.value)
SYSTEM = "system"


def dedup_key(device_id: str, kind: str) -> str:
    return f"{device_id}:{kind}"


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class AlertChange:
    """One transition of one alert, as listeners (notify, CAP) receive it."""

    alert: Alert  # state after the change
    action: str  # open | update | ack | resolve | escalate | renotify
    previous: Alert | None
    actor: str  # "system" or token name
    at: datetime
    detection: Detection | None
    extra: Mapping[str, Any] = field(default_factory=dict)  # the alert's extra (stage, ...)
    district: str | None = None  # the device's service district, when known


@dataclass(frozen=True)
class AlertRecord:
    """An alert with what :class:`schemas.Alert` does not carry."""

    alert: Alert
    extra: Mapping[str, Any]
    district: str | None
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    cleared_at: datetime | None


@dataclass(frozen=True)
class AlertEvent:
    at: datetime
    actor: str
    action: str
    from_state: str | None
    to_state: str | None
    note: str | None


def alert_of_row(row: AlertRow) -> Alert:
    """The public :class:`Alert` stored in one alert row (shared by the CAP feed)."""
    return Alert(
        id=row.id,
        kind=row.kind,
        severity=Severity(row.severity),
        state=AlertState(row.state),
        device_id=row.device_id,
        site=row.site,
        area=row.area,
        lat=row.lat,
        lon=row.lon,
        title=row.title,
        message=row.message,
        value=row.value,
        public=row.public,
        started_at=row.started_at,
        updated_at=row.updated_at,
        resolved_at=row.resolved_at,
    )


def _to_record(row: AlertRow) -> AlertRecord:
    return AlertRecord(
        alert=alert_of_row(row),
        extra=dict(row.extra or {}),
        district=row.district,
        acknowledged_at=row.acknowledged_at,
        acknowledged_by=row.acknowledged_by,
        cleared_at=row.cleared_at,
    )


def _json_safe(extra: Mapping[str, Any]) -> dict[str, Any]:
    # detector extras may hold numpy scalars or datetimes; the JSON column needs plain types
    return json.loads(json.dumps(dict(extra), default=str))  # type: ignore[no-any-return]


def _finite(value: float | None) -> float | None:
    if value is None:
        return None
    v = float(value)
    return v if math.isfinite(v) else None


def _coord(
    extra: Mapping[str, Any], key: str, fallback: float | None, bound: float
) -> float | None:
    v = extra.get(key)
    if isinstance(v, int | float) and math.isfinite(v) and -bound <= v <= bound:
        return float(v)
    return fallback


class AlertManager:
    """Turns detections into alerts and records every transition.

    Thread-safe: ingest (``handle``), the tick loop (``tick``) and API requests
    (``ack``/``resolve``) may call it concurrently.
    """

    def __init__(
        self,
        sessionmaker: sessionmaker[Session],
        config: AlertConfig | None = None,
        *,
        store: TimeSeriesStore | None = None,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._sm = sessionmaker
        self.config = config or AlertConfig()
        self._store = store
        self._clock = clock
        self._lock = threading.RLock()
        self._listeners: list[Callable[[AlertChange], None]] = []
        # conditions that held while silenced by maintenance: dedup key -> detection
        self._silenced: dict[str, Detection] = {}
        self.maintenance = MaintenanceWindows(sessionmaker, clock=clock)

    # -- listeners -------------------------------------------------------------------

    def subscribe(self, listener: Callable[[AlertChange], None]) -> None:
        """Call ``listener(change)`` after every committed change (in order)."""
        self._listeners.append(listener)

    def _publish(self, changes: Sequence[AlertChange]) -> None:
        for change in changes:
            log.info(
                "alert_%s id=%s kind=%s device=%s severity=%s state=%s actor=%s",
                change.action,
                change.alert.id,
                change.alert.kind,
                change.alert.device_id,
                change.alert.severity.value,
                change.alert.state.value,
                change.actor,
            )
        self._write_points(changes)
        for change in changes:
            for listener in self._listeners:
                try:
                    listener(change)
                except Exception:  # a failing channel must not stop the lifecycle
                    log.exception(
                        "alert_listener_failed id=%s action=%s listener=%r",
                        change.alert.id,
                        change.action,
                        listener,
                    )

    def _write_points(self, changes: Sequence[AlertChange]) -> None:
        if self._store is None or not self.config.write_measurement or not changes:
            return
        points = []
        for c in changes:
            a = c.alert
            tags = {
                "kind": a.kind,
                "severity": a.severity.value,
                "device": a.device_id,
                "site": a.site,
                "district": c.district,
            }
            fields: dict[str, float | int | bool | str] = {
                "alert_id": a.id,
                "state": a.state.value,
                "title": a.title,
                "active": a.state != AlertState.RESOLVED,
            }
            if a.value is not None:
                fields["value"] = float(a.value)
            points.append(
                Point(
                    measurement="alert",
                    tags={k: str(v) for k, v in tags.items() if v},
                    fields=fields,
                    ts=c.at,
                )
            )
        try:
            self._store.write(points)
        except StoreError as exc:
            log.warning("alert_measurement_not_written points=%d reason=%s", len(points), exc)

    def _change(
        self,
        row: AlertRow,
        action: str,
        previous: Alert | None,
        actor: str,
        at: datetime,
        detection: Detection | None,
    ) -> AlertChange:
        return AlertChange(
            alert=alert_of_row(row),
            action=action,
            previous=previous,
            actor=actor,
            at=at,
            detection=detection,
            extra=dict(row.extra or {}),
            district=row.district,
        )

    @staticmethod
    def _event(
        s: Session,
        row: AlertRow,
        *,
        at: datetime,
        actor: str,
        action: str,
        from_state: str | None,
        note: str | None = None,
    ) -> None:
        s.add(
            AlertEventRow(
                alert_id=row.id,
                at=at,
                actor=actor,
                action=action,
                from_state=from_state,
                to_state=row.state,
                note=note,
            )
        )

    # -- detections --------------------------------------------------------------------

    def handle(
        self, detections: Sequence[Detection], now: datetime, *, at_reading_times: bool = False
    ) -> list[AlertChange]:
        """Apply detections (in time order) in one transaction; return the changes,
        already committed. ``at_reading_times``: each change is dated by its detection's
        reading time instead of ``now`` (the detector tier, which may be replaying)."""
        if not detections:
            return []
        changes: list[AlertChange] = []
        with self._lock:
            with self._sm() as s, s.begin():
                for det in sorted(detections, key=lambda d: d.ts):
                    change = self._apply(s, det, det.ts if at_reading_times else now)
                    if change is not None:
                        changes.append(change)
            self._publish(changes)
        return changes

    @staticmethod
    def _active_row(s: Session, key: str) -> AlertRow | None:
        stmt = (
            select(AlertRow)
            .where(AlertRow.dedup_key == key, AlertRow.state.in_(ACTIVE_STATES))
            .order_by(AlertRow.started_at.desc())
            .limit(1)
        )
        return s.scalars(stmt).first()

    def _apply(self, s: Session, det: Detection, now: datetime) -> AlertChange | None:
        key = dedup_key(det.device_id, det.kind)
        row = self._active_row(s, key)
        if not det.active:
            self._silenced.pop(key, None)
            if row is not None and row.cleared_at is None:
                row.cleared_at = now  # the hold-off before auto-resolve starts here
                log.info("alert_condition_cleared id=%s key=%s", row.id, key)
            return None
        if row is None:
            device = s.get(DeviceRow, det.device_id)
            window = silencing_window(
                s, device_id=det.device_id, site=device.site if device else None, now=now
            )
            if window is not None:
                self._silenced[key] = det
                log.info(
                    "alert_silenced key=%s window=%s until=%s",
                    key,
                    window.id,
                    window.ends_at.isoformat(),
                )
                return None
            return self._open(s, det, device, now)
        if row.cleared_at is not None:
            # came back inside the hold-off: keep the alert (hysteresis, no new message)
            row.cleared_at = None
            log.info("alert_flap_suppressed id=%s key=%s", row.id, key)
        row.value = _finite(det.value)
        old_stage = (row.extra or {}).get("stage")
        new_stage = det.extra.get("stage")
        if det.severity.value == row.severity and new_stage == old_stage:
            return None
        previous = alert_of_row(row)
        row.severity = det.severity.value
        if det.title:
            row.title = det.title[:200]
        if det.message:
            row.message = det.message[:4000]
        row.public = det.public
        row.extra = {**(row.extra or {}), **_json_safe(det.extra)}
        row.updated_at = now
        note = f"severity {previous.severity.value}->{row.severity}"
        if new_stage != old_stage:
            note += f" stage {old_stage}->{new_stage}"
        self._event(s, row, at=now, actor=SYSTEM, action="update", from_state=row.state, note=note)
        return self._change(row, "update", previous, SYSTEM, now, det)

    def _open(
        self, s: Session, det: Detection, device: DeviceRow | None, now: datetime
    ) -> AlertChange:
        row = AlertRow(
            id=f"al-{uuid.uuid4().hex[:20]}",
            dedup_key=dedup_key(det.device_id, det.kind),
            kind=det.kind,
            severity=det.severity.value,
            state=AlertState.OPEN.value,
            device_id=det.device_id,
            site=device.site if device else None,
            area=device.area if device else None,
            district=device.district if device else None,
            lat=_coord(det.extra, "lat", device.lat if device else None, 90),
            lon=_coord(det.extra, "lon", device.lon if device else None, 180),
            title=(det.title or f"{det.kind} at {det.device_id}")[:200],
            message=det.message[:4000],
            value=_finite(det.value),
            public=det.public,
            extra=_json_safe(det.extra),
            started_at=now,
            updated_at=now,
        )
        s.add(row)
        self._event(s, row, at=now, actor=SYSTEM, action="open", from_state=None, note=det.detector)
        return self._change(row, "open", None, SYSTEM, now, det)

    # -- time ------------------------------------------------------------------------------

    def tick(self, now: datetime) -> list[AlertChange]:
        """Auto-resolve alerts whose condition stayed clear for the hold-off, and open
        alerts whose condition outlasted the maintenance window that silenced it."""
        changes: list[AlertChange] = []
        with self._lock:
            with self._sm() as s, s.begin():
                stmt = select(AlertRow).where(
                    AlertRow.state.in_(ACTIVE_STATES), AlertRow.cleared_at.is_not(None)
                )
                for row in s.scalars(stmt).all():
                    assert row.cleared_at is not None
                    hold_off = timedelta(seconds=self.config.hold_off(row.kind))
                    min_open = timedelta(seconds=self.config.min_open_s)
                    if now - row.cleared_at >= hold_off and now - row.started_at >= min_open:
                        previous = alert_of_row(row)
                        row.state = AlertState.RESOLVED.value
                        row.resolved_at = now
                        row.updated_at = now
                        self._event(
                            s,
                            row,
                            at=now,
                            actor=SYSTEM,
                            action="resolve",
                            from_state=previous.state.value,
                            note=f"condition clear for {hold_off.total_seconds():g} s",
                        )
                        changes.append(self._change(row, "resolve", previous, SYSTEM, now, None))
                for key, det in list(self._silenced.items()):
                    device = s.get(DeviceRow, det.device_id)
                    site = device.site if device else None
                    if silencing_window(s, device_id=det.device_id, site=site, now=now):
                        continue
                    del self._silenced[key]
                    if self._active_row(s, key) is None:
                        changes.append(self._open(s, det, device, now))
            self._publish(changes)
        return changes

    # -- staff actions ---------------------------------------------------------------------

    def ack(self, alert_id: str, actor: str, note: str | None = None) -> AlertChange:
        """Acknowledge an open alert. Raises AlertNotFound / AlertStateError."""
        return self._staff(alert_id, actor, note, "ack", AlertState.ACKNOWLEDGED)

    def resolve(self, alert_id: str, actor: str, note: str | None = None) -> AlertChange:
        """Resolve an open or acknowledged alert by hand."""
        return self._staff(alert_id, actor, note, "resolve", AlertState.RESOLVED)

    def _staff(
        self, alert_id: str, actor: str, note: str | None, action: str, to: AlertState
    ) -> AlertChange:
        with self._lock:
            now = self._clock()
            with self._sm() as s, s.begin():
                row = s.get(AlertRow, alert_id)
                if row is None:
                    raise AlertNotFound(f"alert {alert_id!r} not found")
                allowed = (
                    (AlertState.OPEN.value,) if to == AlertState.ACKNOWLEDGED else ACTIVE_STATES
                )
                if row.state not in allowed:
                    raise AlertStateError(f"cannot {action} alert {alert_id!r}: it is {row.state}")
                previous = alert_of_row(row)
                row.state = to.value
                row.updated_at = now
                if to == AlertState.ACKNOWLEDGED:
                    row.acknowledged_at, row.acknowledged_by = now, actor
                else:
                    row.resolved_at = now
                self._event(
                    s, row, at=now, actor=actor, action=action, from_state=previous.state, note=note
                )
                change = self._change(row, action, previous, actor, now, None)
            self._publish([change])
        return change

    def record(
        self,
        alert_id: str,
        action: str,
        *,
        actor: str = SYSTEM,
        note: str | None = None,
        at: datetime | None = None,
    ) -> AlertChange:
        """Add an audit event that changes no state (``escalate``, ``renotify``), for
        the notifier. Listeners are not called (the notifier is the one recording)."""
        at = at or self._clock()
        with self._lock, self._sm() as s, s.begin():
            row = s.get(AlertRow, alert_id)
            if row is None:
                raise AlertNotFound(f"alert {alert_id!r} not found")
            self._event(s, row, at=at, actor=actor, action=action, from_state=row.state, note=note)
            alert = alert_of_row(row)
            return self._change(row, action, alert, actor, at, None)

    # -- queries ------------------------------------------------------------------------

    def active(self) -> list[Alert]:
        """Open and acknowledged alerts, oldest first."""
        return [r.alert for r in self.active_records()]

    def active_records(self) -> list[AlertRecord]:
        stmt = (
            select(AlertRow)
            .where(AlertRow.state.in_(ACTIVE_STATES))
            .order_by(AlertRow.started_at, AlertRow.id)
        )
        with self._sm() as s:
            return [_to_record(r) for r in s.scalars(stmt).all()]

    def get(self, alert_id: str) -> AlertRecord:
        with self._sm() as s:
            row = s.get(AlertRow, alert_id)
            if row is None:
                raise AlertNotFound(f"alert {alert_id!r} not found")
            return _to_record(row)

    def events(self, alert_id: str) -> list[AlertEvent]:
        with self._sm() as s:
            row = s.get(AlertRow, alert_id)
            if row is None:
                raise AlertNotFound(f"alert {alert_id!r} not found")
            return [
                AlertEvent(
                    at=e.at,
                    actor=e.actor,
                    action=e.action,
                    from_state=e.from_state,
                    to_state=e.to_state,
                    note=e.note,
                )
                for e in row.events
            ]

    def query(
        self,
        *,
        state: AlertState | None = None,
        kind: str | None = None,
        severity: Severity | None = None,
        device_id: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[AlertRecord]:
        """Alerts, newest first, filtered."""
        stmt = select(AlertRow)
        if state is not None:
            stmt = stmt.where(AlertRow.state == state.value)
        if kind is not None:
            stmt = stmt.where(AlertRow.kind == kind)
        if severity is not None:
            stmt = stmt.where(AlertRow.severity == severity.value)
        if device_id is not None:
            stmt = stmt.where(AlertRow.device_id == device_id)
        stmt = stmt.order_by(AlertRow.started_at.desc(), AlertRow.id).limit(limit).offset(offset)
        with self._sm() as s:
            return [_to_record(r) for r in s.scalars(stmt).all()]

    def silenced_keys(self) -> list[str]:
        """Dedup keys whose condition holds but is silenced by maintenance."""
        with self._lock:
            return sorted(self._silenced)
