"""The command, notice and automation routes: roles, refusals naming the field and value,
cancel semantics, notice targeting, and the audit under the token's name."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cloud.api.app import create_app
from cloud.api.auth import Role, create_token
from cloud.service import CloudService
from schemas.commands import CommandResult, CommandState
from tests.cloud.api.conftest import bearer, make_service
from tests.cloud.commands.conftest import RULES, provision

# 土崎 around cu-1, cu-2 and cu-4 (lon, lat), closed
TSUCHIZAKI = {
    "type": "Polygon",
    "coordinates": [
        [
            [140.060, 39.750],
            [140.075, 39.750],
            [140.075, 39.765],
            [140.060, 39.765],
            [140.060, 39.750],
        ]
    ],
}


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[CloudService]:
    svc = make_service(tmp_path, commands={"rules": RULES, "enabled": False})
    provision(svc.registry)
    yield svc
    svc.stop()


@pytest.fixture
def api(cloud: CloudService) -> TestClient:
    return TestClient(create_app(cloud, extra_routers=[]))


@pytest.fixture
def tokens(cloud: CloudService) -> dict[Role, dict[str, str]]:
    return {r: bearer(create_token(cloud.sessionmaker, name=f"t-{r.value}", role=r)) for r in Role}


def loc(response: Any) -> list[str]:
    assert response.status_code == 422, response.text
    return [str(p) for p in response.json()["detail"][0]["loc"]]


def test_roles(api: TestClient, tokens: dict[Role, dict[str, str]]) -> None:
    body = {"device_id": "plc-araya", "action": "lamp", "params": {"on": True}}
    assert api.post("/commands", json=body).status_code == 401
    assert api.post("/commands", json=body, headers=tokens[Role.VIEWER]).status_code == 403
    assert api.get("/commands", headers=tokens[Role.VIEWER]).status_code == 200
    notice = {"kind": "disaster", "text": "避難所を開設しました", "targets": {"all": True}}
    assert api.post("/notices", json=notice, headers=tokens[Role.VIEWER]).status_code == 403
    arm = {"armed": False}
    assert (
        api.put("/automation/rules/araya-lamp", json=arm, headers=tokens[Role.VIEWER]).status_code
        == 403
    )
    assert (
        api.put(
            "/automation/kill-switch", json={"engaged": True}, headers=tokens[Role.VIEWER]
        ).status_code
        == 403
    )
    r = api.post("/commands", json=body, headers=tokens[Role.OPERATOR])
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["gateway_id"] == "gw-sign" and made["state"] == "queued"  # the registry's owner
    assert made["issuer"] == "token:t-operator"


@pytest.mark.parametrize(
    ("body", "where", "value"),
    [
        ({"device_id": "nope-1", "action": "lamp"}, ["body", "device_id"], "nope-1"),
        ({"device_id": "plc-araya", "action": "Lamp!"}, ["body", "action"], "Lamp!"),
        (
            {"device_id": "plc-araya", "action": "lamp", "params": {"on": [1]}},
            ["body", "params"],
            "[1]",
        ),
        (
            {"device_id": "plc-araya", "action": "lamp", "ttl_s": 8 * 86400},
            ["body", "ttl_s"],
            "691200",
        ),
        (
            {"device_id": "plc-araya", "action": "lamp", "priority": "urgent"},
            ["body", "priority"],
            "urgent",
        ),
        ({"device_id": "plc-araya", "action": "lamp", "colour": "red"}, ["body", "colour"], "red"),
    ],
)
def test_bad_commands_name_the_field_and_value(
    api: TestClient,
    tokens: dict[Role, dict[str, str]],
    body: dict[str, Any],
    where: list[str],
    value: str,
) -> None:
    r = api.post("/commands", json=body, headers=tokens[Role.OPERATOR])
    assert loc(r)[: len(where)] == where
    assert value in r.text


def test_cancel_only_while_queued_and_recorded_under_the_token(
    cloud: CloudService, api: TestClient, tokens: dict[Role, dict[str, str]]
) -> None:
    op = tokens[Role.OPERATOR]
    queued = api.post(
        "/commands", json={"device_id": "cu-1", "action": "notice"}, headers=op
    ).json()
    r = api.post(f"/commands/{queued['id']}/cancel", json={"note": "wrong unit"}, headers=op)
    assert r.status_code == 200 and r.json()["state"] == "cancelled"
    assert api.post(f"/commands/{queued['id']}/cancel", headers=op).status_code == 409
    detail = api.get(f"/commands/{queued['id']}", headers=tokens[Role.VIEWER]).json()
    assert [(e["action"], e["actor"], e["to_state"]) for e in detail["events"]] == [
        ("issue", "token:t-operator", "queued"),
        ("cancel", "token:t-operator", "cancelled"),
    ]
    # once the gateway has said "accepted" it may run at any moment: no cancel
    held = api.post("/commands", json={"device_id": "cu-2", "action": "notice"}, headers=op).json()
    cloud.commands.service.handle_result(
        "gw-cu-a",
        CommandResult(
            id=held["id"],
            gateway_id="gw-cu-a",
            device_id="cu-2",
            state=CommandState.ACCEPTED,
            ts=datetime.now(UTC),
        ),
    )
    r = api.post(f"/commands/{held['id']}/cancel", headers=op)
    assert r.status_code == 409 and "only a command still queued" in r.json()["detail"]
    assert (
        api.post("/commands/00000000-0000-4000-8000-000000000000/cancel", headers=op).status_code
        == 404
    )
    assert loc(api.post("/commands/not-a-uuid/cancel", headers=op)) == ["path", "command_id"]
    listed = api.get("/commands", params={"state": "accepted"}, headers=op).json()
    assert [c["id"] for c in listed] == [held["id"]]
    assert loc(api.get("/commands", params={"state": "lost"}, headers=op)) == ["query", "state"]


def test_notice_targets_by_polygon_district_devices_and_all(
    api: TestClient, tokens: dict[Role, dict[str, str]]
) -> None:
    op = tokens[Role.OPERATOR]

    def units(targets: dict[str, Any]) -> list[str]:
        r = api.post(
            "/notices",
            json={"kind": "disaster", "text": "避難指示", "targets": targets},
            headers=op,
        )
        assert r.status_code == 201, r.text
        notice = r.json()
        assert notice["summary"]["targeted"] == notice["summary"]["pending"]
        cmds = api.get("/commands", params={"notice": notice["id"]}, headers=op).json()
        assert all(c["priority"] == "life_safety" for c in cmds)
        return sorted(c["device_id"] for c in cmds)

    assert units({"polygon": TSUCHIZAKI}) == ["cu-1", "cu-2", "cu-4"]
    assert units({"districts": ["西部", "中央"]}) == ["cu-3", "cu-5"]
    assert units({"devices": ["cu-5"], "districts": ["西部"]}) == ["cu-3", "cu-5"]
    assert units({"all": True}) == ["cu-1", "cu-2", "cu-3", "cu-4", "cu-5"]
    listed = api.get("/notices", headers=tokens[Role.VIEWER]).json()
    assert len(listed) == 4 and listed[0]["issuer"] == "token:t-operator"


@pytest.mark.parametrize(
    ("targets", "where", "value"),
    [
        ({}, ["body", "targets"], "all = true"),
        ({"devices": ["plc-araya"]}, ["body", "targets", "devices", "0"], "plc-araya"),
        ({"devices": ["cu-1", "cu-9"]}, ["body", "targets", "devices", "1"], "cu-9"),
        (
            {"polygon": {"type": "Point", "coordinates": [140, 39]}},
            ["body", "targets", "polygon"],
            "Point",
        ),
        (
            {"polygon": {"type": "Polygon", "coordinates": [[[140, 39], [141, 39], [141, 40]]]}},
            ["body", "targets", "polygon"],
            "at least 4",
        ),
        (
            {
                "polygon": {
                    "type": "Polygon",
                    "coordinates": [[[140, 39], [141, 39], [141, 99], [140, 39]]],
                }
            },
            ["body", "targets", "polygon"],
            "99",
        ),
    ],
)
def test_bad_notices_name_the_field(
    api: TestClient,
    tokens: dict[Role, dict[str, str]],
    targets: dict[str, Any],
    where: list[str],
    value: str,
) -> None:
    r = api.post(
        "/notices",
        json={"kind": "heat", "text": "暑い", "targets": targets},
        headers=tokens[Role.OPERATOR],
    )
    assert loc(r)[: len(where)] == where
    assert value in r.text


@pytest.mark.parametrize(
    ("body", "field", "value"),
    [
        ({"kind": "info", "text": "点検"}, "kind", "info"),
        ({"kind": "heat", "text": "水分を,とって"}, "text", "水分を,とって"),
        ({"kind": "heat", "text": "あ" * 61}, "text", "at most 60"),
    ],
)
def test_notices_a_call_unit_cannot_show_are_refused_at_the_api(
    api: TestClient,
    tokens: dict[Role, dict[str, str]],
    body: dict[str, str],
    field: str,
    value: str,
) -> None:
    # the gateway's own limits (schemas.commands): refused here, not "rejected" by every unit
    r = api.post("/notices", json={**body, "targets": {"all": True}}, headers=tokens[Role.OPERATOR])
    assert loc(r)[-1] == field
    assert value in r.text


def test_text_from_templates_is_fitted_to_the_line() -> None:
    from cloud.commands.notices import line_text
    from schemas.commands import NOTICE_TEXT_MAX

    assert line_text("Akita heat warning: drink water, use the AC.") == (
        "Akita heat warning: drink water、 use the AC."
    )
    long = line_text("秋田市からのお知らせ: " + "長" * 80)
    assert len(long) == NOTICE_TEXT_MAX and long.endswith("…")
    assert line_text("a*b$c\x07") == "a b c"
    assert line_text("\n") == "お知らせ"


def test_a_notice_kind_no_unit_can_show_is_refused_naming_it(cloud: CloudService) -> None:
    from cloud.commands.notices import Targets, send_notice
    from cloud.commands.service import CommandError

    with pytest.raises(CommandError, match="kind: 'info' is not a notice kind"):
        send_notice(
            cloud.commands.service,
            kind="info",  # type: ignore[arg-type]
            text="点検",
            targets=Targets(all=True),
            issuer="token:test",
        )


def test_automation_arm_disarm_and_kill_switch_are_visible_and_audited(
    cloud: CloudService, api: TestClient, tokens: dict[Role, dict[str, str]]
) -> None:
    op, viewer = tokens[Role.OPERATOR], tokens[Role.VIEWER]
    state = api.get("/automation", headers=viewer).json()
    assert state["kill_switch"] is False and state["hold_s"] == 1800
    assert {r["id"]: r["armed"] for r in state["rules"]} == {
        "araya-lamp": True,
        "araya-siren": True,
        "heat-notice": True,
    }
    r = api.put(
        "/automation/rules/araya-lamp", json={"armed": False, "reason": "repair"}, headers=op
    )
    lamp = next(x for x in r.json()["rules"] if x["id"] == "araya-lamp")
    assert lamp["armed"] is False and lamp["changed_by"] == "token:t-operator"
    assert lamp["config"]["target"] == "plc-araya"
    assert api.put("/automation/rules/nope", json={"armed": True}, headers=op).status_code == 404
    assert loc(api.put("/automation/rules/araya-lamp", json={"armed": "maybe"}, headers=op)) == [
        "body",
        "armed",
    ]
    r = api.put("/automation/kill-switch", json={"engaged": True, "reason": "drill"}, headers=op)
    assert r.json()["kill_switch"] is True
    trail = [(a.actor, a.action, a.target) for a in cloud.commands.service.audit_trail()]
    assert ("token:t-operator", "kill_switch_on", "*") in trail
    assert ("token:t-operator", "rule_disarmed", "araya-lamp") in trail
    kpi = api.get("/notices/kpi", headers=viewer).json()
    assert kpi == {"call_units": 5, "units_with_notice_function": 0, "months": []}


def test_the_console_overview_shows_the_notice_kpi_and_a_rule_failure(tmp_path: Path) -> None:
    from tests.cloud.console.conftest import Console

    svc = make_service(tmp_path, commands={"rules": RULES, "enabled": False})
    provision(svc.registry)
    try:
        cmd = svc.commands.service.issue(
            "cu-1", "notice", {"notice_id": "n1"}, issuer="token:x", notice_id="n1"
        )
        svc.commands.service.handle_result(
            "gw-cu-a",
            CommandResult(
                id=cmd.id,
                gateway_id="gw-cu-a",
                device_id="cu-1",
                state=CommandState.DONE,
                ts=datetime.now(UTC),
            ),
        )
        svc.commands.rules.set_armed("*", False, "token:x", "drill")
        page = Console(create_app(svc), svc, tmp_path).client("viewer").get("/console/")
        assert page.status_code == 200
        assert "見守り端末のお知らせ機能" in page.text
        assert '<span class="big">1</span> 人（端末 5 台のうち' in page.text
        assert "受信 1 件、確認（「見ました」）0 件" in page.text
        assert "自動制御は停止中です" in page.text
    finally:
        svc.stop()
