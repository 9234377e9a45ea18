"""One contract, two stores: the real influxd (session fixture) and a temp SQLite file."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cloud.errors import StoreError
from cloud.store import Point, SeriesPoint, TimeSeriesStore, open_store
from tests.servers import Influx

# inside the 90-day raw retention policy, on a whole hour so windows align
T0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=1)


@pytest.fixture(params=["sqlite", "influx"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TimeSeriesStore]:
    if request.param == "sqlite":
        s = open_store(f"sqlite:///{tmp_path}/series.db")
    else:
        influx: Influx = request.getfixturevalue("influx")
        db: str = request.getfixturevalue("influx_db")
        s = open_store(f"influx+http://127.0.0.1:{influx.port}/{db}")
        s.init_db()  # type: ignore[attr-defined]
    try:
        yield s
    finally:
        s.close()


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def water(device: str, ts: datetime, **fields: float) -> Point:
    tags = {"device": device, "gateway": "gw-1", "kind": "water_block", "site": "Kawabata"}
    return Point("water_block", tags, fields, ts)


def test_round_trip_exact_values(store: TimeSeriesStore) -> None:
    values = {"flow": 123.456789012345, "pressure": 0.1 + 0.2, "totaliser": 98765432.125}
    store.write([water("wb-1", at(0.123), **values)])
    latest = store.latest("wb-1")
    assert {k: p.value for k, p in latest.items()} == values
    assert all(p.ts == at(0.123) for p in latest.values())
    assert store.series("wb-1", "pressure", at(0), at(1)) == [SeriesPoint(at(0.123), 0.1 + 0.2)]


def test_timestamps_keep_milliseconds_and_drop_finer(store: TimeSeriesStore) -> None:
    ts = T0 + timedelta(milliseconds=1, microseconds=999)
    store.write([water("wb-ms", ts, flow=1.0)])
    assert store.latest("wb-ms")["flow"].ts == T0 + timedelta(milliseconds=1)


def test_rewrite_is_idempotent_and_merges_fields(store: TimeSeriesStore) -> None:
    points = [water("wb-2", at(i), flow=float(i), pressure=0.3) for i in range(5)]
    store.write(points)
    store.write(points)  # MQTT redelivery writes the same readings again
    raw = store.series("wb-2", "flow", at(0), at(10))
    assert [p.value for p in raw] == [0.0, 1.0, 2.0, 3.0, 4.0]
    # a later write of the same series+time replaces the value, other fields stay
    store.write([water("wb-2", at(4), flow=40.0)])
    assert store.series("wb-2", "flow", at(4), at(4))[0].value == 40.0
    assert store.series("wb-2", "pressure", at(4), at(4))[0].value == 0.3
    assert len(store.series("wb-2", "flow", at(0), at(10))) == 5


AWKWARD = [
    "comma,space =equals",
    'double"quote',
    "back\\slash in middle",
    "trailing space ",
    "日本語 秋田市",
    "a=b,c=d",
]


@pytest.mark.parametrize("text", AWKWARD)
def test_awkward_tags_and_strings_round_trip(store: TimeSeriesStore, text: str) -> None:
    device = f"veh {text}"
    tags = {"device": device, "site": text, "district": "d,1", "kind": "vehicle"}
    route = f'{text} "quoted" \\ back\nline'
    store.write([Point("vehicle", tags, {"route_id": route, "lat": 39.72}, at(1))])
    latest = store.latest(device)
    assert latest["route_id"].value == route
    assert latest["lat"].value == 39.72
    assert text in store.tag_values("vehicle", "site")  # type: ignore[attr-defined]
    assert "d,1" in store.tag_values("vehicle", "district")  # type: ignore[attr-defined]


def test_unrepresentable_tag_parts_are_cleaned_the_same_way(store: TimeSeriesStore) -> None:
    tags = {"device": "wb-clean", "site": "ends with backslash\\", "district": "two\nlines"}
    store.write([Point("water_block", tags, {"flow": 1.0}, at(0))])
    assert store.tag_values("water_block", "site") == ["ends with backslash/"]  # type: ignore[attr-defined]
    assert store.tag_values("water_block", "district") == ["two lines"]  # type: ignore[attr-defined]
    assert store.latest("wb-clean")["flow"].value == 1.0


def test_empty_tags_are_omitted(store: TimeSeriesStore) -> None:
    store.write([Point("water_block", {"device": "wb-e", "site": ""}, {"flow": 2.0}, at(0))])
    assert store.latest("wb-e")["flow"].value == 2.0
    assert store.tag_values("water_block", "site") == []  # type: ignore[attr-defined]


def test_latest_gives_each_field_its_own_time(store: TimeSeriesStore) -> None:
    store.write(
        [
            water("wb-3", at(0), flow=1.0, pressure=0.31),
            water("wb-3", at(10), flow=2.0),  # report-on-change: pressure unchanged
            water("wb-3", at(5), flow=1.5),  # arrives late, older than the latest
        ]
    )
    latest = store.latest("wb-3")
    assert latest["flow"] == SeriesPoint(at(10), 2.0)
    assert latest["pressure"] == SeriesPoint(at(0), 0.31)
    assert store.latest("no-such-device") == {}


def test_windowed_series(store: TimeSeriesStore) -> None:
    # two minutes of data, every 10 s, starting 30 s into the first minute
    store.write([water("wb-4", at(30 + 10 * i), flow=float(i)) for i in range(12)])
    start, end = at(0), at(180)
    w = timedelta(minutes=1)
    mean = store.series("wb-4", "flow", start, end, w, "mean")
    assert mean == [
        SeriesPoint(at(0), 1.0),  # 0,1,2 at 30,40,50 s
        SeriesPoint(at(60), 5.5),  # 3..8
        SeriesPoint(at(120), 10.0),  # 9,10,11
    ]
    assert [p.value for p in store.series("wb-4", "flow", start, end, w, "min")] == [0, 3, 9]
    assert [p.value for p in store.series("wb-4", "flow", start, end, w, "max")] == [2, 8, 11]
    counts = store.series("wb-4", "flow", start, end, w, "count")
    assert [p.value for p in counts] == [3, 6, 3]
    assert all(type(p.value) is int for p in counts)
    last = store.series("wb-4", "flow", start, end, w, "last")
    assert [p.value for p in last] == [2.0, 8.0, 11.0]
    assert all(type(p.value) is float for p in last)
    # the range is inclusive at both ends and cuts inside a window
    inner = store.series("wb-4", "flow", at(40), at(80), w, "count")
    assert inner == [SeriesPoint(at(0), 2), SeriesPoint(at(60), 3)]
    with pytest.raises(StoreError) as err:
        store.series("wb-4", "flow", start, end, w, "median; DROP")
    assert "median; DROP" in str(err.value)
    assert not err.value.retryable


def test_bool_int_string_fields_keep_their_types(store: TimeSeriesStore) -> None:
    pump_tags = {"device": "mp-1", "kind": "manhole_pump"}
    store.write(
        [
            Point(
                "manhole_pump",
                pump_tags,
                {"pump1_running": True, "pump2_running": False, "fault_code": 17, "level": 2},
                at(0),
            ),
        ]
    )
    latest = store.latest("mp-1")
    assert latest["pump1_running"].value is True
    assert latest["pump2_running"].value is False
    assert latest["fault_code"].value == 17 and type(latest["fault_code"].value) is int
    # a whole number in a float field is written as a float, so the field's type is stable
    assert latest["level"].value == 2.0 and type(latest["level"].value) is float
    store.write([Point("manhole_pump", pump_tags, {"level": 2.5}, at(1))])
    assert store.latest("mp-1")["level"].value == 2.5
    veh = {"device": "bus-1", "kind": "vehicle"}
    store.write([Point("vehicle", veh, {"satellites": 9, "fix": True, "route_id": "R12"}, at(0))])
    latest = store.latest("bus-1")
    assert (latest["satellites"].value, latest["fix"].value, latest["route_id"].value) == (
        9,
        True,
        "R12",
    )
    assert type(latest["satellites"].value) is int
    raw = store.series("bus-1", "fix", at(0), at(1))
    assert raw == [SeriesPoint(at(0), True)]


def test_field_type_conflict_is_not_retryable(store: TimeSeriesStore) -> None:
    tags = {"device": "mp-2", "kind": "manhole_pump"}
    store.write([Point("manhole_pump", tags, {"fault_code": 1}, at(0))])
    with pytest.raises(StoreError) as err:
        store.write([Point("manhole_pump", tags, {"fault_code": "E1"}, at(1))])
    assert not err.value.retryable
    assert "fault_code" in str(err.value)
    assert store.latest("mp-2")["fault_code"] == SeriesPoint(at(0), 1)


def test_ping(store: TimeSeriesStore) -> None:
    assert store.ping() is True
