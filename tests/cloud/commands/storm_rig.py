"""The whole storm path in one process: the cloud (CloudService: ingest, detectors, alerts,
command service, rules, the local-rule push) on a real Mosquitto, and the real gateway
from ``deploy/edge/warning_sign.toml`` on its own thread and loop, with the underpass's
depth sensor and warning sign simulated on a pty RTU bus (tests/edge/sign_peers.py).
Shared by the end-to-end test and ``bench/downlink --storms``."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cloud.commands.records import CommandRecord
from cloud.service import CloudService
from edge.agent import Agent
from edge.config import parse_config
from schemas.wire import DeviceInfo
from tests.cloud.api.conftest import make_service
from tests.edge.sign_peers import GW, SENSOR, SIGN, Underpass, sample_config, underpass_on_a_bus

# the operators' rules of docs/commands.md section 5, for this underpass
SIGN_RULES: list[dict[str, Any]] = [
    {"id": "araya-lamp", "type": "device_action", "alert_kind": "flood_stage",
     "source": SENSOR, "min_stage": "warning", "target": SIGN, "action": "lamp",
     "params": {"value": True}, "off_params": {"value": False}},
    {"id": "araya-siren", "type": "device_action", "alert_kind": "flood_stage",
     "source": SENSOR, "min_stage": "danger", "target": SIGN, "action": "siren",
     "params": {"value": True}, "off_params": {"value": False}},
]  # fmt: skip


@dataclass
class StormSite:
    cloud: CloudService
    site: Underpass
    agent: Agent  # the gateway (its stats are read across threads: plain attributes)

    def depth_cm(self, cm: float) -> None:
        self.site.sensor.depth_mm = round(cm * 10)

    def commands(self, rule_id: str | None = None) -> list[CommandRecord]:
        found = self.cloud.commands.service.query(device_id=SIGN, rule_id=rule_id, limit=1000)
        return sorted(found, key=lambda c: c.issued_at)

    def latest(self, field: str) -> Any:
        """The cloud's stored view of the sign: the field's latest value."""
        point = self.cloud.store.latest(SIGN).get(field)
        return None if point is None else point.value


@contextmanager
def storm_site(
    tmp: Path, mqtt_port: int, client_id: str, *, gateway_port: int | None = None
) -> Iterator[StormSite]:
    """``gateway_port``: where the gateway connects instead of ``mqtt_port`` (a relay
    in front of the broker, its cellular link, that a test can cut)."""
    cloud = make_service(
        tmp,
        ingest={"broker_host": "127.0.0.1", "broker_port": mqtt_port, "client_id": client_id,
                "group": None},
        commands={"rules": SIGN_RULES, "tick_s": 0.2},
        alerts={"hold_off_s": 0, "min_open_s": 0},  # the all-clear acts at once
    )  # fmt: skip
    cloud.registry.provision(GW, [
        DeviceInfo(device_id=SENSOR, kind="flood_sensor", site="新屋アンダーパス"),  # type: ignore[arg-type]
        DeviceInfo(device_id=SIGN, kind="warning_sign", site="新屋アンダーパス"),  # type: ignore[arg-type]
    ])  # fmt: skip
    cloud.start()
    try:
        with (
            underpass_on_a_bus() as site,
            _gateway(tmp, gateway_port or mqtt_port, site.path) as agent,
        ):
            yield StormSite(cloud, site, agent)
    finally:
        cloud.stop()


@contextmanager
def _gateway(tmp: Path, mqtt_port: int, bus_path: str) -> Iterator[Agent]:
    """The real edge agent on its own thread and event loop (the cloud has its own)."""
    agent = Agent(parse_config(sample_config(tmp, mqtt_port, bus_path)))
    ready = threading.Event()
    state: dict[str, Any] = {}

    async def main() -> None:
        state["loop"], state["stop"] = asyncio.get_running_loop(), asyncio.Event()
        ready.set()
        await agent.run(state["stop"])

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        yield agent
    finally:
        state["loop"].call_soon_threadsafe(state["stop"].set)
        thread.join(15)
