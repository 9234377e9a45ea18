"""The call-unit notice channel in the notification registry: a route's group member
``{channel = "notice", address = "district:北部"}`` turns a flood alert into one notice to
each call unit of the district, recorded like any delivery; the kill switch stops it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from cloud.db.notify import DeliveryRow
from cloud.detect.base import Detection
from cloud.notify.config import NotifyConfig
from cloud.notify.dispatcher import Dispatcher
from schemas.alert import Severity
from tests.cloud.commands.conftest import T0, Rig, make_rig

CONFIG = {
    "groups": [
        {"name": "north-units", "members": [{"channel": "notice", "address": "district:北部"}]}
    ],
    "routes": [{"domain": "flood", "min_severity": "Severe", "groups": ["north-units"]}],
    "retry": {"attempts": 1},
}


@pytest.fixture
def wired(tmp_path: Path) -> Iterator[tuple[Rig, Dispatcher]]:
    rig = make_rig(tmp_path, rules=[])
    dispatcher = Dispatcher(
        sessionmaker=rig.db,
        config=NotifyConfig.model_validate(CONFIG),
        channels=[rig.commands.notice_channel()],
    )
    dispatcher.attach(rig.alerts)
    yield rig, dispatcher
    dispatcher.close()
    rig.commands.stop()


def flood(rig: Rig, minutes: int) -> None:
    at = T0 + timedelta(minutes=minutes)
    det = Detection(
        detector="flood",
        kind="flood_stage",
        device_id="fs-araya",
        ts=at,
        active=True,
        severity=Severity.SEVERE,
        title="flood warning",
        public=True,
        extra={"stage": "warning"},
    )
    rig.alerts.handle([det], at)


def deliveries(rig: Rig) -> list[DeliveryRow]:
    with rig.db() as s:
        return list(s.scalars(select(DeliveryRow).order_by(DeliveryRow.id)))


def test_a_route_sends_a_notice_to_the_districts_units(wired: tuple[Rig, Dispatcher]) -> None:
    rig, dispatcher = wired
    flood(rig, 0)
    assert dispatcher.flush(20)
    [row] = deliveries(rig)
    assert (row.channel, row.status, row.recipient_masked) == ("notice", "sent", "district:北部")
    commands = rig.service.query(issuer="rule:notify")
    assert sorted(c.device_id for c in commands) == ["cu-1", "cu-2", "cu-4"]
    params = commands[0].params
    assert (
        params["kind"] == "disaster" and "冠水警戒" in params["text"] and "新屋" in params["text"]
    )
    assert len({c.notice_id for c in commands}) == 1


def test_the_kill_switch_stops_notices_from_routes_and_the_record_says_why(
    wired: tuple[Rig, Dispatcher],
) -> None:
    rig, dispatcher = wired
    rig.commands.rules.set_armed("*", False, "token:ops-chief", "drill")
    flood(rig, 0)
    assert dispatcher.flush(20)
    [row] = deliveries(rig)
    assert (row.status, row.reason) == ("failed", "permanent")
    assert "kill switch" in (row.error or "")
    assert rig.service.query() == []


def test_a_notice_member_with_a_bad_address_is_refused_at_load() -> None:
    bad = {"groups": [{"name": "g", "members": [{"channel": "notice", "address": "ward:x"}]}]}
    with pytest.raises(ValueError, match="is not device:<id>, district:<name>"):
        NotifyConfig.model_validate(bad)
    with pytest.raises(ValueError, match="channel 'fax' is not one of email, sms, webhook, notice"):
        NotifyConfig.model_validate(
            {"groups": [{"name": "g", "members": [{"channel": "fax", "address": "123"}]}]}
        )
