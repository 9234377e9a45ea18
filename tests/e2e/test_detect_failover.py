"""Acceptance of the detector tier (issue 17): failover and replay, on real Mosquitto,
InfluxDB and PostgreSQL, fed by the simulators' heavy-rain flood and water-leak
scenarios (same seed), aligned so that the storm falls on the leak's baseline day.

- Failover: the active `akita cloud detect` process is killed with SIGKILL in the middle
  of the storm; the standby process takes the partition over within 30 s, restores the
  checkpoint, and the alert transitions (every flood stage change, the leak) are exactly
  those of one engine fed everything without a failover: none missed, none twice, and
  the leak that starts after the failover is found at the same reading.
- Replay: the detector tier is down while more than 10 minutes of readings (reading
  time) are stored; after the restart it catches up in order, and the alerts carry the
  readings' times (the simulated timeline stands in for waiting 10 real minutes).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import tomli_w
from sqlalchemy.orm import Session, sessionmaker

from cloud.db.base import create_all, make_engine, make_sessionmaker
from cloud.detect import checkpoint, lease
from cloud.registry import Registry
from cloud.store import init_db
from firmware_sim.scenarios import build, days_to_recent
from tests.e2e.topology import (
    DAY,
    Feed,
    cloud_settings,
    detector,
    events,
    ingest_worker,
    publish,
    reference,
    scenario_feed,
    settings_mapping,
)
from tests.servers import Influx, Mosquitto, Postgres, wait_for

FAST = {
    "AKITA_DETECT_LEASE_TTL_S": "5",
    "AKITA_DETECT_HEARTBEAT_S": "0.5",
    "AKITA_DETECT_CHECKPOINT_S": "1",
}


@pytest.fixture(scope="module")
def feed(tmp_path_factory: pytest.TempPathFactory) -> Feed:
    water = days_to_recent("water_leak", time.time()) - 6  # 4 days, ending before now
    start_w = build("water_leak", seed=7).plan.start
    start_f = build("heavy_rain_flood", seed=7).plan.start
    flood = water + 1 + round((start_w - start_f) / DAY)  # the storm on the leak's day 2
    return scenario_feed(
        tmp_path_factory.mktemp("feed"),
        ["water_leak", "heavy_rain_flood"],
        seed=7,
        shift_days={"water_leak": water, "heavy_rain_flood": flood},
    )


@pytest.fixture
def store(influx: Influx, influx_db: str) -> str:
    url = f"influx+http://127.0.0.1:{influx.port}/{influx_db}"
    init_db(url)
    return url


@pytest.fixture
def relational(pg_url: str, feed: Feed) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(pg_url)
    create_all(engine)
    sm = make_sessionmaker(engine)
    registry = Registry(sm)
    for gw, infos in feed.owners.items():
        registry.provision(gw, infos)  # staff: akita cloud device import
    yield sm
    engine.dispose()


def _flood_changes(feed: Feed) -> list[datetime]:
    return sorted(
        r.ts
        for b in feed.batches
        for r in b.readings
        if r.kind == "flood_sensor" and r.values.depth is not None and r.values.depth >= 10
    )


def _last_seqs(feed: Feed) -> dict[str, int]:
    last: dict[str, int] = {}
    for b in feed.batches:
        last[b.gateway_id] = max(last.get(b.gateway_id, -1), b.seq)
    return last


def _checkpointed(sm: sessionmaker[Session], seqs: dict[str, int]) -> bool:
    saved = checkpoint.load(sm, 0)
    return saved is not None and saved.state["applied"] == seqs


def _holder(sm: sessionmaker[Session]) -> str | None:
    return lease.holders(sm, datetime.now(UTC)).get(0)


def _spawn(config: Path, name: str, log: Path) -> subprocess.Popen[bytes]:
    akita = Path(sys.executable).with_name("akita")
    with log.open("wb") as out:
        return subprocess.Popen(
            [str(akita), "cloud", "detect", "--config", str(config), "--name", name],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **FAST},
        )


def test_kill_9_of_the_active_detector_mid_storm_misses_and_repeats_nothing(
    tmp_path: Path,
    feed: Feed,
    mosquitto: Mosquitto,
    postgres: Postgres,
    pg_url: str,
    store: str,
    relational: sessionmaker[Session],
    unique: str,
) -> None:
    group = f"gf{unique}"
    data = settings_mapping(feed, pg_url, store, mosquitto.port, group, handoff=True)
    config = tmp_path / "cloud.toml"
    config.write_text(tomli_w.dumps(data))
    settings = cloud_settings(feed, pg_url, store, mosquitto.port, group, handoff=True)
    expected = reference(feed, settings, f"sqlite:///{tmp_path / 'reference.db'}")
    assert (
        any(e[0] == "leak" for e in expected) and sum(e[0] == "flood_stage" for e in expected) > 4
    )

    active = _spawn(config, "det-a", tmp_path / "det-a.log")
    standby: subprocess.Popen[bytes] | None = None
    worker = None
    try:
        wait_for("det-a owns the partition", lambda: _holder(relational) == "det-a", 30)
        standby = _spawn(config, "det-b", tmp_path / "det-b.log")
        worker = ingest_worker(settings, f"ingest-{unique}", relational, 1)
        # kill in the middle of the storm: half its flood readings are in
        changes = _flood_changes(feed)
        middle = changes[len(changes) // 2]
        first = [b for b in feed.batches if b.readings[-1].ts <= middle]
        publish(mosquitto.port, f"pub-{unique}-1", first)

        def checkpointed_into_the_storm() -> bool:
            saved = checkpoint.load(relational, 0)
            return (
                saved is not None
                and saved.event_time is not None
                and saved.event_time >= changes[0]
            )

        wait_for("a checkpoint from inside the storm", checkpointed_into_the_storm, 60)
        active.send_signal(signal.SIGKILL)
        active.wait()
        killed = time.monotonic()
        wait_for(
            "the standby takes over within 30 s",
            lambda: _holder(relational) == "det-b",
            30,
        )
        takeover_s = time.monotonic() - killed
        print(f"takeover after kill -9: {takeover_s:.1f} s")
        publish(mosquitto.port, f"pub-{unique}-2", feed.batches[len(first) :])
        wait_for(
            "the standby read everything", lambda: _checkpointed(relational, _last_seqs(feed)), 120
        )
        from cloud.alerts.manager import AlertManager

        got = events(AlertManager(relational, settings.alerts))
    finally:
        if worker is not None:
            worker.stop()
        for proc in (active, standby):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(20)
    assert got == expected
    [leak] = [e for e in got if e[0] == "leak" and e[2] == "open"]
    assert leak[4] > middle  # the leak started after the failover and was found as without it


def test_after_10_minutes_of_tier_outage_it_catches_up_in_order_with_reading_times(
    tmp_path: Path,
    feed: Feed,
    mosquitto: Mosquitto,
    pg_url: str,
    store: str,
    relational: sessionmaker[Session],
    unique: str,
) -> None:
    settings = cloud_settings(feed, pg_url, store, mosquitto.port, f"gr{unique}", handoff=True)
    expected = reference(feed, settings, f"sqlite:///{tmp_path / 'reference.db'}")
    fast = {"heartbeat_s": 0.5, "lease_ttl_s": 5.0, "checkpoint_s": 1.0}
    worker = ingest_worker(settings, f"ingest-{unique}", relational, 1)
    try:
        changes = _flood_changes(feed)
        outage_from, outage_to = changes[0] - timedelta(minutes=5), changes[-1]
        assert outage_to - outage_from >= timedelta(minutes=10)
        before = [b for b in feed.batches if b.readings[-1].ts < outage_from]
        during = [b for b in feed.batches if outage_from <= b.readings[-1].ts <= outage_to]
        after = feed.batches[len(before) + len(during) :]
        first = detector(settings, "det-r1", 1, **fast)
        try:
            wait_for("det-r1 owns the partition", lambda: _holder(relational) == "det-r1", 30)
            publish(mosquitto.port, f"pub-{unique}-1", before)
            last = {b.gateway_id: b.seq for b in before}
            wait_for("det-r1 read the first part", lambda: _checkpointed(relational, last), 60)
        finally:
            first.stop()  # the tier is down: nothing detects while the ingest stores
        publish(mosquitto.port, f"pub-{unique}-2", during)
        assert checkpoint.load(relational, 0).state["applied"] == last  # type: ignore[union-attr]
        restarted_at = datetime.now(UTC)
        second = detector(settings, "det-r2", 1, **fast)
        try:
            publish(mosquitto.port, f"pub-{unique}-3", after)
            wait_for("the tier caught up", lambda: _checkpointed(relational, _last_seqs(feed)), 120)
            from cloud.alerts.manager import AlertManager

            got = events(AlertManager(relational, settings.alerts))
        finally:
            second.stop()
    finally:
        worker.stop()
    assert got == expected  # in order: every stage change once, at its reading's time
    replayed = [e for e in got if outage_from <= e[4] <= outage_to]
    assert replayed and all(e[4] < restarted_at - timedelta(days=1) for e in replayed)
