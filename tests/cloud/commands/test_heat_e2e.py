"""Issue 15's heat acceptance point, end to end: six call units on one AKCU line (firmware_sim's
``AkcuLine`` over a pty), three in 土崎 and three in 新屋, the real edge gateway with the
call-unit driver, Mosquitto and the whole ``CloudService`` (ingest, call-unit detector,
alerts, the command service with the heat rule of ``tests/cloud/commands/conftest.py``).

A heat wave soaks 土崎's rooms to 厳重警戒 (新屋's only to 警戒, below the rule's stage):
the units report it in their heartbeats, and exactly 土崎's units show one notice each.
Their receipts (the gateway's ``done`` after the unit's ``$AKNA``) and two residents'
"seen" presses reach ``GET /notices/{id}`` and ``GET /notices/kpi``; 危険 the same day
tells nobody twice. Waits are bounded conditions."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from cloud.alerts.manager import AlertRecord
from cloud.api.app import create_app
from cloud.api.auth import Role, create_token
from cloud.commands.states import CloudState
from cloud.detect.callunit import indoor_wbgt
from cloud.service import CloudService
from edge.agent import Agent
from edge.config import parse_config
from firmware_sim.models.callunit import CallUnitModel
from firmware_sim.servers.akcu import AkcuLine
from firmware_sim.servers.endpoints import PtyEndpoint
from schemas.alert import AlertState
from tests.cloud.api.conftest import bearer, make_service
from tests.cloud.commands.conftest import RULES, call_unit
from tests.servers import Mosquitto, wait_for

GW = "gw-cu-heat"
HOT, COOL = "土崎", "新屋"
AREA = {1: HOT, 2: COOL, 3: HOT, 4: COOL, 5: HOT, 6: COOL}  # interleaved on the line
PLACE = {HOT: ("北部", 39.757, 140.066), COOL: ("西部", 39.700, 140.080)}
PRESSING = {1, 3}  # of 土崎's residents, these two press "seen"; unit 5's does not
MILD, SEVERE, DANGER, WARNING = (24.0, 50.0), (31.0, 70.0), (33.0, 75.0), (28.0, 60.0)
HEAT_RULES = [r for r in RULES if r["id"] == "heat-notice"]


def dev(unit: int) -> str:
    return f"cu-{unit}"


@dataclass
class Line:
    akcu: AkcuLine
    models: dict[int, CallUnitModel]

    def set_room(self, area: str, climate: tuple[float, float]) -> None:
        for u, model in self.models.items():
            if AREA[u] == area:
                model.indoor = climate

    def shown(self) -> list[tuple[str, str]]:
        """(device, notice id) of every notice a unit showed, in order."""
        return [(dev(n.unit_id), n.notice_id) for n in list(self.akcu.notices)]


@contextmanager
def _on_a_thread(main: Any) -> Iterator[dict[str, Any]]:
    """Run ``main(state)`` on its own thread and loop until ``state["stop"]`` is set."""
    ready = threading.Event()
    state: dict[str, Any] = {}

    async def run() -> None:
        state["loop"], state["stop"] = asyncio.get_running_loop(), asyncio.Event()
        await main(state, ready)

    thread = threading.Thread(target=asyncio.run, args=(run(),), daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        yield state
    finally:
        state["loop"].call_soon_threadsafe(state["stop"].set)
        thread.join(15)


@contextmanager
def akcu_line() -> Iterator[Line]:
    """The six units on a pty, ticked every 0.1 s of real time; a heartbeat every 0.5 s."""
    t0 = time.time()
    models = {
        u: CallUnitModel(dev(u), u, unit_id=u, t0=t0, hb_interval_s=0.5, hb_phase_s=0.05 * u,
                         indoor=MILD)
        for u in AREA
    }  # fmt: skip

    async def main(state: dict[str, Any], ready: threading.Event) -> None:
        ep = PtyEndpoint("akcu")
        await ep.start()
        state["line"] = AkcuLine("akcu", ep, models, seen_after_s=0.3, pressing=PRESSING)
        ready.set()
        while not state["stop"].is_set():
            state["line"].tick(time.time())
            await asyncio.sleep(0.1)
        await ep.stop()

    with _on_a_thread(main) as state:
        yield Line(state["line"], models)


def gateway_config(tmp: Path, mqtt_port: int, path: str) -> dict[str, Any]:
    return {
        "gateway": {"id": GW, "spool_path": str(tmp / "spool.db"), "batch_max_delay_s": 0.1},
        "mqtt": {"host": "127.0.0.1", "port": mqtt_port, "reconnect_max_s": 1.0},
        "devices": [
            {"id": dev(u), "kind": "call_unit", "driver": "call_unit", "serial_port": path,
             "baudrate": 115200, "unit_id": u, "poll_interval_s": 0.5, "area": area,
             "actions": [{"name": "notice"}]}
            for u, area in AREA.items()
        ],
    }  # fmt: skip


@contextmanager
def gateway(tmp: Path, mqtt_port: int, path: str) -> Iterator[Agent]:
    """The real edge agent on its own thread and loop (the cloud has its own)."""
    agent = Agent(parse_config(gateway_config(tmp, mqtt_port, path)))

    async def main(state: dict[str, Any], ready: threading.Event) -> None:
        ready.set()
        await agent.run(state["stop"])

    with _on_a_thread(main):
        yield agent


@contextmanager
def heat_site(tmp: Path, mqtt_port: int, client_id: str) -> Iterator[tuple[CloudService, Line]]:
    cloud = make_service(
        tmp,
        ingest={"broker_host": "127.0.0.1", "broker_port": mqtt_port, "client_id": client_id,
                "group": None},
        commands={"rules": HEAT_RULES, "tick_s": 0.2},
    )  # fmt: skip
    cloud.registry.provision(GW, [call_unit(dev(u), a, *PLACE[a]) for u, a in AREA.items()])
    cloud.start()
    try:
        with akcu_line() as line, gateway(tmp, mqtt_port, line.akcu.endpoint.address):
            yield cloud, line
    finally:
        cloud.stop()


def _stored(cloud: CloudService, unit: int, climate: tuple[float, float]) -> bool:
    latest = cloud.store.latest(dev(unit))
    got = [latest.get(f) for f in ("temperature", "humidity")]
    return all(p is not None for p in got) and tuple(p.value for p in got) == climate  # type: ignore[union-attr]


def _open_heat(cloud: CloudService, unit: int) -> list[AlertRecord]:
    return cloud.alerts.query(state=AlertState.OPEN, kind="heat_wbgt", device_id=dev(unit))


def _heat_stage(cloud: CloudService, unit: int) -> str | None:
    open_ = _open_heat(cloud, unit)
    return str(open_[0].extra.get("stage")) if open_ else None


def test_heat_wave_notices_exactly_the_hot_area_once_with_receipts_and_seen_presses(
    tmp_path: Path, mosquitto: Mosquitto, unique: str
) -> None:
    hot = [u for u, a in AREA.items() if a == HOT]
    cool = [u for u, a in AREA.items() if a == COOL]
    assert indoor_wbgt(*SEVERE) >= 28 > indoor_wbgt(*WARNING) >= 25 > indoor_wbgt(*MILD)
    assert indoor_wbgt(*DANGER) >= 31
    with heat_site(tmp_path, mosquitto.port, f"ingest-{unique}") as (cloud, line):
        token = create_token(cloud.sessionmaker, name="ops", role=Role.VIEWER)
        api = TestClient(create_app(cloud, extra_routers=[]))
        service = cloud.commands.service
        wait_for("the gateway online", lambda: service.online(GW))
        wait_for("every unit's mild heartbeat stored", lambda: all(
            _stored(cloud, u, MILD) for u in AREA))  # fmt: skip

        line.set_room(HOT, SEVERE)  # the heat wave: 土崎 厳重警戒, 新屋 only 警戒
        line.set_room(COOL, WARNING)
        wait_for("every unit's heat stored", lambda: all(
            _stored(cloud, u, SEVERE if u in hot else WARNING) for u in AREA))  # fmt: skip
        wait_for("heat alerts at each unit's stage", lambda: all(
            _heat_stage(cloud, u) == ("severe_warning" if u in hot else "warning")
            for u in AREA))  # fmt: skip
        wait_for("a notice shown by each of 土崎's units", lambda: sorted(
            d for d, _ in line.shown()) == [dev(u) for u in hot])  # fmt: skip
        [notice_id] = {nid for _, nid in line.shown()}
        # 厳重警戒 is level 2 on the line; the rule's text as the unit shows it
        heat_text = HEAT_RULES[0]["text"]
        assert all((n.kind, n.level, n.text) == ("HEAT", 2, heat_text) for n in line.akcu.notices)

        def summary() -> dict[str, int]:
            r = api.get(f"/notices/{notice_id}", headers=bearer(token))
            assert r.status_code == 200, r.text
            return r.json()["summary"]  # type: ignore[no-any-return]

        wait_for("the receipts at the API", lambda: summary()["delivered"] == len(hot))
        wait_for("the seen presses at the API", lambda: summary()["seen"] == len(PRESSING))
        assert summary() == {"targeted": 3, "delivered": 3, "seen": 2, "failed": 0,
                             "rejected": 0, "expired": 0, "cancelled": 0, "pending": 0}  # fmt: skip
        commands = service.query(notice_id=notice_id)
        assert sorted(c.device_id for c in commands) == [dev(u) for u in hot]
        assert all(c.state is CloudState.DONE and c.gateway_id == GW for c in commands)
        assert all(c.issuer == "rule:heat-notice" for c in commands)
        assert line.akcu.pending == {}  # every SEEN was acknowledged by the gateway

        # the heat persists and deepens to 危険 the same day: the rule runs, tells nobody
        mark = max((a.id for a in service.audit_trail(1)), default=0)
        line.set_room(HOT, DANGER)
        wait_for("danger alerts in 土崎", lambda: all(
            _heat_stage(cloud, u) == "danger" for u in hot))  # fmt: skip
        danger_alerts = {_open_heat(cloud, u)[0].alert.id for u in hot}

        def skipped_each() -> bool:
            notes = [a.note or "" for a in service.audit_trail(200)
                     if a.id > mark and a.action == "rule_skipped"]  # fmt: skip
            return all(any(n.startswith(f"alert {a}:") for n in notes) for a in danger_alerts)

        wait_for("the rule skipped every danger update (told today)", skipped_each)
        assert cloud.commands.rules.flush(10)
        assert len(service.query(rule_id="heat-notice", limit=1000)) == len(hot)
        assert sorted(line.shown()) == sorted((dev(u), notice_id) for u in hot)  # once each
        assert not any(d in {dev(u) for u in cool} for d, _ in line.shown())

        kpi = api.get("/notices/kpi", headers=bearer(token)).json()
        assert (kpi["call_units"], kpi["units_with_notice_function"]) == (len(AREA), len(hot))
        received = sum(m["notices_received"] for m in kpi["months"])
        seen = sum(m["notices_seen"] for m in kpi["months"])
        assert (received, seen) == (len(hot), len(PRESSING))
