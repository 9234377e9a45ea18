"""deploy/mosquitto on a real Mosquitto, attacked as a compromised gateway would.

The broker runs from the shipped mosquitto.conf (TLS listener, loopback listener,
dynamic-security plugin, use_username_as_clientid), the shipped role file and the shipped
scripts (tests.servers.running_deployed_mosquitto); every account is made by
make-gateway-credential.sh / make-service-credential.sh. The attacker is gwA: a real
paho client holding gwA's own valid credential.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from cloud.ingest.settings import IngestSettings
from tests.servers import (
    DEPLOY_MOSQUITTO,
    DeployedMosquitto,
    running_deployed_mosquitto,
    wait_for,
)

SHARED_TELEMETRY = "$share/akita-ingest/akita/v1/+/telemetry"
NOT_AUTHORIZED = 0x87


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[DeployedMosquitto]:
    with running_deployed_mosquitto(tmp_path) as b:
        for name in ("gwA", "gwB", "akita-ingest-1", "akita-cloud"):
            b.credential(name)
        yield b


class Client:
    """A paho MQTT 5 client that records CONNACK, SUBACK, PUBACK codes, messages and
    disconnects."""

    def __init__(
        self,
        broker: DeployedMosquitto,
        user: str | None,
        *,
        tls: bool = True,
        password: str | None = None,
        client_id: str = "",
        persistent: bool = False,
        will: str | None = None,
    ) -> None:
        self.connack: ReasonCode | None = None
        self.session_present = False
        self.suback: list[ReasonCode] = []
        self.puback: dict[int, ReasonCode] = {}
        self.messages: list[tuple[str, bytes]] = []
        self.disconnects: list[ReasonCode] = []
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id, protocol=mqtt.MQTTv5)
        # one connection per client: a reconnect would hide being kicked off
        self.c.reconnect_delay_set(3600, 3600)
        if user:
            self.c.username_pw_set(user, password or broker.passwords[user])
        if tls:
            self.c.tls_set(ca_certs=str(broker.ca), cert_reqs=ssl.CERT_REQUIRED)
        if will:
            self.c.will_set(will, b"forged will", qos=1, retain=True)
        self.c.on_connect = self._on_connect
        self.c.on_subscribe = self._on_subscribe
        self.c.on_publish = self._on_publish
        self.c.on_disconnect = self._on_disconnect
        self.c.on_message = lambda _c, _u, m: self.messages.append((m.topic, m.payload))
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600 if persistent else 0
        self.c.connect(
            "127.0.0.1",
            broker.tls_port if tls else broker.plain_port,
            clean_start=not persistent,
            properties=props,
        )
        self.c.loop_start()
        assert self.connected.wait(10)

    def _on_connect(
        self, _c: object, _u: object, flags: object, rc: ReasonCode, _p: object
    ) -> None:
        self.connack = rc
        self.session_present = bool(getattr(flags, "session_present", False))
        self.connected.set()

    def _on_subscribe(
        self, _c: object, _u: object, _m: int, rcs: list[ReasonCode], _p: object
    ) -> None:
        self.suback = rcs
        self.subscribed.set()

    def _on_publish(self, _c: object, _u: object, mid: int, rc: ReasonCode, _p: object) -> None:
        self.puback[mid] = rc

    def _on_disconnect(
        self, _c: object, _u: object, _f: object, rc: ReasonCode, _p: object
    ) -> None:
        self.disconnects.append(rc)

    @property
    def ok(self) -> bool:
        return self.connack is not None and not self.connack.is_failure

    def subscribe(self, topic: str) -> ReasonCode:
        self.subscribed.clear()
        self.c.subscribe(topic, qos=1)
        assert self.subscribed.wait(10)
        return self.suback[0]

    def publish(self, topic: str, payload: bytes = b"{}", retain: bool = False) -> ReasonCode:
        info = self.c.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(10)
        wait_for(f"PUBACK of {topic}", lambda: info.mid in self.puback)
        return self.puback[info.mid]

    def received(self, topic: str) -> list[bytes]:
        return [p for t, p in self.messages if t == topic]

    def close(self, *, end_session: bool = False) -> None:
        props = Properties(PacketTypes.DISCONNECT)
        if end_session:
            props.SessionExpiryInterval = 0
        self.c.disconnect(properties=props)
        self.c.loop_stop()


def test_anonymous_and_wrong_passwords_cannot_connect(broker: DeployedMosquitto) -> None:
    for tls in (True, False):
        anon = Client(broker, None, tls=tls)
        assert anon.connack is not None and anon.connack.is_failure
        anon.close()
    wrong = Client(broker, "gwA", password="not-the-password")
    assert wrong.connack is not None and wrong.connack.is_failure
    wrong.close()


def test_gateway_publishes_only_under_its_own_prefix(broker: DeployedMosquitto) -> None:
    ingest = Client(broker, "akita-ingest-1")
    for topic in (SHARED_TELEMETRY, "akita/v1/+/status", "akita/v1/+/meta"):
        assert not ingest.subscribe(topic).is_failure, topic
    # the attacker's Last Will names gwB's status: it must never be delivered
    gw_a = Client(broker, "gwA", will="akita/v1/gwB/status")
    assert gw_a.ok
    for topic in ("akita/v1/gwB/telemetry", "akita/v1/gwB/status", "akita/v1/deadletter/gwB"):
        assert gw_a.publish(topic, b"forged").value == NOT_AUTHORIZED, topic
    assert gw_a.publish("akita/v1/gwB/meta", b"forged", retain=True).value == NOT_AUTHORIZED
    assert gw_a.publish("akita/v1/alerts/flood", b"forged").value == NOT_AUTHORIZED
    assert not gw_a.publish("akita/v1/gwA/telemetry").is_failure  # its own: allowed
    assert not gw_a.publish("akita/v1/gwA/status").is_failure
    wait_for("gwA's own telemetry", lambda: ingest.received("akita/v1/gwA/telemetry") != [])
    wait_for("gwA's own status", lambda: ingest.received("akita/v1/gwA/status") != [])
    # dropping the connection without DISCONNECT makes the broker send the Will
    gw_a.c.socket().close()
    gw_a.c.loop_stop()
    gw_b = Client(broker, "gwB", tls=False)  # the loopback listener: same rules
    assert not gw_b.publish("akita/v1/gwB/status", b"online").is_failure
    wait_for("gwB's own status", lambda: ingest.received("akita/v1/gwB/status") != [])
    # a later subscriber would get a forged retained meta: there is none
    cloud = Client(broker, "akita-cloud")
    assert not cloud.subscribe("akita/v1/+/meta").is_failure
    assert not gw_b.publish("akita/v1/gwB/meta", b"real", retain=True).is_failure
    wait_for("gwB's meta at akita-cloud", lambda: cloud.received("akita/v1/gwB/meta") != [])
    assert cloud.received("akita/v1/gwB/meta") == [b"real"]
    assert ingest.received("akita/v1/gwB/status") == [b"online"]
    forged = [m for m in ingest.messages if m[1] in (b"forged", b"forged will")]
    assert forged == []
    for c in (ingest, gw_b, cloud):
        c.close()


def test_gateway_cannot_join_the_ingest_group_or_read_other_gateways(
    broker: DeployedMosquitto,
) -> None:
    """The attack of issue 14: gwA subscribes to the ingest's shared group to swallow
    its share of the stream. Two ingest workers, each its own user, must still receive
    every batch the legitimate gateways publish, exactly once between them."""
    broker.credential("gwC")
    broker.credential("akita-ingest-2")
    workers = [
        Client(broker, name, client_id=IngestSettings(username=name).client_id)
        for name in ("akita-ingest-1", "akita-ingest-2")
    ]
    for w in workers:
        assert w.ok and not w.subscribe(SHARED_TELEMETRY).is_failure
    gw_a = Client(broker, "gwA")
    for topic in (
        SHARED_TELEMETRY,
        "$share/other/akita/v1/+/telemetry",
        "$share/akita-ingest/#",
        "akita/v1/+/telemetry",
        "akita/v1/gwB/telemetry",
        "akita/v1/gwB/#",
        "akita/v1/gwB/cmd",
        "akita/v1/+/cmd",
        "akita/v1/deadletter/#",
        "#",
    ):
        assert gw_a.subscribe(topic).value == NOT_AUTHORIZED, topic
    assert not gw_a.subscribe("akita/v1/gwA/cmd").is_failure  # its own downlink only
    # the cloud service's account may not join the group either
    cloud = Client(broker, "akita-cloud")
    assert cloud.subscribe(SHARED_TELEMETRY).value == NOT_AUTHORIZED
    senders = {"gwB": Client(broker, "gwB"), "gwC": Client(broker, "gwC", tls=False)}
    n = 60
    sent = []
    for i in range(n):
        gw = "gwB" if i % 2 else "gwC"
        payload = f"{gw}-batch-{i}".encode()
        assert not senders[gw].publish(f"akita/v1/{gw}/telemetry", payload).is_failure
        sent.append(payload)

    def got() -> list[bytes]:
        return [p for w in workers for _t, p in w.messages]

    wait_for(f"all {n} batches at the ingest workers", lambda: len(got()) >= n)
    assert sorted(got()) == sorted(sent)  # every batch, none twice
    assert all(w.messages for w in workers)  # the group really is shared by both
    # the broker has answered gwA's last PUBACK after queuing anything for it
    assert not gw_a.publish("akita/v1/gwA/health").is_failure
    assert gw_a.messages == [] and cloud.messages == []
    for c in (*workers, gw_a, cloud, *senders.values()):
        c.close()


def test_client_id_of_another_account_cannot_take_its_session(
    broker: DeployedMosquitto,
) -> None:
    """gwA connects with the ingest worker's client id and a persistent session, then
    with gwB's: neither victim is kicked off, and the ingest still gets every batch."""
    ingest_id = IngestSettings(username="akita-ingest-1").client_id
    assert ingest_id == "akita-ingest-1"  # the default follows the username
    ingest = Client(broker, "akita-ingest-1", client_id=ingest_id, persistent=True)
    assert ingest.ok and not ingest.subscribe(SHARED_TELEMETRY).is_failure
    gw_b = Client(broker, "gwB", client_id="gwB")
    broker.credential("akita-ingest-2")
    for victim, persistent in ((ingest_id, True), ("gwB", True), ("akita-ingest-2", False)):
        attacker = Client(broker, "gwA", client_id=victim, persistent=persistent)
        # the broker renames it to gwA (use_username_as_clientid): it is let in, but
        # never as the victim's session
        assert attacker.ok and not attacker.session_present, victim
        assert attacker.subscribe(SHARED_TELEMETRY).value == NOT_AUTHORIZED
        attacker.close(end_session=True)  # so the next attempt starts afresh too
    # a second worker configured with the first one's client id is renamed too
    other = Client(broker, "akita-ingest-2", client_id=ingest_id, tls=False)
    assert other.ok and not other.session_present
    n = 30
    for i in range(n):
        assert not gw_b.publish("akita/v1/gwB/telemetry", f"batch-{i}".encode()).is_failure
    wait_for(f"{n} batches at the ingest", lambda: len(ingest.messages) >= n)
    assert sorted(p for _t, p in ingest.messages) == sorted(f"batch-{i}".encode() for i in range(n))
    assert ingest.disconnects == [] and gw_b.disconnects == [] and other.disconnects == []
    for c in (ingest, gw_b, other):
        c.close()


def test_credential_scripts_refuse_bad_and_reserved_names(tmp_path: Path) -> None:
    import subprocess

    cases = [
        ("make-gateway-credential.sh", bad)
        for bad in ("has space", "a/b", "+", "#", "deadletter", "akita-ingest-1", "AKITA-cloud", "")
    ]
    services = ("akita-ingest", "akita-ingest-0", "akita-ingest-100", "gwA", "akita-admin")
    cases += [("make-service-credential.sh", bad) for bad in services]
    env = {"AKITA_BROKER_ADMIN": str(tmp_path / "absent.conf"), "PATH": "/usr/bin:/bin"}
    for script, bad in cases:
        result = subprocess.run(
            ["sh", str(DEPLOY_MOSQUITTO / script), bad], capture_output=True, text=True, env=env
        )
        assert result.returncode == 2 and "error" in result.stderr, (script, bad)
        assert f"'{bad}'" in result.stderr, (script, bad, result.stderr)  # names the value


def test_credential_script_renews_a_password(broker: DeployedMosquitto) -> None:
    old = broker.passwords["gwA"]
    new = broker.credential("gwA")
    assert new != old and len(new) == 32
    assert Client(broker, "gwA", password=old).connack.is_failure  # type: ignore[union-attr]
    renewed = Client(broker, "gwA", password=new)
    assert renewed.ok
    assert not renewed.publish("akita/v1/gwA/telemetry").is_failure  # its role is intact
    renewed.close()
    # the admin's roles survive make-roles.sh being run again (an upgrade)
    again = broker.script("make-roles.sh")
    assert again.returncode == 0, again.stderr


def test_ingest_worker_runs_over_tls_with_its_role(broker: DeployedMosquitto) -> None:
    """The real worker with default settings but its user: the broker accepts its client
    id, shared subscription and dead-letter publishing."""
    from datetime import UTC, datetime

    from cloud.ingest import IngestWorker
    from cloud.registry import Registry
    from cloud.store import open_store
    from schemas import Batch, DeviceInfo, DeviceKind, encode_batch, reading_adapter

    store = open_store("sqlite:///:memory:")
    settings = IngestSettings(
        broker_port=broker.tls_port,
        username="akita-ingest-1",
        password=broker.passwords["akita-ingest-1"],
        tls=True,
        ca_file=broker.ca,
        batch_time_s=0.05,
    )
    registry = Registry()
    registry.provision("gwA", [DeviceInfo(device_id="wb-1", kind=DeviceKind.WATER_BLOCK)])
    worker = IngestWorker(settings, store, registry)
    cloud = Client(broker, "akita-cloud")
    assert not cloud.subscribe("akita/v1/deadletter/#").is_failure
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
        wait_for("the dead letter", lambda: cloud.received("akita/v1/deadletter/gwA") != [])
        wait_for("the reading in the store", lambda: "flow" in store.latest("wb-1"))
        assert store.latest("wb-1")["flow"].value == 1.5
        assert worker.health().ok
    finally:
        worker.stop()
        for c in (cloud, gw_a):
            c.close()
        store.close()


def test_downlink_topics_each_gateway_only_its_own(broker: DeployedMosquitto) -> None:
    """Issue 15: only akita-cloud commands a gateway, and a gateway reports results only
    for itself. gwA's credential publishing a command on gwB's topic is refused and
    reaches nobody; so is a forged result for gwB."""
    cloud = Client(broker, "akita-cloud")
    assert not cloud.subscribe("akita/v1/+/cmd/result").is_failure
    assert cloud.subscribe("akita/v1/+/cmd").value == NOT_AUTHORIZED  # it sends them
    gw_a, gw_b = Client(broker, "gwA"), Client(broker, "gwB")
    assert not gw_b.subscribe("akita/v1/gwB/cmd").is_failure
    assert not gw_a.subscribe("akita/v1/gwA/cmd").is_failure
    for topic in ("akita/v1/gwB/cmd/result", "akita/v1/+/cmd/result", "akita/v1/gwA/cmd/result"):
        assert gw_a.subscribe(topic).value == NOT_AUTHORIZED, topic
    assert gw_a.publish("akita/v1/gwB/cmd", b"forged").value == NOT_AUTHORIZED
    assert gw_a.publish("akita/v1/gwA/cmd", b"forged").value == NOT_AUTHORIZED  # nor its own
    assert gw_a.publish("akita/v1/gwB/cmd/result", b"forged").value == NOT_AUTHORIZED
    assert not gw_a.publish("akita/v1/gwA/cmd/result", b"gwA-result").is_failure
    assert not cloud.publish("akita/v1/gwB/cmd", b"real-command").is_failure
    assert not cloud.publish("akita/v1/alerts/flood", b"alert").is_failure  # still allowed
    wait_for("the real command at gwB", lambda: gw_b.received("akita/v1/gwB/cmd") != [])
    wait_for("gwA's result at the cloud", lambda: cloud.received("akita/v1/gwA/cmd/result") != [])
    # the broker delivered the later, legitimate messages: the forged ones would be here
    assert gw_b.messages == [("akita/v1/gwB/cmd", b"real-command")]
    assert cloud.messages == [("akita/v1/gwA/cmd/result", b"gwA-result")]
    assert gw_a.messages == []
    for c in (cloud, gw_a, gw_b):
        c.close()


def test_camera_images_only_on_the_own_prefix_read_only_by_the_image_receiver(
    broker: DeployedMosquitto,
) -> None:
    """Issue 18: a gateway publishes its camera images on its own image topic; another
    gateway can neither forge them nor read them; the receiver's own account akita-images
    reads them all and nothing else, and the ingest account no longer reads them."""
    broker.credential("akita-images")
    images = Client(broker, "akita-images")
    assert not images.subscribe("akita/v1/+/image").is_failure
    for topic in ("akita/v1/+/telemetry", "akita/v1/+/cmd/result", "#", "akita/v1/gwA/cmd"):
        assert images.subscribe(topic).value == NOT_AUTHORIZED, topic
    assert images.publish("akita/v1/gwA/image", b"forged").value == NOT_AUTHORIZED
    ingest = Client(broker, "akita-ingest-1")
    assert ingest.subscribe("akita/v1/+/image").value == NOT_AUTHORIZED
    gw_a, gw_b = Client(broker, "gwA"), Client(broker, "gwB")
    for topic in ("akita/v1/+/image", "akita/v1/gwA/image", "akita/v1/gwB/image"):
        assert gw_b.subscribe(topic).value == NOT_AUTHORIZED, topic
    assert gw_a.publish("akita/v1/gwB/image", b"forged").value == NOT_AUTHORIZED
    assert not gw_a.publish("akita/v1/gwA/image", b"gwA-image").is_failure
    wait_for("gwA's image at the receiver", lambda: images.received("akita/v1/gwA/image") != [])
    assert images.messages == [("akita/v1/gwA/image", b"gwA-image")]
    assert gw_b.messages == [] and ingest.messages == []
    for c in (images, ingest, gw_a, gw_b):
        c.close()
