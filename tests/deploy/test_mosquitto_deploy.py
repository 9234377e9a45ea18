"""deploy/mosquitto on a real Mosquitto: passwords, the per-gateway ACL, TLS."""

from __future__ import annotations

import os
import re
import shutil
import ssl
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from tests.servers import _stop, free_port, make_tls_files, require_binary, wait_port

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto"


@dataclass
class Broker:
    tls_port: int
    plain_port: int
    ca: Path
    passwords: dict[str, str]


def make_credential(gateway: str, passwd: Path) -> str:
    out = subprocess.run(
        ["sh", str(DEPLOY / "make-gateway-credential.sh"), gateway, str(passwd)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    match = re.search(r"^password: (\S+)$", out, re.M)
    assert match, out
    return match.group(1)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    binary = require_binary("mosquitto", "mosquitto")
    etc = tmp_path / "etc"
    data = tmp_path / "data"
    etc.mkdir()
    data.mkdir()
    tls = make_tls_files(etc)
    passwd = etc / "passwd"
    passwords = {g: make_credential(g, passwd) for g in ("gwA", "gwB")}
    for user in ("akita-ingest", "akita-cloud"):
        passwords[user] = f"{user}-secret"
        subprocess.run(["mosquitto_passwd", "-b", str(passwd), user, passwords[user]], check=True)
    shutil.copy(DEPLOY / "acl", etc / "acl")
    tls_port, plain_port = free_port(), free_port()
    conf = (DEPLOY / "mosquitto.conf").read_text()
    conf = conf.replace("/etc/mosquitto/akita/", f"{etc}/").replace(
        "/var/lib/mosquitto/", f"{data}/"
    )
    conf = conf.replace("listener 8883\n", f"listener {tls_port} 127.0.0.1\n")
    conf = conf.replace("listener 1883 127.0.0.1\n", f"listener {plain_port} 127.0.0.1\n")
    assert str(tls_port) in conf and str(plain_port) in conf
    if os.geteuid() == 0:
        conf += "user root\n"  # else it drops to 'mosquitto', who cannot enter tmp_path
    (etc / "mosquitto.conf").write_text(conf)
    with (tmp_path / "mosquitto.log").open("wb") as log:
        proc = subprocess.Popen([binary, "-c", str(etc / "mosquitto.conf")], stdout=log, stderr=log)
    try:
        wait_port(tls_port, proc=proc)
        wait_port(plain_port, proc=proc)
        yield Broker(tls_port, plain_port, tls.ca, passwords)
    finally:
        _stop(proc)


class Client:
    """A paho client that records CONNACK, SUBACK and messages."""

    def __init__(
        self, broker: Broker, user: str | None, *, tls: bool = True, password: str | None = None
    ) -> None:
        self.connack: ReasonCode | None = None
        self.suback: list[ReasonCode] = []
        self.messages: list[str] = []
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        if user:
            self.c.username_pw_set(user, password or broker.passwords[user])
        if tls:
            self.c.tls_set(ca_certs=str(broker.ca), cert_reqs=ssl.CERT_REQUIRED)
        self.c.on_connect = self._on_connect
        self.c.on_subscribe = self._on_subscribe
        self.c.on_message = lambda _c, _u, m: self.messages.append(m.topic)
        self.c.connect("127.0.0.1", broker.tls_port if tls else broker.plain_port)
        self.c.loop_start()
        assert self.connected.wait(10)

    def _on_connect(self, _c: object, _u: object, _f: object, rc: ReasonCode, _p: object) -> None:
        self.connack = rc
        self.connected.set()

    def _on_subscribe(
        self, _c: object, _u: object, _m: int, rcs: list[ReasonCode], _p: object
    ) -> None:
        self.suback = rcs
        self.subscribed.set()

    def subscribe(self, topic: str) -> list[ReasonCode]:
        self.subscribed.clear()
        self.c.subscribe(topic, qos=1)
        assert self.subscribed.wait(10)
        return self.suback

    def publish(self, topic: str, payload: bytes = b"{}") -> None:
        self.c.publish(topic, payload, qos=1).wait_for_publish(10)

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def wait_for(client: Client, topic: str) -> None:
    done = threading.Event()
    for _ in range(100):
        if topic in client.messages:
            return
        done.wait(0.1)
    raise AssertionError(f"{topic} never arrived; got {client.messages}")


def test_anonymous_and_wrong_passwords_cannot_connect(broker: Broker) -> None:
    for tls in (True, False):
        anon = Client(broker, None, tls=tls)
        assert anon.connack is not None and anon.connack.is_failure
        anon.close()
    wrong = Client(broker, "gwA", password="not-the-password")
    assert wrong.connack is not None and wrong.connack.is_failure
    wrong.close()


def test_gateway_publishes_only_under_its_own_prefix(broker: Broker) -> None:
    ingest = Client(broker, "akita-ingest")
    assert not ingest.connack.is_failure  # type: ignore[union-attr]
    assert not ingest.subscribe("$share/ingest/akita/v1/+/telemetry")[0].is_failure
    assert not ingest.subscribe("akita/v1/+/status")[0].is_failure
    gw_a = Client(broker, "gwA")
    assert not gw_a.connack.is_failure  # type: ignore[union-attr]
    gw_a.publish("akita/v1/gwB/telemetry", b"forged")  # under B's prefix: refused
    gw_a.publish("akita/v1/gwB/status", b"forged")
    gw_a.publish("akita/v1/gwA/telemetry")  # its own: allowed, and sent after the forgeries
    gw_a.publish("akita/v1/gwA/status")
    wait_for(ingest, "akita/v1/gwA/telemetry")
    wait_for(ingest, "akita/v1/gwA/status")
    assert "akita/v1/gwB/telemetry" not in ingest.messages
    assert "akita/v1/gwB/status" not in ingest.messages
    # only the ingest role reads telemetry: Mosquitto grants a gateway's SUBSCRIBE but
    # never delivers a message the ACL does not let it read
    gw_a.subscribe("akita/v1/+/telemetry")
    gw_a.subscribe("akita/v1/gwB/#")
    gw_b = Client(broker, "gwB", tls=False)  # the loopback listener: same rules
    gw_b.publish("akita/v1/gwB/telemetry")
    wait_for(ingest, "akita/v1/gwB/telemetry")
    # the broker queued any copy for gwA before answering gwA's next PUBACK
    gw_a.publish("akita/v1/gwA/health")
    assert gw_a.messages == []
    for c in (ingest, gw_a, gw_b):
        c.close()


def test_credential_script_refuses_bad_and_reserved_ids(tmp_path: Path) -> None:
    for bad in ("has space", "a/b", "+", "deadletter", "akita-ingest", ""):
        result = subprocess.run(
            ["sh", str(DEPLOY / "make-gateway-credential.sh"), bad, str(tmp_path / "pw")],
            capture_output=True,
            text=True,
        )
        assert result.returncode == 2 and "error" in result.stderr, bad
    assert not (tmp_path / "pw").exists()


def test_ingest_worker_runs_over_tls_with_its_role(broker: Broker) -> None:
    """The real worker: shared subscription and dead-letter publishing are allowed."""
    from datetime import UTC, datetime

    from cloud.ingest import IngestSettings, IngestWorker
    from cloud.registry import Registry
    from cloud.store import open_store
    from schemas import Batch, encode_batch, reading_adapter

    store = open_store("sqlite:///:memory:")
    worker = IngestWorker(
        IngestSettings(
            broker_port=broker.tls_port,
            username="akita-ingest",
            password=broker.passwords["akita-ingest"],
            tls=True,
            ca_file=broker.ca,
            client_id="ingest-tls",
            batch_time_s=0.05,
        ),
        store,
        Registry(),
    )
    cloud = Client(broker, "akita-cloud")
    cloud.subscribe("akita/v1/deadletter/#")
    gw_a = Client(broker, "gwA")
    worker.start()
    try:
        assert worker.wait_ready()
        now = datetime.now(UTC)
        reading = reading_adapter.validate_python(
            {"device_id": "wb-1", "kind": "water_block", "ts": now, "values": {"flow": 1.5}}
        )
        gw_a.publish("akita/v1/gwA/telemetry", b"not json")
        gw_a.publish(
            "akita/v1/gwA/telemetry",
            encode_batch(Batch(gateway_id="gwA", seq=1, sent_at=now, readings=[reading])),
        )
        wait_for(cloud, "akita/v1/deadletter/gwA")
        for _ in range(100):
            if "flow" in store.latest("wb-1"):
                break
            threading.Event().wait(0.1)
        assert store.latest("wb-1")["flow"].value == 1.5
        assert worker.health().ok
    finally:
        worker.stop()
        for c in (cloud, gw_a):
            c.close()
        store.close()
