"""Automatic actions on the real alert lifecycle and a real SQLite audit trail: flood
stages switch the underpass's lamp and siren, the all-clear switches both off, heat
sends one notice per unit per day, staff holds, disarming, the kill switch, and alerts
that go on when the command side fails."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from cloud.commands.config import CommandSettings
from cloud.commands.states import CloudState
from cloud.db.commands import CommandAuditRow
from cloud.detect.base import Detection
from schemas.alert import Severity
from tests.cloud.commands.conftest import T0, Rig

SEVERITY = {
    "caution": Severity.MODERATE,
    "warning": Severity.SEVERE,
    "danger": Severity.EXTREME,
    "severe_warning": Severity.SEVERE,
}


def flood(rig: Rig, stage: str | None, at: datetime) -> None:
    rig.clock.at = max(rig.clock.at, at)
    det = Detection(
        detector="flood",
        kind="flood_stage",
        device_id="fs-araya",
        ts=at,
        active=stage is not None,
        severity=SEVERITY.get(stage or "", Severity.MINOR),
        title=f"flood {stage}",
        public=True,
        extra={"stage": stage},
    )
    rig.alerts.handle([det], at)


def heat(rig: Rig, device: str, stage: str, at: datetime) -> None:
    rig.clock.at = max(rig.clock.at, at)
    det = Detection(
        detector="call_unit",
        kind="heat_wbgt",
        device_id=device,
        ts=at,
        active=True,
        severity=SEVERITY[stage],
        title=f"heat {stage}",
        public=True,
        extra={"stage": stage},
    )
    rig.alerts.handle([det], at)


def rule_commands(rig: Rig) -> list[tuple[str, str, dict[str, object]]]:
    records = sorted(rig.service.query(issuer=None), key=lambda r: r.issued_at)
    return [(r.rule_id or r.issuer, r.action, r.params) for r in records if r.rule_id]


def audit(rig: Rig) -> list[tuple[str, str]]:
    with rig.db() as s:
        rows = s.scalars(select(CommandAuditRow).order_by(CommandAuditRow.id))
        return [(r.actor, r.action) for r in rows]


def test_flood_stages_switch_lamp_then_siren_and_the_resolution_both_off(rig: Rig) -> None:
    flood(rig, "caution", T0)
    assert rig.commands.rules.flush()
    assert rule_commands(rig) == []  # 注意: nothing yet
    flood(rig, "warning", T0 + timedelta(minutes=1))
    flood(rig, "warning", T0 + timedelta(minutes=2))  # same stage: no second command
    assert rig.commands.rules.flush()
    assert rule_commands(rig) == [("araya-lamp", "lamp", {"value": True})]
    flood(rig, "danger", T0 + timedelta(minutes=3))
    assert rig.commands.rules.flush()
    assert rule_commands(rig)[1:] == [("araya-siren", "siren", {"value": True})]
    flood(rig, None, T0 + timedelta(minutes=4))
    rig.clock.advance(600)
    rig.alerts.tick(rig.clock())  # hold-off passed: the alert resolves by itself
    assert rig.commands.rules.flush()
    assert sorted(rule_commands(rig)[2:]) == [
        ("araya-lamp", "lamp", {"value": False}),
        ("araya-siren", "siren", {"value": False}),
    ]
    lamp_on = rig.service.query(rule_id="araya-lamp")[-1]
    assert lamp_on.device_id == "plc-araya" and lamp_on.gateway_id == "gw-sign"  # the owner
    assert lamp_on.issuer == "rule:araya-lamp" and lamp_on.priority == "life_safety"
    assert [a for _, a in audit(rig)].count("rule_fired") == 4


def test_a_staff_command_holds_the_device_from_the_rules(rig: Rig) -> None:
    staff = rig.service.issue("plc-araya", "lamp", {"value": False}, issuer="token:ops-sato")
    assert staff.state is CloudState.QUEUED
    flood(rig, "warning", T0)
    assert rig.commands.rules.flush()
    assert rule_commands(rig) == []
    assert ("rule:araya-lamp", "rule_held_back") in audit(rig)
    rig.clock.advance(601)  # hold_s = 600 in the rig
    flood(rig, "danger", rig.clock())
    assert rig.commands.rules.flush()
    assert sorted(c[:2] for c in rule_commands(rig)) == [
        ("araya-lamp", "lamp"),
        ("araya-siren", "siren"),
    ]


def test_disarmed_rule_and_kill_switch_issue_nothing_and_say_why(rig: Rig) -> None:
    rules = rig.commands.rules
    rules.set_armed("araya-lamp", False, "token:ops-sato", "sign under repair")
    flood(rig, "danger", T0)
    assert rules.flush()
    assert [c[0] for c in rule_commands(rig)] == ["araya-siren"]
    rules.set_armed("*", False, "token:ops-chief", "storm drill")
    assert rules.kill_switch_engaged()
    heat(rig, "cu-1", "danger", T0)
    flood(rig, None, T0 + timedelta(minutes=1))
    rig.clock.advance(600)
    rig.alerts.tick(rig.clock())
    assert rules.flush()
    assert [c[0] for c in rule_commands(rig)] == ["araya-siren"]  # nothing new
    trail = audit(rig)
    assert ("token:ops-sato", "rule_disarmed") in trail
    assert ("token:ops-chief", "kill_switch_on") in trail
    skipped = [a for a in trail if a[1] == "rule_skipped"]
    assert ("rule:araya-lamp", "rule_skipped") in skipped and (
        "rule:heat-notice",
        "rule_skipped",
    ) in skipped
    assert {(s.rule_id, s.armed) for s in rules.states()} == {
        ("araya-lamp", False),
        ("araya-siren", True),
        ("heat-notice", True),
    }


def test_heat_notice_goes_to_exactly_the_units_in_the_area_once_a_day(rig: Rig) -> None:
    heat(rig, "cu-1", "warning", T0)  # 警戒: below the rule's 厳重警戒
    assert rig.commands.rules.flush()
    assert rule_commands(rig) == []
    heat(rig, "cu-1", "severe_warning", T0 + timedelta(minutes=5))
    heat(rig, "cu-2", "danger", T0 + timedelta(minutes=6))  # same area, same day
    assert rig.commands.rules.flush()
    notices = rig.service.query(rule_id="heat-notice")
    assert sorted(c.device_id for c in notices) == ["cu-1", "cu-2", "cu-4"]  # 土崎, two gateways
    assert {c.gateway_id for c in notices} == {"gw-cu-a", "gw-cu-b"}
    assert len({c.notice_id for c in notices}) == 1 and notices[0].action == "notice"
    assert (
        notices[0].params["kind"] == "heat"
        and notices[0].params["notice_id"] == notices[0].notice_id
    )
    rig.clock.at = T0 + timedelta(hours=16)  # 04:00 JST the next day: a new day
    heat(rig, "cu-4", "danger", rig.clock())
    assert rig.commands.rules.flush()
    assert len(rig.service.query(rule_id="heat-notice")) == 6


def test_alerts_go_on_when_commands_cannot_be_issued(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    rig.registry.provision("gw-sign", [])  # keep the owner, then remove the sign
    with rig.db() as s, s.begin():
        from cloud.db.models import DeviceRow

        s.delete(s.get(DeviceRow, "plc-araya"))
    rig.registry.load()  # the sign is gone from the registry: the rule cannot address it
    caplog.set_level(logging.ERROR, "cloud.commands")
    flood(rig, "warning", T0)
    assert rig.commands.rules.flush()
    [alert] = rig.alerts.active()
    assert alert.kind == "flood_stage"  # the alert itself went out
    assert rig.commands.rules.last_failure is not None
    assert "plc-araya" in rig.commands.rules.last_failure.reason
    assert rig.service.metrics.value("akita_command_failures_total", where="rule") == 1
    assert any("command_rule_failed rule=araya-lamp" in r.getMessage() for r in caplog.records)
    assert rig.commands.status()["last_rule_failure"]["rule"] == "araya-lamp"


def test_rule_config_refuses_unknown_stages_and_duplicates() -> None:
    with pytest.raises(ValueError, match="min_stage 'high' is not one of"):
        CommandSettings.model_validate(
            {
                "rules": [
                    {
                        "type": "device_action",
                        "id": "x",
                        "alert_kind": "flood_stage",
                        "min_stage": "high",
                        "target": "d",
                        "action": "lamp",
                    }
                ]
            }
        )
    rule = {
        "type": "area_notice",
        "id": "h",
        "alert_kind": "heat_wbgt",
        "min_stage": "danger",
        "text": "暑い",
    }
    with pytest.raises(ValueError, match="id 'h' is used twice"):
        CommandSettings.model_validate({"rules": [rule, rule]})
