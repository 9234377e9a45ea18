"""Issue 6 acceptance, for real: the ``demo`` storm drives a simulated road flood sensor
(Modbus RTU on a pty) past 注意/警戒/危険 -> edge agent -> Mosquitto -> cloud ingest,
flood detector, alert lifecycle, notify dispatcher -> SMTP (aiosmtpd on loopback) ->
the residents who subscribed (through the citizen subscription API) for that area.

Residents inside the sensor's area (by town name, and by a point and radius) get one
Japanese e-mail per stage change, in stage order, each with a working one-step
unsubscribe link; residents far away get nothing; nobody gets a storm of messages.
What the gateway put on the wire (an independent MQTT subscriber) is the reference for
the stages the water really reached.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import paho.mqtt.client as mqtt
from sqlalchemy import select

from cloud.citizen import subscriptions
from cloud.citizen.catalog import known_areas
from cloud.db.notify import DeliveryRow
from cloud.notify.routing import haversine_m
from cloud.provisioning import read_device_list
from cloud.service import CloudService
from cloud.settings import CloudSettings
from edge.agent import Agent
from edge.config import load_config
from firmware_sim.fleet import RunningFleet, start_fleet
from firmware_sim.scenarios import build, days_to_recent
from schemas import decode_batch, topics
from tests.cloud.citizen.conftest import Mailbox, Smtp, smtp  # noqa: F401  (smtp: fixture)
from tests.servers import Mosquitto

SCENARIO = "demo"
SPEED = 120.0  # one 60 s flood poll every 0.5 s of wall time
LEAD_POLLS = 3  # start the clock this many polls before the first 注意 crossing
TAIL_S = 600.0  # simulated seconds watched after 危険 for late or repeated messages
STAGES = ("caution", "warning", "danger")
STAGE_JA = {"caution": "注意", "warning": "警戒", "danger": "危険"}
THRESHOLD_CM = {"caution": 10.0, "warning": 20.0, "danger": 30.0}
BASE_URL = "https://bousai.city.akita.example"
FAR_TOWN = "雄和妙法"  # a shipped town in the south of the city, no sensor there
FAR_POINT = (39.62, 140.26)  # in the city, kilometres from every flood sensor


@dataclass(frozen=True)
class Subscriber:
    address: str
    sub_id: int


class Recorder:
    """An independent subscriber: the flood depths the gateway really published."""

    def __init__(self, port: int) -> None:
        self.depths: dict[str, list[tuple[float, float]]] = {}
        self._lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"rec-{uuid.uuid4()}")
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(topics.subscription(topics.Channel.TELEMETRY), qos=1)
        self.client.loop_start()

    def _on_message(self, _c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        batch = decode_batch(bytes(msg.payload))
        with self._lock:
            for r in batch.readings:
                depth = getattr(r.values, "depth", None)
                if r.kind == "flood_sensor" and depth is not None:
                    self.depths.setdefault(r.device_id, []).append((r.ts.timestamp(), depth))

    def of(self, device_id: str) -> list[tuple[float, float]]:
        with self._lock:
            return sorted(self.depths.get(device_id, []))

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def stage_rises(depths: list[tuple[float, float]]) -> list[tuple[str, float]]:
    """What a resident must hear of: each new highest stage the depth reached, with the
    depth of the reading that reached it."""
    told = 0
    out = []
    for _ts, depth in depths:
        rank = sum(1 for s in STAGES if depth >= THRESHOLD_CM[s])
        if rank > told:
            out.append((STAGES[rank - 1], depth))
            told = rank
    return out


def body(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain",))
    assert part is not None, f"no text/plain part in {msg['Subject']!r}"
    return str(part.get_content())


async def until(what: str, check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        await asyncio.sleep(0.2)


def settings(
    tmp: Path, mosquitto: Mosquitto, mail: Smtp, clock: Path, unique: str
) -> CloudSettings:
    return CloudSettings.from_mapping(
        {
            "environment": "test",
            "ingest": {
                "broker_host": "127.0.0.1",
                "broker_port": mosquitto.port,
                "client_id": f"ingest-{unique}",
                "group": f"g{unique}",
                # readings carry simulated time, which at SPEED overtakes the wall clock
                # soon after the last JST midnight (where the scenario calendar starts)
                "max_future_s": 86_400.0,
            },
            "store": {"url": f"sqlite:///{tmp / 'telemetry.db'}"},
            "database": {"url": f"sqlite:///{tmp / 'akita.db'}"},
            "clock_file": str(clock),  # the cloud's "now" is the scenario's
            "smtp": {"host": mail.host, "port": mail.port, "sender": "bousai@city.akita.example"},
            "notify": {"public_base_url": BASE_URL, "recipient_salt": f"salt-{unique}"},
        },
        source="e2e",
    )


def subscribe(service: CloudService, address: str, areas: set[str], **where: str) -> Subscriber:
    """What the citizen form does: validate, store with consent, confirm by the token the
    confirmation message carries."""
    form = {"channel": "email", "address": address, "consent": "yes", **where}
    data = subscriptions.parse_subscription(form, ["flood"], areas, sms_available=False)
    tokens: list[str] = []
    row = subscriptions.create(service.sessionmaker, data, tokens.append)
    confirmed = subscriptions.confirm(service.sessionmaker, tokens[0])
    assert confirmed is not None and confirmed.confirmed_at is not None
    return Subscriber(address, row.id)


def test_flood_stages_reach_residents_of_the_area_once_each(
    tmp_path: Path,
    mosquitto: Mosquitto,
    smtp: Smtp,  # noqa: F811  (the citizen tests' aiosmtpd fixture, imported above)
    unique: str,
) -> None:
    asyncio.run(_scenario(tmp_path, mosquitto, smtp, unique))


async def _scenario(tmp: Path, mosquitto: Mosquitto, mail: Smtp, unique: str) -> None:
    # the scenario's ground truth tells which sensor the storm floods first, and when
    shift = days_to_recent(SCENARIO, time.time())
    truth = build(SCENARIO, scale="small", shift_days=shift)
    stage_labels = [x for x in truth.labels if x.kind == "flood_stage"]
    sensor = stage_labels[0].device_id
    crossings = {x.info["stage"]: x.start for x in stage_labels if x.device_id == sensor}
    assert set(crossings) == set(STAGES), crossings
    offset = max(0.0, crossings["caution"] - truth.plan.start - LEAD_POLLS * 60.0)

    fleet = await start_fleet(
        SCENARIO,
        scale="small",
        speed=SPEED,
        workdir=tmp / "sim",
        mqtt_host="127.0.0.1",
        mqtt_port=mosquitto.port,
        spool_dir=tmp / "spool",
        sim_offset_s=offset,
    )
    service: CloudService | None = None
    recorder: Recorder | None = None
    stop = asyncio.Event()
    agent: asyncio.Task[None] | None = None
    try:
        service = CloudService(settings(tmp, mosquitto, mail, fleet.clock_path, unique))
        service.start()
        recorder = Recorder(mosquitto.port)
        inside, outside, near = _subscribers(service, fleet, sensor)

        full = load_config(fleet.edge_configs[0])
        service.registry.provision(*read_device_list(fleet.edge_configs[0]))  # device import
        flood = [d for d in full.devices if d.kind == "flood_sensor"]
        assert sensor in {d.id for d in flood}
        agent = asyncio.create_task(Agent(full.model_copy(update={"devices": flood})).run(stop))

        danger_in = (crossings["danger"] - fleet.clock.now_ts()) / SPEED
        await until(
            "the 危険 e-mail to the residents of the flooded area",
            lambda: all(len(mail.mailbox.to(s.address)) >= 3 for s in inside),
            timeout=danger_in + 30,
        )
        # keep the flood running a while: late duplicates or flapping would show here
        end = crossings["danger"] + TAIL_S
        await until(
            "the cloud to store the readings after 危険",
            lambda: _stored_until(service, sensor) >= end,  # type: ignore[arg-type]
            timeout=TAIL_S / SPEED + 30,
        )
        stop.set()
        await asyncio.wait_for(agent, timeout=20)
        notifier = service.notifier
        assert notifier is not None
        assert await asyncio.to_thread(notifier.flush, 20)

        wire = recorder.of(sensor)
        rises = stage_rises(wire)
        assert [s for s, _ in rises] == list(STAGES), f"the sensor's depths on the wire: {wire}"
        for sub in inside:
            _check_mailbox(service, mail.mailbox, sub, [d for _, d in rises], fleet, sensor)
        _check_deliveries(service, inside)
        for sub in outside:
            assert mail.mailbox.to(sub.address) == [], f"{sub.address} is far from any flood"
        # no storm anywhere: the server saw at most one message per stage per sensor in
        # each subscriber's area, and nothing for anyone else
        with mail.mailbox.lock:
            total = len(mail.mailbox.messages)
        assert total <= sum(len(STAGES) * sensors for _, sensors in near), total
    finally:
        stop.set()
        if agent is not None and not agent.done():
            await asyncio.wait_for(agent, timeout=20)
        if recorder is not None:
            recorder.close()
        if service is not None:
            service.stop()
        await fleet.stop()


def _stored_until(service: CloudService, device_id: str) -> float:
    point = service.store.latest(device_id).get("depth")
    return point.ts.timestamp() if point is not None else -math.inf


def _subscribers(
    service: CloudService, fleet: RunningFleet, sensor: str
) -> tuple[list[Subscriber], list[Subscriber], list[tuple[Subscriber, int]]]:
    devices = json.loads(fleet.devices_path.read_text(encoding="utf-8"))["devices"]
    floods = [d for d in devices if d["kind"] == "flood_sensor"]
    info = next(d for d in floods if d["device_id"] == sensor)
    town = info["area"]
    # the citizen form offers the shipped towns plus the towns of registered sensors; the
    # gateway has not announced its sensors yet (the storm must not start before we
    # subscribe), so the towns come from the fleet's device list
    areas = {t for towns in known_areas(service.sessionmaker).values() for t in towns}
    areas |= {d["area"] for d in devices if d.get("area")}
    # a point 300 m north of the sensor, radius 800 m: covers it alone
    lat, lon = info["lat"] + 300 / 111_320, info["lon"]
    in_radius = [d for d in floods if haversine_m(lat, lon, d["lat"], d["lon"]) <= 800]
    assert [d["device_id"] for d in in_radius] == [sensor]
    assert [d["device_id"] for d in floods if d["area"] == town] == [sensor]
    assert all(d.get("area") != FAR_TOWN for d in devices)
    assert min(haversine_m(*FAR_POINT, d["lat"], d["lon"]) for d in floods) > 5_000

    by_town = subscribe(service, f"town-{sensor}@example.jp", areas, area=town)
    by_point = subscribe(
        service, f"point-{sensor}@example.jp", areas, lat=f"{lat:.6f}", lon=f"{lon:.6f}",
        radius_m="800",
    )  # fmt: skip
    far_town = subscribe(service, "far-town@example.jp", areas, area=FAR_TOWN)
    far_point = subscribe(
        service, "far-point@example.jp", areas, lat=str(FAR_POINT[0]), lon=str(FAR_POINT[1]),
        radius_m="1000",
    )  # fmt: skip
    inside = [by_town, by_point]
    return inside, [far_town, far_point], [(by_town, 1), (by_point, 1)]


def _check_mailbox(
    service: CloudService,
    mailbox: Mailbox,
    sub: Subscriber,
    depths: list[float],
    fleet: RunningFleet,
    sensor: str,
) -> None:
    msgs = mailbox.to(sub.address)
    subjects = [str(m["Subject"]) for m in msgs]
    # exactly one message per stage change, in stage order
    assert len(msgs) == len(STAGES), f"{sub.address}: {subjects}"
    devices = json.loads(fleet.devices_path.read_text(encoding="utf-8"))["devices"]
    site = next(d["site"] for d in devices if d["device_id"] == sensor)
    for msg, stage, wire_depth in zip(msgs, STAGES, depths, strict=True):
        label = STAGE_JA[stage]
        subject, text = str(msg["Subject"]), body(msg)
        assert f"冠水{label}" in subject, subjects
        assert text.startswith(f"秋田市 道路冠水情報（{label}）"), text[:200]
        assert f"■ 段階: {label}" in text and "■ 取るべき行動" in text, text
        assert site and site in text, f"sensor location {site!r} missing:\n{text}"
        # the message tells the depth of the reading that crossed the stage
        assert f"■ 水深: {wire_depth:.0f} cm" in text, (wire_depth, text)
        link = re.search(r"配信停止（ワンクリック）: (\S+)", text)
        assert link, text
        token = re.fullmatch(
            re.escape(BASE_URL) + r"/citizen/subscriptions/(\S+)/unsubscribe", link.group(1)
        )
        assert token, link.group(1)
        # the link stops this subscription, no other
        row = subscriptions.find_for_unsubscribe(service.sessionmaker, token.group(1))
        assert row is not None and row.id == sub.sub_id
    assert "（段階変更）" not in subjects[0] and all("（段階変更）" in s for s in subjects[1:])


def _check_deliveries(service: CloudService, inside: list[Subscriber]) -> None:
    """Every resident delivery is recorded as sent, under a masked address."""
    with service.sessionmaker() as s:
        rows = s.scalars(select(DeliveryRow).where(DeliveryRow.audience == "resident")).all()
        got = sorted((r.subscription_id, r.stage, r.status) for r in rows)
        masked = [r.recipient_masked for r in rows]
    want = sorted((sub.sub_id, stage, "sent") for sub in inside for stage in STAGES)
    assert got == want
    assert not any(sub.address in m for sub in inside for m in masked), masked
