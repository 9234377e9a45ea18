"""A compromised gateway, as an attacker would use it (issue 14).

gw-a's identity, a real MQTT client publishing on gw-a's own topics, against the real
cloud: Mosquitto, the cloud service's ingest, detectors and alert lifecycle, InfluxDB
1.x and the SQLite registry. gw-a tries to speak for gw-b's devices (a 危険 flood
reading, an offline status, a meta that re-homes them), to send a reading of the wrong
kind, and to replay old seqs with new content. Each attempt is dead-lettered and
counted; nothing of it reaches the store or the alerts; every legitimate reading of
both gateways is stored (counted exactly). A device move from another process takes
effect in running ingest workers without a restart.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from cloud.db.base import make_engine, make_sessionmaker
from cloud.db.models import AlertRow, DeviceRow
from cloud.registry import Registry
from cloud.service import CloudService
from cloud.settings import CloudSettings
from cloud.store import open_store
from schemas import (
    Batch,
    DeviceInfo,
    DeviceStatus,
    GatewayMeta,
    GatewayState,
    GatewayStatus,
    encode_batch,
    encode_model,
    reading_adapter,
    topics,
)
from tests.cloud.ingest.helpers import Collector, Publisher, start_group, wait_until
from tests.servers import Influx, Mosquitto

ROOT = Path(__file__).resolve().parents[2]
DANGER_CM = 60.0  # far above the 危険 stage


def reading(device: str, kind: str, ts: datetime, **values: float) -> Any:
    return reading_adapter.validate_python(
        {"device_id": device, "kind": kind, "ts": ts, "values": values}
    )


@dataclass
class City:
    """Two gateways' devices, provisioned; the cloud running; publishers connected."""

    service: CloudService
    influx: Influx
    db: str
    gw_a: str
    gw_b: str
    a: Publisher  # the compromised gateway (its own identity and topic)
    b: Publisher
    dead: Collector
    t0: datetime
    port: int

    def send(self, pub: Publisher, gateway: str, seq: int, *items: Any) -> None:
        readings = [i for i in items if not isinstance(i, DeviceStatus)]
        statuses = [i for i in items if isinstance(i, DeviceStatus)]
        batch = Batch(
            gateway_id=gateway, seq=seq, sent_at=self.t0, readings=readings, statuses=statuses
        )
        pub.publish(topics.telemetry(gateway), encode_batch(batch))

    def at(self, minute: float) -> datetime:
        return self.t0 + timedelta(minutes=minute)

    def points(self, measurement: str, field: str, device: str) -> list[float]:
        q = f'SELECT "{field}" FROM "{measurement}" WHERE "device" = \'{device}\''
        result = self.influx.query(q, self.db)["results"][0]
        return [v[1] for s in result.get("series", []) for v in s["values"]]

    def alerts_for(self, device: str) -> list[str]:
        with self.service.sessionmaker() as s:
            return list(s.scalars(select(AlertRow.kind).where(AlertRow.device_id == device)))

    def dead_letters(self) -> list[dict[str, Any]]:
        return self.dead.json()

    def refused(self, reason: str, item: str) -> float:
        return self.service.metrics.value("akita_ingest_refused_total", reason=reason, item=item)


@pytest.fixture
def city(
    tmp_path: Path, mosquitto: Mosquitto, influx: Influx, influx_db: str, unique: str
) -> Iterator[City]:
    gw_a, gw_b = f"gwa{unique}", f"gwb{unique}"
    settings = CloudSettings.from_mapping(
        {
            "environment": "test",
            "ingest": {
                "broker_port": mosquitto.port,
                "client_id": f"ingest-{unique}",
                "group": f"g{unique}",
                "batch_time_s": 0.05,
            },
            "store": {"url": f"influx+http://127.0.0.1:{influx.port}/{influx_db}"},
            "database": {"url": f"sqlite:///{tmp_path / 'akita.db'}"},
            "alerts": {"hold_off_s": 600, "min_open_s": 0},
        },
        source="test",
    )
    store = open_store(settings.store.url)
    store.init_db()  # type: ignore[attr-defined]
    service = CloudService(settings, store=store)
    service.registry.provision(
        gw_a,
        [
            DeviceInfo(device_id=f"wb-a-{unique}", kind="water_block"),  # type: ignore[arg-type]
            DeviceInfo(device_id=f"fs-a-{unique}", kind="flood_sensor", area="八橋"),  # type: ignore[arg-type]
        ],
    )
    service.registry.provision(
        gw_b,
        [DeviceInfo(device_id=f"fs-b-{unique}", kind="flood_sensor", site="新屋", area="新屋")],  # type: ignore[arg-type]
    )
    service.start()
    assert service.ingest is not None and service.ingest.wait_ready()
    dead = Collector(mosquitto.port, "akita/v1/deadletter/#", f"dl-{unique}")
    a = Publisher(mosquitto.port, f"{gw_a}")
    b = Publisher(mosquitto.port, f"{gw_b}")
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    try:
        yield City(service, influx, influx_db, gw_a, gw_b, a, b, dead, t0, mosquitto.port)
    finally:
        for c in (a, b, dead):
            c.close()
        service.stop()


def test_a_danger_reading_for_another_gateways_flood_sensor_is_refused(
    city: City, unique: str
) -> None:
    wb_a, fs_a, fs_b = f"wb-a-{unique}", f"fs-a-{unique}", f"fs-b-{unique}"
    c = city
    c.send(c.b, c.gw_b, 0, reading(fs_b, "flood_sensor", c.at(0), depth=1.0))
    # the attack: gw-a, on its own topic, a 危険 depth for gw-b's sensor, next to its own
    c.send(
        c.a,
        c.gw_a,
        0,
        reading(fs_b, "flood_sensor", c.at(1), depth=DANGER_CM),
        reading(wb_a, "water_block", c.at(1), flow=10.0),
    )
    c.send(c.b, c.gw_b, 1, reading(fs_b, "flood_sensor", c.at(2), depth=2.0))
    c.send(c.a, c.gw_a, 1, reading(wb_a, "water_block", c.at(2), flow=11.0))
    # a positive control: gw-a's own sensor at 危険 does open an alert
    c.send(c.a, c.gw_a, 2, reading(fs_a, "flood_sensor", c.at(3), depth=DANGER_CM))

    wait_until(lambda: "flood_stage" in c.alerts_for(fs_a))
    assert c.alerts_for(fs_b) == []  # no alert, so nothing for residents either
    assert sorted(c.points("flood_sensor", "depth", fs_b)) == [1.0, 2.0]  # gw-b's, exactly
    assert sorted(c.points("water_block", "flow", wb_a)) == [10.0, 11.0]  # the rest kept
    assert c.points("flood_sensor", "depth", fs_a) == [DANGER_CM]
    [letter] = c.dead_letters()
    assert letter["topic"] == topics.telemetry(c.gw_a)
    assert f"readings.0.device_id: '{fs_b}' is owned by another gateway" in letter["reason"]
    assert "refused 1 of 2 items" in letter["reason"]
    assert c.refused("not_owner", "reading") == 1
    gateway = c.service.registry.gateway(c.gw_a)
    assert gateway is not None and gateway.gaps == 0  # the partial batch counts as received


def test_a_status_marking_another_gateways_device_offline_is_refused(
    city: City, unique: str
) -> None:
    wb_a, fs_b = f"wb-a-{unique}", f"fs-b-{unique}"
    c = city
    online = DeviceStatus(device_id=fs_b, ts=c.at(0), state="online")  # type: ignore[arg-type]
    c.send(c.b, c.gw_b, 0, online, reading(fs_b, "flood_sensor", c.at(0), depth=1.0))
    wait_until(lambda: c.service.registry.device_state(fs_b).state == "online")
    offline = DeviceStatus(device_id=fs_b, ts=c.at(1), state="offline", reason="cut")  # type: ignore[arg-type]
    c.send(c.a, c.gw_a, 0, offline)
    c.send(c.a, c.gw_a, 1, reading(wb_a, "water_block", c.at(2), flow=5.0))
    wait_until(lambda: c.points("water_block", "flow", wb_a) == [5.0])

    assert c.service.registry.device_state(fs_b).state == "online"
    assert len(c.points("device_status", "online", fs_b)) == 1  # gw-b's only
    [letter] = c.dead_letters()
    assert f"statuses.0.device_id: '{fs_b}' is owned by another gateway" in letter["reason"]
    assert c.refused("not_owner", "status") == 1


def test_a_meta_rehoming_another_gateways_devices_is_refused(city: City, unique: str) -> None:
    wb_a, fs_b = f"wb-a-{unique}", f"fs-b-{unique}"
    c = city
    meta = GatewayMeta(
        gateway_id=c.gw_a,
        ts=datetime.now(UTC),
        devices=[
            DeviceInfo(device_id=wb_a, kind="water_block", site="川端"),  # type: ignore[arg-type]
            DeviceInfo(device_id=fs_b, kind="flood_sensor", area="<script>偽の町</script>"),  # type: ignore[arg-type]
            DeviceInfo(device_id=f"new-{unique}", kind="flood_sensor"),  # type: ignore[arg-type]
        ],
    )
    c.a.publish(topics.meta(c.gw_a), encode_model(meta), retain=True)
    wait_until(lambda: len(c.dead_letters()) == 1)

    registry = c.service.registry
    assert registry.gateway_of(fs_b) == c.gw_b
    info = registry.device(fs_b)
    assert info is not None and info.area == "新屋"
    assert f"new-{unique}" not in registry.devices()  # meta never creates a device
    info_a = registry.device(wb_a)
    assert info_a is not None and info_a.site == "川端"  # its own: descriptive fields filled
    with c.service.sessionmaker() as s:
        row = s.get(DeviceRow, fs_b)
        assert row is not None and (row.gateway_id, row.area) == (c.gw_b, "新屋")
        assert s.get(DeviceRow, f"new-{unique}") is None
    reason = c.dead_letters()[0]["reason"]
    assert f"devices.1.device_id: '{fs_b}' is owned by another gateway" in reason
    assert f"devices.2.device_id: 'new-{unique}' is not provisioned" in reason
    assert c.refused("not_owner", "meta") == 1 and c.refused("unknown_device", "meta") == 1


def test_a_reading_of_the_wrong_kind_is_refused(city: City, unique: str) -> None:
    wb_a = f"wb-a-{unique}"
    c = city
    c.send(c.a, c.gw_a, 0, reading(wb_a, "flood_sensor", c.at(0), depth=DANGER_CM))
    c.send(c.a, c.gw_a, 1, reading(wb_a, "water_block", c.at(1), flow=3.0))
    wait_until(lambda: c.points("water_block", "flow", wb_a) == [3.0])
    assert c.points("flood_sensor", "depth", wb_a) == []
    assert c.alerts_for(wb_a) == []
    [letter] = c.dead_letters()
    assert f"'{wb_a}' is registered with another kind" in letter["reason"]
    assert c.refused("kind_mismatch", "reading") == 1


def test_a_seq_replay_with_new_content_is_refused_until_a_new_boot_id(
    city: City, unique: str
) -> None:
    wb_a, fs_a = f"wb-a-{unique}", f"fs-a-{unique}"
    c = city
    for i, seq in enumerate(range(10_000, 10_003)):
        c.send(c.a, c.gw_a, seq, reading(wb_a, "water_block", c.at(i), flow=float(i)))
    wait_until(lambda: len(c.points("water_block", "flow", wb_a)) == 3)
    # a second device claiming gw-a's name: an old seq, and a recent seq, with new content
    clone = Publisher(c.port, f"clone-{unique}")
    try:
        c.send(clone, c.gw_a, 3, reading(fs_a, "flood_sensor", c.at(5), depth=DANGER_CM))
        c.send(clone, c.gw_a, 10_001, reading(fs_a, "flood_sensor", c.at(6), depth=DANGER_CM))
    finally:
        clone.close()
    wait_until(lambda: len(c.dead_letters()) == 2)
    reasons = [d["reason"] for d in c.dead_letters()]
    assert "seq: 3 of gateway" in reasons[0] and "without a birth message" in reasons[0]
    assert "seq: 10001 of gateway" in reasons[1] and "other content" in reasons[1]
    assert c.refused("seq_rollback", "batch") == 1

    # the documented reset: a birth with a new boot id, then the counter starts again
    birth = GatewayStatus(gateway_id=c.gw_a, state=GatewayState.ONLINE, boot_id="b-2")
    c.a.publish(topics.status(c.gw_a), encode_model(birth), retain=True)
    wait_until(lambda: (c.service.registry.gateway(c.gw_a) or birth).boot_id == "b-2")  # type: ignore[union-attr]
    c.send(c.a, c.gw_a, 0, reading(wb_a, "water_block", c.at(7), flow=7.0))
    wait_until(lambda: len(c.points("water_block", "flow", wb_a)) == 4)
    assert sorted(c.points("water_block", "flow", wb_a)) == [0.0, 1.0, 2.0, 7.0]
    assert c.points("flood_sensor", "depth", fs_a) == []
    assert c.alerts_for(fs_a) == []
    assert len(c.dead_letters()) == 2


def test_a_device_move_takes_effect_in_running_workers_without_a_restart(
    tmp_path: Path, mosquitto: Mosquitto, influx: Influx, influx_db: str, unique: str
) -> None:
    gw_a, gw_b, dev = f"gwa{unique}", f"gwb{unique}", f"fs-{unique}"
    url = f"sqlite:///{tmp_path / 'akita.db'}"
    config = tmp_path / "cloud.toml"
    config.write_text(f'environment = "test"\n[database]\nurl = "{url}"\n', encoding="utf-8")
    cli = [sys.executable, "-m", "akita", "cloud", "device"]
    run = {"cwd": ROOT, "capture_output": True, "text": True, "check": True}
    subprocess.run([*cli, "add", dev, "--gateway", gw_a, "--kind", "flood_sensor",
                    "--config", str(config)], **run)  # type: ignore[call-overload]  # fmt: skip
    store_url = f"influx+http://127.0.0.1:{influx.port}/{influx_db}"
    init = open_store(store_url)
    init.init_db()  # type: ignore[attr-defined]
    init.close()
    workers = start_group(
        mosquitto.port,
        f"m{unique}",
        lambda _i: open_store(store_url),
        lambda _i: Registry(make_sessionmaker(make_engine(url))),  # as two processes
    )
    a = Publisher(mosquitto.port, gw_a)
    b = Publisher(mosquitto.port, gw_b)
    dead = Collector(mosquitto.port, "akita/v1/deadletter/#", f"dl-{unique}")
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)

    def send(pub: Publisher, gw: str, seq: int, depth: float) -> None:
        r = reading(dev, "flood_sensor", t0 + timedelta(minutes=seq), depth=depth)
        batch = Batch(gateway_id=gw, seq=seq, sent_at=t0, readings=[r])
        pub.publish(topics.telemetry(gw), encode_batch(batch))

    def depths() -> list[float]:
        q = f'SELECT "depth" FROM "flood_sensor" WHERE "device" = \'{dev}\''
        result = influx.query(q, influx_db)["results"][0]
        return sorted(v[1] for s in result.get("series", []) for v in s["values"])

    try:
        assert all(w.wait_ready() for w in workers)
        for seq in range(4):  # round robin: both workers see both gateways
            send(a, gw_a, seq, 1.0 + seq)
            send(b, gw_b, seq, 100.0 + seq)
        wait_until(lambda: len(dead.messages) == 4)
        wait_until(lambda: depths() == [1.0, 2.0, 3.0, 4.0])

        out = subprocess.run([*cli, "move", dev, "--to", gw_b, "--config", str(config)], **run)  # type: ignore[call-overload]
        assert f"moved {dev} to gateway {gw_b}" in out.stdout
        wait_until(lambda: all(w.registry.gateway_of(dev) == gw_b for w in workers))
        for seq in range(4, 8):
            send(a, gw_a, seq, 1.0 + seq)
            send(b, gw_b, seq, 100.0 + seq)
        wait_until(lambda: len(dead.messages) == 8)
        wait_until(lambda: len(depths()) == 8)
        assert depths() == [1.0, 2.0, 3.0, 4.0, 104.0, 105.0, 106.0, 107.0]
        reasons = [json.loads(p)["reason"] for _, p in dead.messages]
        assert all(f"'{dev}' is owned by another gateway" in r for r in reasons)
        assert [t for t, _ in dead.messages].count(topics.deadletter(gw_a)) == 4
        listed = subprocess.run([*cli, "list", "--json", "--config", str(config)], **run)  # type: ignore[call-overload]
        assert json.loads(listed.stdout)[0]["gateway_id"] == gw_b
    finally:
        for c in (a, b, dead):
            c.close()
        for w in workers:
            w.stop()
            w.store.close()
