"""The dispatcher on the real alert lifecycle (cloud.alerts.manager.AlertManager),
sending through a real SMTP server (aiosmtpd) and a real HTTP SMS sink."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from cloud.alerts.config import AlertConfig
from cloud.alerts.manager import AlertManager
from cloud.db.models import AlertEventRow, DeviceRow, SubscriptionRow
from cloud.db.notify import DeliveryRow
from cloud.detect.base import Detection
from cloud.notify.config import NotifyConfig
from cloud.notify.dispatcher import Dispatcher
from cloud.notify.email import EmailChannel
from cloud.notify.sms import SmsChannel, SmsSettings, create_provider
from cloud.shelters import nearest_flood_shelter
from schemas.alert import Severity
from tests.cloud.notify.conftest import HttpSink, SmtpSink, utc

T0 = utc(2026, 7, 14, 1, 0, 0)
SID = "AC00000000000000000000000000000001"
ONCALL_PHONE, ONCALL_MAIL = "+819011112222", "oncall.care@city.akita.example"
CHIEF_MAIL, FLOOD_MAIL = "chief.care@city.akita.example", "flood.duty@city.akita.example"
# the flood sensor: the Araya (新屋) underpass
FLOOD_LAT, FLOOD_LON = 39.7065, 140.0880

CONFIG = {
    "public_base_url": "https://alerts.city.akita.example",
    "ack_url": "https://ops.city.akita.example/alerts/{alert_id}",
    "groups": [
        {"name": "care-oncall", "members": [
            {"channel": "sms", "address": ONCALL_PHONE},
            {"channel": "email", "address": ONCALL_MAIL},
        ]},
        {"name": "care-chiefs", "members": [{"channel": "email", "address": CHIEF_MAIL}]},
        {"name": "flood-duty", "members": [
            {"channel": "email", "address": FLOOD_MAIL, "lang": "en"},
        ]},
    ],
    "routes": [
        {"domain": "care", "min_severity": "Minor", "groups": ["care-oncall", "care-chiefs"]},
        {"domain": "flood", "min_severity": "Severe", "groups": ["flood-duty"]},
    ],
    "retry": {"attempts": 3, "backoff_s": 0.01, "backoff_max_s": 0.05},
    "escalation": {"after_s": 600, "max_renotify": 1},
}  # fmt: skip


@dataclass
class Rig:
    manager: AlertManager
    dispatcher: Dispatcher
    smtp: SmtpSink
    sms: HttpSink
    db: sessionmaker[Session]
    tokens: dict[int, str]

    def deliveries(self) -> list[DeliveryRow]:
        with self.db() as s:
            return list(s.scalars(select(DeliveryRow).order_by(DeliveryRow.id)))

    def subscribe(
        self,
        token: str,
        address: str,
        *,
        area: str | None = None,
        point: tuple[float, float, float] | None = None,
        kinds: tuple[str, ...] = ("flood",),
        lang: str = "ja",
        confirmed: bool = True,
        unsubscribed: bool = False,
    ) -> None:
        lat, lon, radius = point or (None, None, None)
        with self.db() as s, s.begin():
            row = SubscriptionRow(
                channel="email",
                address=address,
                area=area,
                lat=lat,
                lon=lon,
                radius_m=radius,
                kinds=list(kinds),
                lang=lang,
                token_hash=f"hash-{token}",
                consent_at=T0 - timedelta(days=3),
                confirmed_at=T0 - timedelta(days=3) if confirmed else None,
                unsubscribed_at=T0 - timedelta(days=1) if unsubscribed else None,
                created_at=T0 - timedelta(days=3),
            )
            s.add(row)
            s.flush()
            self.tokens[row.id] = token


@pytest.fixture
def rig(db: sessionmaker[Session], smtp_server: SmtpSink, http_sink: HttpSink) -> Iterator[Rig]:
    with db() as s, s.begin():
        s.add_all(
            [
                DeviceRow(device_id="cu-7", kind="call_unit", site="見守り 7", area="土崎港中央",
                          district="北部", lat=39.7560, lon=140.0660),
                DeviceRow(device_id="fl-araya", kind="flood_sensor", site="新屋アンダーパス",
                          area="新屋扇町", district="西部", lat=FLOOD_LAT, lon=FLOOD_LON),
            ]
        )  # fmt: skip
    manager = AlertManager(db, AlertConfig(hold_off_s=60, min_open_s=0), clock=lambda: T0)
    tokens: dict[int, str] = {}
    sms = SmsChannel(
        create_provider(
            SmsSettings(provider="twilio", url=http_sink.url, sender="+15005550006",
                        username=SID, password="twilio-auth-token")
        )
    )  # fmt: skip
    dispatcher = Dispatcher(
        sessionmaker=db,
        config=NotifyConfig.model_validate(CONFIG),
        email=EmailChannel(smtp_server.settings()),
        sms=sms,
        token_for=lambda sub: tokens.get(sub.id),
    )
    dispatcher.attach(manager)
    try:
        yield Rig(manager, dispatcher, smtp_server, http_sink, db, tokens)
    finally:
        dispatcher.close()


def button(at: datetime) -> Detection:
    return Detection(
        detector="call_unit", kind="button_press", device_id="cu-7", ts=at, active=True,
        severity=Severity.EXTREME, title="緊急通報ボタン (emergency button pressed)",
    )  # fmt: skip


STAGE_SEVERITY = {"caution": Severity.MODERATE, "warning": Severity.SEVERE,
                  "danger": Severity.EXTREME}  # fmt: skip


def flood(at: datetime, stage: str | None, depth: float) -> Detection:
    return Detection(
        detector="flood", kind="flood_stage", device_id="fl-araya", ts=at,
        active=stage is not None, severity=STAGE_SEVERITY.get(stage or "", Severity.MINOR),
        title=f"Flood {stage}", value=depth, public=True, extra={"stage": stage},
    )  # fmt: skip


def test_button_press_reaches_staff_by_sms_and_email(rig: Rig) -> None:
    [change] = rig.manager.handle([button(T0)], T0)
    assert rig.dispatcher.flush(20)
    [sms] = rig.sms.snapshot()
    assert sms.path == f"/2010-04-01/Accounts/{SID}/Messages.json"
    form = sms.form()
    assert form["To"] == ONCALL_PHONE
    assert change.alert.id in form["Body"] and "緊急通報" in form["Body"]
    [mail] = rig.smtp.to(ONCALL_MAIL)
    assert mail.tls and mail.authenticated
    assert mail.message["Subject"].startswith("[最重要][発生]")
    body = mail.message.get_body(("plain",)).get_content()
    assert "見守り 7" in body and f"/alerts/{change.alert.id}" in body
    assert rig.smtp.to(CHIEF_MAIL) == []  # the next group only on escalation
    rows = rig.deliveries()
    assert {(r.channel, r.status, r.audience) for r in rows} == {
        ("sms", "sent", "staff"),
        ("email", "sent", "staff"),
    }
    assert all(ONCALL_PHONE not in r.recipient_masked for r in rows)


def test_unacknowledged_critical_alert_escalates_and_ack_stops_it(rig: Rig) -> None:
    [change] = rig.manager.handle([button(T0)], T0)
    alert_id = change.alert.id
    assert rig.dispatcher.tick(T0 + timedelta(minutes=5)) == []  # not yet due
    [step] = rig.dispatcher.tick(T0 + timedelta(minutes=10))
    assert step.action == "escalate" and step.escalate_to == "care-chiefs"
    assert rig.dispatcher.flush(20)
    [chief] = rig.smtp.to(CHIEF_MAIL)
    assert "[エスカレーション]" in chief.message["Subject"]
    assert "10 分間確認されていません" in chief.message.get_body(("plain",)).get_content()
    assert len(rig.smtp.to(ONCALL_MAIL)) == 2  # the open, then a reminder
    with rig.db() as s:
        actions = list(
            s.scalars(select(AlertEventRow.action).where(AlertEventRow.alert_id == alert_id))
        )
    assert actions == ["open", "escalate"]
    # past the last group: one reminder to everyone (max_renotify=1), then quiet
    [again] = rig.dispatcher.tick(T0 + timedelta(minutes=20))
    assert again.action == "renotify"
    assert rig.dispatcher.flush(20)  # (a step still queued when the ack lands is dropped)
    assert rig.dispatcher.tick(T0 + timedelta(minutes=30)) == []
    rig.manager.ack(alert_id, "tanaka")
    assert rig.dispatcher.tick(T0 + timedelta(minutes=90)) == []
    assert rig.dispatcher.flush(20)
    assert len(rig.smtp.to(CHIEF_MAIL)) == 2


def test_acknowledged_alert_does_not_escalate(rig: Rig) -> None:
    [change] = rig.manager.handle([button(T0)], T0)
    rig.manager.ack(change.alert.id, "sato")
    assert rig.dispatcher.tick(T0 + timedelta(hours=2)) == []
    assert rig.dispatcher.flush(20)
    assert rig.smtp.to(CHIEF_MAIL) == []


def test_residents_in_the_area_get_one_message_per_stage(rig: Rig) -> None:
    rig.subscribe("tok-town", "town@example.jp", area="新屋扇町")
    rig.subscribe("tok-near", "near@example.jp", point=(39.7080, 140.0900, 800.0), lang="en")
    rig.subscribe("tok-other-town", "other@example.jp", area="土崎港中央")
    rig.subscribe("tok-far", "far@example.jp", point=(39.7500, 140.1200, 1000.0))
    rig.subscribe("tok-pending", "pending@example.jp", area="新屋扇町", confirmed=False)
    rig.subscribe("tok-gone", "gone@example.jp", area="新屋扇町", unsubscribed=True)
    rig.subscribe("tok-heat", "heat@example.jp", area="新屋扇町", kinds=("heat",))
    steps = [("caution", 12.0), ("caution", 14.0), ("warning", 22.0), ("danger", 33.0)]
    for i, (stage, depth) in enumerate(steps):
        at = T0 + timedelta(minutes=5 * i)
        rig.manager.handle([flood(at, stage, depth)], at)
    assert rig.dispatcher.flush(20)

    town = rig.smtp.to("town@example.jp")
    assert [m.message["Subject"] for m in town] == [
        "【秋田市 冠水注意】新屋扇町",
        "【秋田市 冠水警戒】新屋扇町（段階変更）",
        "【秋田市 冠水危険】新屋扇町（段階変更）",
    ]
    shelter = nearest_flood_shelter(FLOOD_LAT, FLOOD_LON)
    assert shelter is not None
    danger = town[-1].message.get_body(("plain",)).get_content()
    for expected in (
        "新屋アンダーパス",
        "水深: 33 cm",
        "段階: 危険",
        "避難場所",
        shelter.name,
        "https://alerts.city.akita.example/citizen/subscriptions/tok-town/unsubscribe",
    ):
        assert expected in danger
    near = rig.smtp.to("near@example.jp")
    assert [m.message["Subject"] for m in near] == [
        "[Akita City flood Caution] 新屋扇町",
        "[Akita City flood Warning] 新屋扇町 (stage changed)",
        "[Akita City flood Danger] 新屋扇町 (stage changed)",
    ]
    for outsider in ("other", "far", "pending", "gone", "heat"):
        assert rig.smtp.to(f"{outsider}@example.jp") == []
    # staff: the flood route starts at Severe (warning), in English for that member
    staff = rig.smtp.to(FLOOD_MAIL)
    assert [m.message["Subject"].split("]")[1] for m in staff] == ["[opened", "[updated"]


def test_residents_who_were_warned_hear_when_the_flood_is_over(rig: Rig) -> None:
    rig.subscribe("tok-town", "town@example.jp", area="新屋扇町")
    rig.subscribe("tok-near", "near@example.jp", point=(39.7080, 140.0900, 800.0), lang="en")
    rig.manager.handle([flood(T0, "warning", 22.0)], T0)
    rig.manager.handle([flood(T0 + timedelta(minutes=5), None, 2.0)], T0 + timedelta(minutes=5))
    end = T0 + timedelta(minutes=30)  # past the hold-off: the alert resolves by itself
    assert [c.action for c in rig.manager.tick(end)] == ["resolve"]
    assert rig.dispatcher.flush(20)
    town = rig.smtp.to("town@example.jp")
    assert [m.message["Subject"] for m in town] == [
        "【秋田市 冠水警戒】新屋扇町",
        "【秋田市 冠水解除】新屋扇町",
    ]
    text = town[-1].message.get_body(("plain",)).get_content()
    assert text.startswith("秋田市 道路冠水情報（解除）") and "冠水は解消しました" in text
    assert "tok-town/unsubscribe" in text
    near = rig.smtp.to("near@example.jp")
    assert near[-1].message["Subject"] == "[Akita City flood all clear] 新屋扇町"
    resolved = [r for r in rig.deliveries() if r.audience == "resident" and r.stage == "clear"]
    assert len(resolved) == 2 and {r.status for r in resolved} == {"sent"}


def test_no_all_clear_when_staff_resolve_the_alert(rig: Rig) -> None:
    rig.subscribe("tok-town", "town@example.jp", area="新屋扇町")
    opened = rig.manager.handle([flood(T0, "caution", 12.0)], T0)
    # staff close it (a sensor under repair, say): the water may still be there
    rig.manager.resolve(opened[0].alert.id, actor="operator-1", note="sensor under repair")
    assert rig.dispatcher.flush(20)
    assert [m.message["Subject"] for m in rig.smtp.to("town@example.jp")] == [
        "【秋田市 冠水注意】新屋扇町"
    ]


def test_flapping_level_makes_no_storm(rig: Rig) -> None:
    rig.subscribe("tok-town", "town@example.jp", area="新屋扇町")
    at = T0
    changes = 0
    # a level dithering across the warning depth, clearing and coming back: 8 cycles of
    # 7 minutes, all inside one rate-limit window (an hour)
    for _cycle in range(8):
        for i in range(10):
            at += timedelta(seconds=30)
            stage = "warning" if i % 2 else "caution"
            changes += len(rig.manager.handle([flood(at, stage, 20.5 if i % 2 else 19.5)], at))
        at += timedelta(seconds=30)
        rig.manager.handle([flood(at, None, 2.0)], at)
        at += timedelta(seconds=90)  # longer than the hold-off: the alert resolves
        changes += len(rig.manager.tick(at))
    assert rig.dispatcher.flush(20)
    received = rig.smtp.to("town@example.jp")
    assert changes > 60
    assert 0 < len(received) <= 6  # resident_limit: 6 per recipient per hour
    rows = [r for r in rig.deliveries() if r.audience == "resident"]
    assert {r.reason for r in rows if r.status == "suppressed"} == {"rate_limit"}
    assert sum(r.status == "sent" for r in rows) == len(received)


def test_retries_with_backoff_then_records_the_outcome(rig: Rig) -> None:
    rig.sms.statuses = [503, 503]
    rig.manager.handle([button(T0)], T0)
    assert rig.dispatcher.flush(20)
    assert len(rig.sms.snapshot()) == 3
    [sms_row] = [r for r in rig.deliveries() if r.channel == "sms"]
    assert (sms_row.status, sms_row.attempts) == ("sent", 3)

    rig.sms.statuses = [400]
    later = T0 + timedelta(hours=1)
    rig.manager.handle([_other_unit(later)], later)
    assert rig.dispatcher.flush(20)
    failed = [r for r in rig.deliveries() if r.channel == "sms" and r.status == "failed"]
    assert [(r.reason, r.attempts) for r in failed] == [("permanent", 1)]


def _other_unit(at: datetime) -> Detection:
    return Detection(
        detector="call_unit", kind="heartbeat_missing", device_id="cu-7", ts=at, active=True,
        severity=Severity.SEVERE, title="見守り機器の定時通報なし",
    )  # fmt: skip


def test_contact_details_never_reach_the_logs(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    rig.subscribe("tok-town", "town@example.jp", area="新屋扇町")
    rig.sms.statuses = [503]  # a retry logs too
    rig.manager.handle([button(T0)], T0)
    rig.manager.handle([flood(T0, "warning", 22.0)], T0)
    rig.dispatcher.tick(T0 + timedelta(minutes=11))
    assert rig.dispatcher.flush(20)
    assert rig.smtp.to("town@example.jp") and rig.smtp.to(CHIEF_MAIL)
    # mail.log is aiosmtpd, the test's SMTP server, which logs envelopes at DEBUG
    ours = [r for r in caplog.records if r.name != "mail.log"]
    assert any(r.name.startswith("cloud.notify") for r in ours)
    text = "\n".join(r.getMessage() for r in ours)
    for secret in (ONCALL_PHONE, ONCALL_MAIL, CHIEF_MAIL, FLOOD_MAIL, "town@example.jp",
                   "tok-town", "twilio-auth-token"):  # fmt: skip
        assert secret not in text


def test_a_restarted_dispatcher_continues_escalation_without_repeating(
    rig: Rig, db: sessionmaker[Session], smtp_server: SmtpSink
) -> None:
    rig.subscribe("tok-town", "town@example.jp", area="新屋扇町")
    rig.manager.handle([button(T0), flood(T0, "warning", 22.0)], T0)
    assert rig.dispatcher.flush(20)
    rig.dispatcher.close()  # the process restarts; the alerts stay open in the database
    assert len(rig.smtp.to("town@example.jp")) == 1
    manager = AlertManager(db, AlertConfig(hold_off_s=60, min_open_s=0), clock=lambda: T0)
    with Dispatcher(
        sessionmaker=db,
        config=NotifyConfig.model_validate(CONFIG),
        email=EmailChannel(smtp_server.settings()),
    ) as restarted:
        restarted.attach(manager)
        t1 = T0 + timedelta(minutes=1)
        manager.handle([flood(t1, "caution", 15.0)], t1)  # a fall: not announced
        steps = restarted.tick(T0 + timedelta(minutes=10))
        assert [(s.action, s.escalate_to) for s in steps] == [("escalate", "care-chiefs")]
        assert restarted.flush(20)
    assert len(rig.smtp.to("town@example.jp")) == 1
    assert len(rig.smtp.to(CHIEF_MAIL)) == 1
