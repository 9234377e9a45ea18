"""Alert lifecycle on a real SQLite database and the real SQLite time-series store."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from cloud.alerts import AlertChange, AlertConfig, AlertManager, AlertNotFound, AlertStateError
from cloud.alerts.maintenance import InvalidMaintenanceWindow
from cloud.db.base import create_all, make_engine, make_sessionmaker
from cloud.db.models import AlertEventRow, AlertRow, DeviceRow
from cloud.detect.base import Detection
from cloud.store.sqlite import SqliteStore
from schemas.alert import AlertState, Severity

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def s(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def det(
    device: str = "fl-1",
    kind: str = "flood_stage",
    *,
    active: bool = True,
    at: float = 0,
    severity: Severity = Severity.MODERATE,
    stage: str | None = "caution",
) -> Detection:
    return Detection(
        detector="flood",
        kind=kind,
        device_id=device,
        ts=s(at),
        active=active,
        severity=severity,
        title=f"{kind} {device}",
        value=12.0,
        public=True,
        extra={"stage": stage} if stage else {},
    )


@pytest.fixture
def sm(db_url: str):  # type: ignore[no-untyped-def]
    # every test runs on SQLite and on PostgreSQL (tests/conftest.py: db_url)
    engine = make_engine(db_url)
    create_all(engine)
    sm = make_sessionmaker(engine)
    with sm() as session, session.begin():
        session.add(
            DeviceRow(
                device_id="fl-1",
                kind="flood_sensor",
                site="underpass-A",
                district="central",
                area="中通",
                lat=39.7,
                lon=140.1,
            )
        )
        session.add(DeviceRow(device_id="fl-2", kind="flood_sensor", site="underpass-B"))
    yield sm
    engine.dispose()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    st = SqliteStore(tmp_path / "ts.db")
    yield st
    st.close()


@pytest.fixture
def manager(sm, store: SqliteStore) -> AlertManager:  # type: ignore[no-untyped-def]
    clock = iter(s(1000 + i) for i in range(10_000))
    return AlertManager(
        sm, AlertConfig(hold_off_s=300, min_open_s=60), store=store, clock=lambda: next(clock)
    )


def test_dedup_one_active_alert_per_device_and_kind(manager: AlertManager) -> None:
    changes = manager.handle([det(at=0), det(at=1), det(at=2)], s(2))
    assert [c.action for c in changes] == ["open"]
    assert manager.handle([det(at=3)], s(3)) == []
    other = manager.handle([det(kind="flood_rise", at=4, stage=None)], s(4))
    assert [c.action for c in other] == ["open"]
    keys = sorted((a.device_id, a.kind) for a in manager.active())
    assert keys == [("fl-1", "flood_rise"), ("fl-1", "flood_stage")]
    opened = changes[0].alert
    assert (opened.site, opened.area, opened.lat) == ("underpass-A", "中通", 39.7)
    assert changes[0].district == "central" and changes[0].extra["stage"] == "caution"


def test_stage_or_severity_change_is_one_update(manager: AlertManager) -> None:
    manager.handle([det(at=0)], s(0))
    up = manager.handle([det(at=10, severity=Severity.SEVERE, stage="warning")], s(10))
    assert [c.action for c in up] == ["update"]
    assert up[0].previous is not None and up[0].previous.severity == Severity.MODERATE
    assert up[0].alert.severity == Severity.SEVERE and up[0].extra["stage"] == "warning"
    assert up[0].alert.updated_at == s(10) and up[0].alert.started_at == s(0)
    # same stage again: nothing; stage change at same severity: an update
    assert manager.handle([det(at=11, severity=Severity.SEVERE, stage="warning")], s(11)) == []
    up2 = manager.handle([det(at=12, severity=Severity.SEVERE, stage="danger")], s(12))
    assert [c.action for c in up2] == ["update"]


def test_auto_resolve_after_hold_off(manager: AlertManager, sm) -> None:  # type: ignore[no-untyped-def]
    [opened] = manager.handle([det(at=0)], s(0))
    assert manager.handle([det(active=False, at=100)], s(100)) == []
    assert manager.tick(s(399)) == []  # 299 s clear: still open
    [resolved] = manager.tick(s(400))
    assert resolved.action == "resolve" and resolved.actor == "system"
    assert resolved.alert.state == AlertState.RESOLVED and resolved.alert.resolved_at == s(400)
    assert manager.active() == []
    with sm() as session:
        events = session.scalars(
            select(AlertEventRow).where(AlertEventRow.alert_id == opened.alert.id)
        ).all()
    assert [(e.action, e.actor, e.at, e.to_state) for e in events] == [
        ("open", "system", s(0), "open"),
        ("resolve", "system", s(400), "resolved"),
    ]
    # the condition returning after resolution is a new alert
    [again] = manager.handle([det(at=500)], s(500))
    assert again.action == "open" and again.alert.id != opened.alert.id


def test_flapping_condition_makes_one_alert_not_a_storm(manager: AlertManager) -> None:
    changes: list[AlertChange] = []
    manager.subscribe(changes.append)
    for i in range(40):  # on/off every 10 s for 400 s, always back within the hold-off
        manager.handle([det(active=i % 2 == 0, at=10 * i)], s(10 * i))
        manager.tick(s(10 * i + 5))
    assert [c.action for c in changes] == ["open"]
    manager.tick(s(390 + 299))
    assert [c.action for c in changes] == ["open"]
    manager.tick(s(390 + 300))
    assert [c.action for c in changes] == ["open", "resolve"]


def test_minimum_open_time(sm) -> None:  # type: ignore[no-untyped-def]
    manager = AlertManager(sm, AlertConfig(hold_off_s=0, min_open_s=60))
    manager.handle([det(at=0)], s(0))
    manager.handle([det(active=False, at=1)], s(1))
    assert manager.tick(s(30)) == []
    assert [c.action for c in manager.tick(s(60))] == ["resolve"]


def test_hold_off_per_kind(sm) -> None:  # type: ignore[no-untyped-def]
    config = AlertConfig(hold_off_s=300, min_open_s=0, hold_off_by_kind={"flood_stage": 30})
    manager = AlertManager(sm, config)
    manager.handle([det(at=0)], s(0))
    manager.handle([det(active=False, at=10)], s(10))
    assert [c.action for c in manager.tick(s(40))] == ["resolve"]


def test_ack_and_resolve_record_actor(manager: AlertManager) -> None:
    [opened] = manager.handle([det(at=0)], s(0))
    alert_id = opened.alert.id
    ack = manager.ack(alert_id, "ops-sato", "crew sent")
    assert ack.action == "ack" and ack.actor == "ops-sato"
    assert ack.alert.state == AlertState.ACKNOWLEDGED
    assert ack.previous is not None and ack.previous.state == AlertState.OPEN
    record = manager.get(alert_id)
    assert record.acknowledged_by == "ops-sato" and record.acknowledged_at == ack.at
    with pytest.raises(AlertStateError, match="acknowledged"):
        manager.ack(alert_id, "ops-sato")
    res = manager.resolve(alert_id, "ops-ito", "pump cleared")
    assert res.alert.state == AlertState.RESOLVED and res.alert.resolved_at == res.at
    with pytest.raises(AlertStateError):
        manager.resolve(alert_id, "ops-ito")
    with pytest.raises(AlertNotFound):
        manager.ack("al-nope", "ops")
    events = manager.events(alert_id)
    assert [(e.action, e.actor, e.note) for e in events] == [
        ("open", "system", "flood"),
        ("ack", "ops-sato", "crew sent"),
        ("resolve", "ops-ito", "pump cleared"),
    ]
    # an acknowledged alert still takes severity updates
    [second] = manager.handle([det(device="fl-2", at=1)], s(1))
    manager.ack(second.alert.id, "ops")
    worse = det(device="fl-2", at=2, severity=Severity.SEVERE, stage="warning")
    [up] = manager.handle([worse], s(2))
    assert up.action == "update" and up.alert.state == AlertState.ACKNOWLEDGED


def test_maintenance_window_silences_site_then_opens_if_still_active(
    manager: AlertManager,
) -> None:
    window = manager.maintenance.create(
        site="underpass-A",
        device_id=None,
        starts_at=s(0),
        ends_at=s(600),
        reason="pump replacement",
        actor="ops-sato",
    )
    assert window.created_by == "ops-sato" and window.in_force(s(1))
    assert manager.handle([det(at=10)], s(10)) == []
    assert manager.active() == [] and manager.silenced_keys() == ["fl-1:flood_stage"]
    # another site is not silenced
    assert [c.action for c in manager.handle([det(device="fl-2", at=11)], s(11))] == ["open"]
    assert manager.tick(s(599)) == []
    [late] = manager.tick(s(600))  # still active when the window ends: alert now
    assert late.action == "open" and late.alert.device_id == "fl-1"


def test_maintenance_condition_clearing_inside_window_never_alerts(
    manager: AlertManager,
) -> None:
    manager.maintenance.create(
        site=None, device_id="fl-1", starts_at=s(0), ends_at=s(600), reason="", actor="ops"
    )
    assert manager.handle([det(at=10)], s(10)) == []
    assert manager.handle([det(active=False, at=20)], s(20)) == []
    assert manager.tick(s(700)) == [] and manager.active() == []


def test_cancelled_window_does_not_silence(manager: AlertManager) -> None:
    w = manager.maintenance.create(
        site="underpass-A", device_id=None, starts_at=s(0), ends_at=s(600), reason="", actor="a"
    )
    cancelled = manager.maintenance.cancel(w.id, actor="ops-ito")
    assert cancelled.cancelled_by == "ops-ito"
    assert [c.action for c in manager.handle([det(at=10)], s(10))] == ["open"]
    assert manager.maintenance.list() == []
    assert [x.id for x in manager.maintenance.list(include_cancelled=True)] == [w.id]
    with pytest.raises(InvalidMaintenanceWindow, match="ends_at"):
        manager.maintenance.create(
            site="x", device_id=None, starts_at=s(10), ends_at=s(5), reason="", actor="a"
        )
    with pytest.raises(InvalidMaintenanceWindow, match="site or a device_id"):
        manager.maintenance.create(
            site=None, device_id=None, starts_at=s(0), ends_at=s(5), reason="", actor="a"
        )


def test_failing_listener_does_not_stop_the_others(manager: AlertManager) -> None:
    seen: list[str] = []

    def broken(change: AlertChange) -> None:
        raise RuntimeError("channel down")

    manager.subscribe(broken)
    manager.subscribe(lambda c: seen.append(c.action))
    manager.handle([det(at=0)], s(0))
    assert seen == ["open"]


def test_alert_measurement_written_on_each_change(
    manager: AlertManager, store: SqliteStore
) -> None:
    [opened] = manager.handle([det(at=0)], s(0))
    manager.ack(opened.alert.id, "ops")
    assert store.tag_values("alert", "kind") == ["flood_stage"]
    assert store.tag_values("alert", "site") == ["underpass-A"]
    assert store.tag_values("alert", "district") == ["central"]
    rows = store._db.execute(
        "SELECT s.field, s.value FROM samples s JOIN series r ON r.id = s.series_id "
        "WHERE r.measurement = 'alert' ORDER BY s.ts, s.field"
    ).fetchall()
    states = [v for f, v in rows if f == "state"]
    assert states == ["open", "acknowledged"]
    assert ("alert_id", opened.alert.id) in rows


def test_record_adds_audit_event_without_state_change(manager: AlertManager, sm) -> None:  # type: ignore[no-untyped-def]
    [opened] = manager.handle([det(at=0)], s(0))
    change = manager.record(opened.alert.id, "escalate", note="group duty-2")
    assert change.action == "escalate" and change.alert.state == AlertState.OPEN
    with sm() as session:
        row = session.get(AlertRow, opened.alert.id)
        assert [e.action for e in row.events] == ["open", "escalate"]
