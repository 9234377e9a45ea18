"""The command service on a real Mosquitto, with small clients playing the gateways.

The cloud's clock is the test's (no real waits for expiry or retry); only message
delivery is awaited, with a deadline that fails the test by name.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cloud.api.app import create_app
from cloud.api.auth import Role, create_token
from cloud.commands.states import CloudState
from cloud.ingest.settings import IngestSettings
from cloud.service import CloudService
from schemas.codec import encode_model
from schemas.commands import CommandState
from schemas.wire import GatewayState, GatewayStatus
from tests.cloud.api.conftest import bearer, make_service
from tests.cloud.commands.conftest import RULES, Rig, make_rig, provision
from tests.cloud.commands.gateway import GatewayPlayer
from tests.servers import Mosquitto, wait_for


@pytest.fixture
def live(tmp_path: Path, mosquitto: Mosquitto, unique: str) -> Iterator[Rig]:
    broker = IngestSettings(broker_port=mosquitto.port, client_id=f"ingest-{unique}")
    rig = make_rig(tmp_path, broker=broker)
    rig.commands.start()
    assert rig.service.wait_connected(10)
    yield rig
    rig.commands.stop()


def state(rig: Rig, command_id: str) -> CloudState:
    return rig.service.get(command_id).state


def test_offline_gateway_waits_expires_and_retries_with_the_same_id(
    live: Rig, mosquitto: Mosquitto
) -> None:
    gw = GatewayPlayer(mosquitto.port, "gw-cu-a")
    try:
        gw.birth()
        wait_for("gateway online at the command service", lambda: live.service.online("gw-cu-a"))
        first = live.service.issue("cu-1", "notice", {"text": "a"}, issuer="token:ops", ttl_s=600)
        [got] = gw.wait_commands(1)
        assert str(got.id) == first.id and got.gateway_id == "gw-cu-a"
        gw.offline()  # the uplink drops before the gateway answers
        wait_for("gateway offline", lambda: not live.service.online("gw-cu-a"))
        waits = live.service.issue("cu-2", "notice", {"text": "b"}, issuer="token:ops", ttl_s=600)
        short = live.service.issue("cu-1", "notice", {"text": "c"}, issuer="token:ops", ttl_s=60)
        live.clock.advance(120)  # two minutes offline: the short one expires unsent
        live.service.tick()
        assert state(live, short.id) is CloudState.EXPIRED
        assert "before it could be sent" in (live.service.get(short.id).reason or "")
        assert state(live, waits.id) is CloudState.QUEUED
        assert state(live, first.id) is CloudState.SENT
        assert len(gw.commands()) == 1  # nothing published while offline
        gw.birth()  # back: the waiting one, and the unanswered first one again, same id
        got = gw.wait_commands(3)
        assert sorted(str(c.id) for c in got[1:]) == sorted([first.id, waits.id])
        assert short.id not in {str(c.id) for c in got}  # expired: never sent
        for command in got[1:]:
            gw.result(command, CommandState.ACCEPTED)
            gw.result(command, CommandState.DONE, readback={"acked": True})
        wait_for(
            "both done", lambda: {state(live, first.id), state(live, waits.id)} == {CloudState.DONE}
        )
        trail = [(e.action, e.to_state) for e in live.service.events(first.id)]
        assert trail == [
            ("issue", "queued"),
            ("publish", "sent"),
            ("publish", "sent"),
            ("result", "accepted"),
            ("result", "done"),
        ]
        assert live.service.get(first.id).readback == {"acked": True}
        assert live.service.get(first.id).attempts == 2
    finally:
        gw.close()


def test_a_new_birth_without_an_offline_between_sends_the_unanswered_again_at_once(
    live: Rig, mosquitto: Mosquitto
) -> None:
    # the cloud never saw this gateway go offline (a Last Will lost with a broker restart
    # without persistence): its new session may never have had the command
    gw = GatewayPlayer(mosquitto.port, "gw-cu-b")
    try:
        gw.birth()
        wait_for("gateway online", lambda: live.service.online("gw-cu-b"))
        sent = live.service.issue("cu-4", "notice", {"text": "a"}, issuer="token:ops", ttl_s=600)
        gw.wait_commands(1)
        gw.birth()  # a new connect time; the clock does not move, so no retry is due
        again = gw.wait_commands(2)
        assert [str(c.id) for c in again] == [sent.id, sent.id]
        assert live.service.get(sent.id).attempts == 2
        # the same birth read again (the cloud's own reconnect) sends nothing more
        ts = live.service._births["gw-cu-b"]
        same = GatewayStatus(gateway_id="gw-cu-b", state=GatewayState.ONLINE, ts=ts)
        live.service.handle_status_payload("gw-cu-b", encode_model(same))
        assert live.service.get(sent.id).attempts == 2
    finally:
        gw.close()


def test_retry_while_online_reuses_the_id_and_a_late_done_corrects_the_cloud_expiry(
    live: Rig, mosquitto: Mosquitto
) -> None:
    gw = GatewayPlayer(mosquitto.port, "gw-sign")
    try:
        gw.birth()
        wait_for("gateway online", lambda: live.service.online("gw-sign"))
        lamp = live.service.issue(
            "plc-araya", "lamp", {"value": True}, issuer="rule:araya-lamp", ttl_s=120
        )
        gw.wait_commands(1)
        live.clock.advance(31)  # retry_s = 30: no result yet -> published again
        live.service.tick()
        again = gw.wait_commands(2)
        assert again[0].id == again[1].id
        live.clock.advance(120)
        live.service.tick()
        assert state(live, lamp.id) is CloudState.EXPIRED  # the cloud gave up
        gw.result(again[1], CommandState.DONE, readback={"lamp_on": True, "lamp_current_a": 0.8})
        wait_for("late done applied", lambda: state(live, lamp.id) is CloudState.DONE)
        assert live.service.get(lamp.id).final_source == "gateway"
    finally:
        gw.close()


def test_a_result_from_a_gateway_that_does_not_own_the_device_is_refused(
    live: Rig, mosquitto: Mosquitto
) -> None:
    owner, other = (
        GatewayPlayer(mosquitto.port, "gw-cu-a"),
        GatewayPlayer(mosquitto.port, "gw-cu-b"),
    )
    try:
        owner.birth()
        wait_for("owner online", lambda: live.service.online("gw-cu-a"))
        cmd = live.service.issue("cu-1", "notice", {"text": "x"}, issuer="token:ops")
        [got] = owner.wait_commands(1)
        other.result(got, CommandState.DONE)  # gw-cu-b answers for gw-cu-a's unit
        refused = "akita_command_results_refused_total"
        wait_for(
            "refusal counted", lambda: live.service.metrics.value(refused, reason="not_owner") == 1
        )
        assert state(live, cmd.id) is CloudState.SENT
        assert ("result_refused", "sent") in [
            (e.action, e.to_state) for e in live.service.events(cmd.id)
        ]
        owner.result(got, CommandState.DONE)
        wait_for("owner's result applied", lambda: state(live, cmd.id) is CloudState.DONE)
    finally:
        owner.close()
        other.close()


@pytest.fixture
def cloud(tmp_path: Path, mosquitto: Mosquitto, unique: str) -> Iterator[CloudService]:
    svc = make_service(
        tmp_path,
        ingest={
            "broker_host": "127.0.0.1",
            "broker_port": mosquitto.port,
            "client_id": f"ingest-{unique}",
            "group": None,
        },
        commands={"rules": RULES, "tick_s": 0.2},
    )
    provision(svc.registry)
    svc.start()
    yield svc
    svc.stop()


def test_heat_wave_notices_exactly_the_units_in_the_hot_area_and_counts_seen(
    cloud: CloudService, mosquitto: Mosquitto
) -> None:
    """Telemetry -> ingest -> heat detector -> alert -> rule -> one notice to each unit of
    土崎 (cu-1, cu-2 on gw-cu-a; cu-4 on gw-cu-b), none to 新屋 or 中通 -> results ->
    a resident's seen press in telemetry -> the per-notice summary in the API."""
    token = create_token(cloud.sessionmaker, name="ops", role=Role.VIEWER)
    api = TestClient(create_app(cloud, extra_routers=[]))
    a = GatewayPlayer(mosquitto.port, "gw-cu-a", answer=True)
    b = GatewayPlayer(mosquitto.port, "gw-cu-b", answer=True)
    try:
        a.birth()
        b.birth()
        wait_for(
            "gateways online",
            lambda: (
                cloud.commands.service.online("gw-cu-a")
                and cloud.commands.service.online("gw-cu-b")
            ),
        )
        now = datetime.now(UTC)
        # 30 °C at 70 % RH: indoor WBGT 28.7, 厳重警戒
        a.telemetry(
            [
                {
                    "kind": "call_unit",
                    "device_id": "cu-1",
                    "ts": now - timedelta(seconds=1),
                    "values": {"temperature": 30.0, "humidity": 70.0},
                }
            ]
        )
        at_a, at_b = a.wait_commands(2), b.wait_commands(1)
        assert sorted(c.device_id for c in at_a) == ["cu-1", "cu-2"]
        assert [c.device_id for c in at_b] == ["cu-4"]
        notice_id = str(at_a[0].params["notice_id"])
        assert {c.params["notice_id"] for c in at_a + at_b} == {notice_id}
        assert all(c.action == "notice" and c.params["kind"] == "heat" for c in at_a + at_b)

        def summary() -> dict[str, int]:
            r = api.get(f"/notices/{notice_id}", headers=bearer(token))
            return r.json()["summary"]  # type: ignore[no-any-return]

        wait_for("all three delivered", lambda: summary()["delivered"] == 3)
        a.telemetry(
            [
                {
                    "kind": "call_unit",
                    "device_id": "cu-2",
                    "ts": datetime.now(UTC),
                    "values": {"event": "notice_seen", "notice_id": notice_id},
                }
            ]
        )
        wait_for("the seen press counted", lambda: summary()["seen"] == 1)
        assert summary() == {
            "targeted": 3,
            "delivered": 3,
            "seen": 1,
            "failed": 0,
            "rejected": 0,
            "expired": 0,
            "cancelled": 0,
            "pending": 0,
        }
        # more heat the same day: nobody is told twice
        b.telemetry(
            [
                {
                    "kind": "call_unit",
                    "device_id": "cu-4",
                    "ts": datetime.now(UTC),
                    "values": {"temperature": 33.0, "humidity": 70.0},
                }
            ]
        )
        wait_for(
            "rule ran",
            lambda: (
                cloud.commands.rules.flush(1)
                and any(r.action == "rule_skipped" for r in cloud.commands.service.audit_trail())
            ),
        )
        assert len(a.commands()) == 2 and len(b.commands()) == 1
        kpi = api.get("/notices/kpi", headers=bearer(token)).json()
        assert kpi["call_units"] == 5 and kpi["units_with_notice_function"] == 3
        [month] = kpi["months"]
        assert (month["notices_received"], month["notices_seen"]) == (3, 1)
    finally:
        a.close()
        b.close()
