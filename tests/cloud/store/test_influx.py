"""InfluxDB-only behaviour: database set-up, error classification, auth headers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cloud.errors import StoreError
from cloud.store import Point, init_db, open_store
from cloud.store.influx import InfluxStore
from schemas.kinds import KINDS
from tests.servers import Influx, free_port


def test_init_db_is_idempotent_and_sets_up_contract_i(influx: Influx, influx_db: str) -> None:
    url = f"influx+http://127.0.0.1:{influx.port}/{influx_db}"
    first = init_db(url)
    assert any(s.startswith("CREATE DATABASE") for s in first)
    assert init_db(url) == []  # second run changes nothing
    policies = influx.query(f'SHOW RETENTION POLICIES ON "{influx_db}"')["results"][0]
    by_name = {row[0]: row for row in policies["series"][0]["values"]}
    assert by_name["raw"][1] == "2160h0m0s" and by_name["raw"][4] is True
    assert by_name["raw"][2] == "168h0m0s"  # 7-day shard groups, not the 1-day default
    assert by_name["agg_1m"][1] == "87600h0m0s" and by_name["agg_1m"][4] is False
    cqs = influx.query("SHOW CONTINUOUS QUERIES")["results"][0]["series"]
    mine = {row[0]: row[1] for s in cqs if s["name"] == influx_db for row in s.get("values", [])}
    # every kind the registry declares is downsampled, plugins included
    assert set(mine) == {f"cq_{k}_1m" for k in KINDS}
    # a changed duration is corrected, not refused
    changed = init_db(url, raw_duration="30d")
    assert changed == [
        f'ALTER RETENTION POLICY "raw" ON "{influx_db}" DURATION 30d REPLICATION 1 '
        "SHARD DURATION 7d DEFAULT"
    ]


def test_init_db_moves_an_older_database_to_7_day_raw_shards(
    influx: Influx, influx_db: str
) -> None:
    # databases made before the shard duration was set have InfluxDB's 1-day groups
    influx.query(f'CREATE DATABASE "{influx_db}"')
    influx.query(
        f'CREATE RETENTION POLICY "raw" ON "{influx_db}" DURATION 90d REPLICATION 1 DEFAULT'
    )
    url = f"influx+http://127.0.0.1:{influx.port}/{influx_db}"
    ran = init_db(url)
    assert (
        f'ALTER RETENTION POLICY "raw" ON "{influx_db}" DURATION 90d REPLICATION 1 '
        "SHARD DURATION 7d DEFAULT" in ran
    )
    policies = influx.query(f'SHOW RETENTION POLICIES ON "{influx_db}"')["results"][0]
    assert {row[0]: row[2] for row in policies["series"][0]["values"]}["raw"] == "168h0m0s"
    # a raw retention shorter than 7 days keeps one shard group per retention period
    assert init_db(url, raw_duration="2d") == [
        f'ALTER RETENTION POLICY "raw" ON "{influx_db}" DURATION 2d REPLICATION 1 '
        "SHARD DURATION 2d DEFAULT"
    ]


def test_continuous_query_body_downsamples(influx: Influx, influx_db: str) -> None:
    """Run the CQ's SELECT ... INTO by hand (the CQ itself fires on minute boundaries)."""
    store = open_store(f"influx+http://127.0.0.1:{influx.port}/{influx_db}")
    assert isinstance(store, InfluxStore)
    store.init_db()
    t0 = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=5)
    tags = {"device": "mp-cq", "kind": "manhole_pump", "district": "north"}
    store.write(
        [
            Point("manhole_pump", tags, {"level": 1.0, "pump1_running": True, "fault_code": 0}, t0),
            Point(
                "manhole_pump",
                tags,
                {"level": 3.0, "pump1_running": False, "fault_code": 4},
                t0 + timedelta(seconds=30),
            ),
        ]
    )
    cq = influx.query("SHOW CONTINUOUS QUERIES")["results"][0]["series"]
    text = next(
        row[1]
        for s in cq
        if s["name"] == influx_db
        for row in s["values"]
        if row[0] == "cq_manhole_pump_1m"
    )
    body = text[text.index("BEGIN") + 5 : text.rindex("END")].strip()
    backfill = body.replace(
        " GROUP BY", f" WHERE time >= {int(t0.timestamp() * 1000)}ms - 1m GROUP BY"
    )
    store.query(backfill)
    rows = store.query('SELECT * FROM "agg_1m"."manhole_pump" GROUP BY *')[0]["series"]
    assert rows[0]["tags"] == {"device": "mp-cq", "district": "north", "kind": "manhole_pump"}
    columns = rows[0]["columns"]
    values = dict(zip(columns, rows[0]["values"][0], strict=True))
    assert values["mean_level"] == 2.0
    assert values["min_level"] == 1.0 and values["max_level"] == 3.0
    assert values["max_fault_code"] == 4
    store.close()


def test_errors_are_classified(influx: Influx, influx_db: str) -> None:
    down = InfluxStore(f"http://127.0.0.1:{free_port()}", influx_db, retries=0, timeout=1)
    with pytest.raises(StoreError) as err:
        down.write_lines("m f=1 1")
    assert err.value.retryable
    assert down.ping() is False
    down.close()
    store = InfluxStore(influx.url, influx_db, retries=0)
    with pytest.raises(StoreError) as err:  # database not created yet: fixable, keep data
        store.write_lines("m f=1 1")
    assert err.value.retryable and "init-db" in str(err.value)
    store.init_db()
    with pytest.raises(StoreError) as err:
        store.write_lines("m f=1 1 2 3 garbage")
    assert not err.value.retryable and "400" in str(err.value)
    with pytest.raises(StoreError) as err:
        store.query("SELEKT nothing")
    assert not err.value.retryable
    store.close()


def test_credentials_are_sent_and_never_shown(influx: Influx) -> None:
    basic = open_store(f"influx+http://ingest:s3cr%40t@127.0.0.1:{influx.port}/akita")
    assert isinstance(basic, InfluxStore)
    assert "s3cr" not in repr(basic)
    request = basic._client.build_request("GET", "/ping")
    basic._client.auth.auth_flow(request).__next__()  # type: ignore[union-attr]
    assert request.headers["Authorization"].startswith("Basic ")
    basic.close()
    token = open_store(f"influx+http://127.0.0.1:{influx.port}/akita?token=abc123&rp=raw")
    assert isinstance(token, InfluxStore)
    assert token._client.headers["Authorization"] == "Token abc123"
    assert token.rp == "raw"
    assert token.ping() is True  # 1.x without auth ignores the header
    token.close()
