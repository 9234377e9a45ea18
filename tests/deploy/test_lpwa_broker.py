"""The shipped broker config and a network server: its user publishes only under its own
prefix lpwa/<id>/, reads nothing, and the LPWA worker (akita-lpwa-1) reads every network
server's events and writes dead letters (real Mosquitto from deploy/mosquitto)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud.lpwa.chirpstack import SUBSCRIPTION, topic
from cloud.lpwa.worker import LpwaSettings, LpwaWorker
from cloud.registry import Registry
from cloud.store import open_store
from cloud.store.influx import InfluxStore
from firmware_sim import meters as sim
from schemas import DeviceInfo, DeviceKind
from tests.deploy.test_mosquitto_deploy import NOT_AUTHORIZED, Client
from tests.servers import DeployedMosquitto, Influx, running_deployed_mosquitto, wait_for

APP = sim.APPLICATION_ID
EUI = "a1000000000000aa"


def _netserver(broker: DeployedMosquitto, ns: str) -> None:
    result = broker.script("make-netserver-credential.sh", ns)
    assert result.returncode == 0, result.stderr
    line = next(x for x in result.stdout.splitlines() if x.startswith("password: "))
    broker.passwords[ns] = line.split(" ", 1)[1]


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[DeployedMosquitto]:
    with running_deployed_mosquitto(tmp_path) as b:
        for name in ("gwA", "akita-lpwa-1", "akita-cloud"):
            b.credential(name)
        for ns in ("ns-akita", "ns-other"):
            _netserver(b, ns)
        yield b


@pytest.fixture
def store(influx: Influx, influx_db: str) -> Iterator[InfluxStore]:
    s = open_store(f"influx+http://127.0.0.1:{influx.port}/{influx_db}")
    assert isinstance(s, InfluxStore)
    s.init_db()
    yield s
    s.close()


def test_network_server_publishes_only_under_its_own_prefix(broker: DeployedMosquitto) -> None:
    lpwa = Client(broker, "akita-lpwa-1")
    assert not lpwa.subscribe(SUBSCRIPTION).is_failure
    ns = Client(broker, "ns-akita")
    own = topic("ns-akita", APP, EUI)
    assert not ns.publish(own, b"real").is_failure
    for forged in (topic("ns-other", APP, EUI), f"application/{APP}/device/{EUI}/event/up",
                   "akita/v1/gwA/telemetry", "akita/v1/deadletter/ns-other"):  # fmt: skip
        assert ns.publish(forged, b"forged").value == NOT_AUTHORIZED, forged
    # it reads nothing (no downlink through us), and a gateway cannot pose as it
    assert ns.subscribe(SUBSCRIPTION).is_failure
    gw = Client(broker, "gwA")
    assert gw.publish(own, b"forged").value == NOT_AUTHORIZED
    wait_for("the real event at the LPWA worker", lambda: lpwa.received(own) != [])
    assert [p for _t, p in lpwa.messages] == [b"real"]
    for c in (lpwa, ns, gw):
        c.close()


def test_network_server_ids_are_checked(broker: DeployedMosquitto) -> None:
    for bad in ("akita-ingest-1", "ns-+", "ns-a/b", "chirpstack"):
        assert broker.script("make-netserver-credential.sh", bad).returncode == 2, bad
    assert broker.script("make-gateway-credential.sh", "ns-akita").returncode == 2


def test_lpwa_worker_runs_with_its_role(broker: DeployedMosquitto, store: InfluxStore) -> None:
    registry = Registry(None)
    registry.provision("ns-akita", [DeviceInfo(device_id=EUI, kind=DeviceKind("water_meter"))])
    settings = LpwaSettings(broker_port=broker.plain_port, username="akita-lpwa-1",
                            password=broker.passwords["akita-lpwa-1"])  # fmt: skip
    worker = LpwaWorker(settings, store, registry)
    cloud = Client(broker, "akita-cloud")
    assert not cloud.subscribe("akita/v1/deadletter/#").is_failure
    worker.start()
    try:
        assert worker.wait_ready()
        ns = Client(broker, "ns-akita")
        start = (int(time.time()) // 3600 - 7) * 3600
        meter = sim.Meter(EUI, 0, 200.0)
        (event,) = list(sim.uplinks(meter, "ns-akita", start, 0.25, seed=1))
        assert not ns.publish(event.topic, event.payload).is_failure
        stranger = event.topic.replace(EUI, "a1000000000000bb")
        assert not ns.publish(
            stranger, event.payload.replace(EUI.encode(), b"a1000000000000bb")
        ).is_failure
        wait_for("its dead letter at akita-cloud",
                 lambda: cloud.received("akita/v1/deadletter/ns-akita") != [])  # fmt: skip
        wait_for("the meter's six hours stored", lambda: worker.counts.get("lines") == 6)
        ns.close()
    finally:
        worker.stop()
        cloud.close()
