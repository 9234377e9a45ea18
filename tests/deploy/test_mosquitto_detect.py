"""The detector tier's broker accounts on the shipped Mosquitto (deploy/mosquitto: TLS,
dynamic security, client id = username), with real clients and the real tier.

- An ingest account hands off on ``akita/v1/_detect/<p>``; the account of partition p
  (``akita-detect-<p>``, made by ``make-service-credential.sh akita-detect P``) receives
  its partition's hand-offs, also those queued while it was away, and nothing else.
- A gateway's credential is refused on every ``_detect`` topic; a detector account
  cannot read telemetry, forge hand-offs or publish commands.
- End to end: an ingest worker and ``akita cloud detect`` (a process of its own), each
  with its own account, turn a gateway's flood reading into an alert; and the exclusive
  tier of ``akita cloud run`` in the shared group takes another worker's hand-offs.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from sqlalchemy import select

from cloud.db.base import create_all, make_engine, make_sessionmaker
from cloud.db.models import AlertRow
from cloud.detect import checkpoint, handoff, lease
from cloud.detect.partitions import partition_of
from cloud.detect.tier import DetectorTier, TierSettings
from cloud.errors import SettingsError
from cloud.ingest import IngestWorker
from cloud.ingest.settings import IngestSettings
from cloud.metrics import Metrics
from cloud.registry import Registry
from cloud.store import open_store
from schemas import Batch, DeviceInfo, DeviceKind, encode_batch, reading_adapter
from tests.deploy.test_mosquitto_deploy import NOT_AUTHORIZED, SHARED_TELEMETRY, Client
from tests.servers import DEPLOY_MOSQUITTO, DeployedMosquitto, running_deployed_mosquitto, wait_for

# two partitions, a device in each (checked below): both accounts must work
PARTITIONS = 2
FLOOD, BLOCK = "fs-1", "wb-1"
FAST = {
    "AKITA_DETECT_LEASE_TTL_S": "5",
    "AKITA_DETECT_HEARTBEAT_S": "0.5",
    "AKITA_DETECT_CHECKPOINT_S": "1",
}


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[DeployedMosquitto]:
    with running_deployed_mosquitto(tmp_path) as b:
        for name in ("gwA", "gwB", "akita-ingest-1", "akita-ingest-2", "akita-cloud"):
            b.credential(name)
        detect_credential(b, PARTITIONS)
        yield b


def detect_credential(broker: DeployedMosquitto, partitions: int) -> str:
    """``make-service-credential.sh akita-detect P``: one password for every partition."""
    result = broker.script("make-service-credential.sh", "akita-detect", str(partitions))
    assert result.returncode == 0, result.stderr
    [password] = [
        line.split(" ", 1)[1]
        for line in result.stdout.splitlines()
        if line.startswith("password: ")
    ]
    for p in range(partitions):
        broker.passwords[f"akita-detect-{p}"] = password
    return password


def test_devices_fall_in_both_partitions() -> None:
    assert {partition_of(FLOOD, PARTITIONS), partition_of(BLOCK, PARTITIONS)} == {0, 1}


def test_a_partition_account_reads_only_its_own_handoffs(broker: DeployedMosquitto) -> None:
    ingest = Client(broker, "akita-ingest-1")
    d0 = Client(broker, "akita-detect-0", client_id="akita-detect-0", persistent=True)
    d1 = Client(broker, "akita-detect-1", client_id="akita-detect-1", tls=False)
    assert not d0.subscribe(handoff.topic(0)).is_failure
    assert not d1.subscribe(handoff.topic(1)).is_failure
    for topic in (
        handoff.topic(1),
        handoff.SUBSCRIPTION,
        "akita/v1/_detect/#",
        SHARED_TELEMETRY,
        "akita/v1/+/telemetry",
        "akita/v1/gwA/telemetry",
        "akita/v1/+/cmd/result",
        "akita/v1/deadletter/#",
        "#",
    ):
        assert d0.subscribe(topic).value == NOT_AUTHORIZED, topic
    # a detector publishes nothing: no forged hand-off, command, telemetry or alert
    for topic in (
        handoff.topic(0),
        handoff.topic(1),
        "akita/v1/gwA/cmd",
        "akita/v1/gwA/telemetry",
        "akita/v1/alerts/flood",
    ):
        assert d0.publish(topic, b"forged").value == NOT_AUTHORIZED, topic
    # a gateway can neither read nor write the hand-offs
    gw_a = Client(broker, "gwA")
    for topic in (handoff.topic(0), handoff.SUBSCRIPTION, "akita/v1/_detect/#"):
        assert gw_a.subscribe(topic).value == NOT_AUTHORIZED, topic
    for p in range(PARTITIONS):
        assert gw_a.publish(handoff.topic(p), b"forged").value == NOT_AUTHORIZED
    # the ingest hands off; each partition gets its own
    assert not ingest.publish(handoff.topic(0), b"h0").is_failure
    assert not ingest.publish(handoff.topic(1), b"h1").is_failure
    wait_for("partition 0's hand-off", lambda: d0.received(handoff.topic(0)) != [])
    wait_for("partition 1's hand-off", lambda: d1.received(handoff.topic(1)) != [])
    # while partition 0's owner is away, the broker keeps its hand-offs for it
    d0.close()
    assert not ingest.publish(handoff.topic(0), b"h0-queued").is_failure
    # a gateway posing as the partition's client id is renamed, never given the session
    thief = Client(broker, "gwA", client_id="akita-detect-0", persistent=True)
    assert thief.ok and not thief.session_present
    thief.close(end_session=True)
    back = Client(broker, "akita-detect-0", client_id="akita-detect-0", persistent=True)
    assert back.session_present
    wait_for("the queued hand-off", lambda: back.received(handoff.topic(0)) != [])
    assert d0.messages == [(handoff.topic(0), b"h0")]
    assert back.messages == [(handoff.topic(0), b"h0-queued")]
    assert d1.messages == [(handoff.topic(1), b"h1")]
    assert gw_a.messages == [] and ingest.messages == []
    for c in (ingest, d1, gw_a):
        c.close()
    back.close(end_session=True)


def test_make_service_credential_refuses_bad_partitions_naming_the_value(tmp_path: Path) -> None:
    env = {"AKITA_BROKER_ADMIN": str(tmp_path / "absent.conf"), "PATH": "/usr/bin:/bin"}
    script = str(DEPLOY_MOSQUITTO / "make-service-credential.sh")
    for bad in ("0", "1025", "01", "-1", "x", "4 ", ""):
        result = subprocess.run(
            ["sh", script, "akita-detect", bad], capture_output=True, text=True, env=env
        )
        assert result.returncode == 2, (bad, result.stderr)
        assert f"partitions '{bad}'" in result.stderr, (bad, result.stderr)
    for args in (["akita-detect"], ["akita-detect", "2", "3"], ["akita-cloud", "2"]):
        result = subprocess.run(["sh", script, *args], capture_output=True, text=True, env=env)
        assert result.returncode == 2 and "usage" in result.stderr, (args, result.stderr)
    result = subprocess.run(
        ["sh", script, "akita-detect-0"], capture_output=True, text=True, env=env
    )
    assert result.returncode == 2 and "'akita-detect-0'" in result.stderr


def test_partition_accounts_that_cannot_work_are_refused_naming_the_setting() -> None:
    broker = IngestSettings(username="akita-ingest-1")
    without = TierSettings(name="d", partitions=2)
    with pytest.raises(SettingsError, match="AKITA_DETECT_USERNAME: required"):
        DetectorTier(without, broker, None, None, dict)  # type: ignore[arg-type]
    shared = TierSettings(name="d", partitions=2, username="akita-detect")
    with pytest.raises(SettingsError, match="'akita-detect' has no '\\{p\\}'"):
        DetectorTier(shared, broker, None, None, dict)  # type: ignore[arg-type]


# --- the real tier ----------------------------------------------------------------------


def _broker_settings(broker: DeployedMosquitto) -> dict[str, Any]:
    return {
        "broker_host": "127.0.0.1",
        "broker_port": broker.tls_port,
        "tls": True,
        "ca_file": str(broker.ca),
        "group": "akita-ingest",  # the shipped roles name the group
        "batch_time_s": 0.05,
    }


def _worker(broker: DeployedMosquitto, user: str, db_url: str, store: str, **more: Any) -> Any:
    settings = IngestSettings.model_validate(
        {**_broker_settings(broker), "username": user, "password": broker.passwords[user], **more}
    )
    sm = make_sessionmaker(make_engine(db_url))
    worker = IngestWorker(settings, open_store(store), Registry(sm), metrics=Metrics())
    worker.start()
    assert worker.wait_ready(15), f"{user} did not subscribe"
    return worker


def _provision(db_url: str) -> None:
    engine = make_engine(db_url)
    create_all(engine)
    Registry(make_sessionmaker(engine)).provision(
        "gwA",
        [
            DeviceInfo(device_id=FLOOD, kind=DeviceKind.FLOOD_SENSOR),
            DeviceInfo(device_id=BLOCK, kind=DeviceKind.WATER_BLOCK),
        ],
    )
    engine.dispose()


def _publish_storm(gw: Client, batches: int) -> None:
    """gwA's batches, one reading per device each; the flood sensor reaches its first
    stage (10 cm) in the last one."""
    start = datetime.now(UTC) - timedelta(seconds=batches)
    for seq in range(batches):
        ts = start + timedelta(seconds=seq)
        depth = 15.0 if seq == batches - 1 else 1.0
        readings = [
            reading_adapter.validate_python(
                {"device_id": FLOOD, "kind": "flood_sensor", "ts": ts,
                 "values": {"depth": depth, "rain_intensity": 20.0}}
            ),
            reading_adapter.validate_python(
                {"device_id": BLOCK, "kind": "water_block", "ts": ts,
                 "values": {"flow": 40.0 + seq % 3, "pressure": 0.35 + seq % 2 / 100}}
            ),
        ]  # fmt: skip
        batch = Batch(gateway_id="gwA", seq=seq, sent_at=ts, readings=readings)
        assert not gw.publish("akita/v1/gwA/telemetry", encode_batch(batch)).is_failure


def _flood_alerts(db_url: str) -> list[str]:
    engine = make_engine(db_url)
    try:
        with make_sessionmaker(engine)() as s:
            return list(s.scalars(select(AlertRow.kind).where(AlertRow.device_id == FLOOD)))
    finally:
        engine.dispose()


def _applied(db_url: str, partition: int) -> int | None:
    engine = make_engine(db_url)
    try:
        saved = checkpoint.load(make_sessionmaker(engine), partition)
        return None if saved is None else saved.state["applied"].get("gwA")
    finally:
        engine.dispose()


def _holders(db_url: str) -> dict[int, str]:
    engine = make_engine(db_url)
    try:
        return lease.holders(make_sessionmaker(engine), datetime.now(UTC))
    finally:
        engine.dispose()


def test_ingest_worker_and_akita_cloud_detect_with_their_own_accounts(
    broker: DeployedMosquitto, tmp_path: Path, pg_url: str
) -> None:
    """The real tier on the shipped broker: `akita cloud detect` (AKITA_DETECT_USERNAME
    'akita-detect-{p}') owns both partitions; an ingest worker on akita-ingest-1 hands
    gwA's batches off; every batch reaches both partitions and the flood reading opens
    its alert."""
    _provision(pg_url)
    store = f"sqlite:///{tmp_path / 'series.db'}"
    config = tmp_path / "cloud.toml"
    config.write_text(
        tomli_w.dumps(
            {
                "environment": "test",
                "store": {"url": store},
                "database": {"url": pg_url},
                "detect": {"sites": {FLOOD: {"stages_cm": [10, 20, 30]}}},
                "ingest": {**_broker_settings(broker), "detect_partitions": PARTITIONS},
            }
        )
    )
    env = {
        **os.environ,
        **FAST,
        "AKITA_DETECT_USERNAME": "akita-detect-{p}",
        "AKITA_DETECT_PASSWORD": broker.passwords["akita-detect-0"],
    }
    akita = Path(sys.executable).with_name("akita")
    log = tmp_path / "detect.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(akita), "cloud", "detect", "--config", str(config), "--name", "det-a"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    worker = None
    gw = Client(broker, "gwA")
    try:
        wait_for("det-a owns both partitions", lambda: len(_holders(pg_url)) == PARTITIONS, 30)
        worker = _worker(
            broker, "akita-ingest-1", pg_url, store, handoff=True, detect_partitions=PARTITIONS
        )
        _publish_storm(gw, 10)
        wait_for("the flood alert", lambda: _flood_alerts(pg_url) != [], 30)
        for p in range(PARTITIONS):
            wait_for(f"partition {p} read all", lambda p=p: _applied(pg_url, p) == 9, 30)
    finally:
        if worker is not None:
            worker.stop()
        gw.close()
        proc.terminate()
        proc.wait(30)
    text = log.read_text(errors="replace")
    assert "detect_broker_refused" not in text, text
    assert "flood_stage" in _flood_alerts(pg_url)


def test_akita_cloud_run_in_the_shared_group_detects_another_workers_batches(
    broker: DeployedMosquitto, tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`akita cloud run` (akita-ingest-1, commands as akita-cloud) with its exclusive
    tier on akita-detect-0, beside a second worker (akita-ingest-2) that hands off:
    every batch of gwA is detected, whichever worker stored it."""
    from cloud.service import CloudService
    from cloud.settings import CloudSettings

    _provision(pg_url)
    store = f"sqlite:///{tmp_path / 'series.db'}"
    monkeypatch.setenv("AKITA_DETECT_USERNAME", "akita-detect-{p}")
    monkeypatch.setenv("AKITA_DETECT_PASSWORD", broker.passwords["akita-detect-0"])
    settings = CloudSettings.from_mapping(
        {
            "environment": "test",
            "store": {"url": store},
            "database": {"url": pg_url},
            "detect": {"sites": {FLOOD: {"stages_cm": [10, 20, 30]}}},
            "ingest": {
                **_broker_settings(broker),
                "username": "akita-ingest-1",
                "password": broker.passwords["akita-ingest-1"],
            },
            "commands": {"username": "akita-cloud", "password": broker.passwords["akita-cloud"]},
        },
        source="test",
    )
    run = CloudService(settings)
    run.start()
    other = None
    gw = Client(broker, "gwA")
    try:
        assert run.ingest is not None and run.ingest.wait_ready(15)
        assert run.tier is not None and run.tier.exclusive
        other = _worker(broker, "akita-ingest-2", pg_url, store, handoff=True)
        _publish_storm(gw, 20)
        part = run.tier.partitions[0]

        def applied() -> int | None:
            with part.lock:
                return part.order.applied().get("gwA")

        wait_for("run's tier read every batch", lambda: applied() == 19, 30)
        wait_for("the flood alert", lambda: _flood_alerts(pg_url) != [], 30)
        # the second worker really stored part of the stream and handed it off (its
        # counter moves once the broker has confirmed the hand-offs)
        wait_for(
            "akita-ingest-2's hand-offs",
            lambda: other.metrics.value("akita_ingest_handoffs_total") > 0,
            10,
        )
    finally:
        if other is not None:
            other.stop()
        gw.close()
        run.stop()


def _ctrl(broker: DeployedMosquitto, tmp_path: Path, *args: str) -> None:
    """mosquitto_ctrl dynsec as the broker admin, the way dynsec-lib.sh runs it."""
    home = tmp_path / "ctrl-home"
    home.mkdir(exist_ok=True)
    link = home / "mosquitto_ctrl"
    if not link.exists():
        link.symlink_to(broker.directory / "admin.conf")
    result = subprocess.run(
        ["mosquitto_ctrl", "dynsec", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "XDG_CONFIG_HOME": str(home)},
        timeout=30,
    )
    assert result.returncode == 0 and "Error" not in result.stdout, result.stdout + result.stderr


def test_a_handoff_refused_or_given_to_nobody_is_reported_and_make_roles_repairs_it(
    broker: DeployedMosquitto, tmp_path: Path, pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A broker upgraded without running make-roles.sh again: its akita-ingest role lacks
    the hand-off right, so the broker refuses them (0x87) and, the originals being
    stored, no detector would ever see those readings. The worker counts and logs each
    such loss; make-roles.sh puts the right back. A partition whose session was never
    made (0x10: nobody subscribed) is reported the same way."""
    _provision(pg_url)
    store = f"sqlite:///{tmp_path / 'series.db'}"
    _ctrl(
        broker, tmp_path, "removeRoleACL", "akita-ingest", "publishClientSend", "akita/v1/_detect/#"
    )
    d0 = Client(broker, "akita-detect-0", client_id="akita-detect-0", persistent=True)
    assert not d0.subscribe(handoff.topic(0)).is_failure
    gw = Client(broker, "gwA")
    caplog.set_level(logging.ERROR, logger="cloud.ingest.worker")
    worker = _worker(broker, "akita-ingest-1", pg_url, store, handoff=True)
    try:
        lost = worker.metrics.value

        def send(seq: int) -> None:
            ts = datetime.now(UTC)
            reading = reading_adapter.validate_python(
                {"device_id": FLOOD, "kind": "flood_sensor", "ts": ts, "values": {"depth": 1.0}}
            )
            batch = Batch(gateway_id="gwA", seq=seq, sent_at=ts, readings=[reading])
            assert not gw.publish("akita/v1/gwA/telemetry", encode_batch(batch)).is_failure

        send(0)
        wait_for(
            "the refused hand-off counted",
            lambda: lost("akita_ingest_handoffs_lost_total", reason="Not authorized") == 1,
        )
        # counted just before it is logged, on the worker's thread: wait for the line too
        wait_for(
            "the refused hand-off logged",
            lambda: any("handoff_lost" in r.getMessage() for r in list(caplog.records)),
        )
        repaired = broker.script("make-roles.sh")
        assert repaired.returncode == 0, repaired.stderr
        send(1)
        wait_for(
            "the hand-off after make-roles.sh", lambda: len(d0.received(handoff.topic(0))) == 1
        )
        d0.close(end_session=True)  # partition 0 has no session any more
        send(2)
        wait_for(
            "the hand-off given to nobody counted",
            lambda: lost("akita_ingest_handoffs_lost_total", reason="No matching subscribers") == 1,
        )
        assert lost("akita_ingest_handoffs_lost_total", reason="Not authorized") == 1
    finally:
        worker.stop()
        gw.close()
    [(_topic, payload)] = d0.messages
    assert handoff.decode(payload).batch.seq == 1
