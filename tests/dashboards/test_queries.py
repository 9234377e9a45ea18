"""Acceptance: every panel's InfluxQL, with its template variables filled, returns at
least one series from a real InfluxDB loaded with simulator scenarios.

Two databases: the ``normal_week`` water blocks (the night-flow baseline needs
seven nights) for the Water blocks dashboard, and six hours of the ``demo``
scenario (whole small fleet) for the others. Alerts are opened through the real alert
lifecycle from fault labels of the same seeded fleet; ``agg_1m`` is filled by running
the ingest's continuous-query statement over the loaded range, as a backfill (the
continuous queries themselves only cover the last minutes of wall-clock time).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest

from cloud.store.influx import InfluxStore
from dashboards.build import models
from dashboards.diagnostics import NO_VALID_VALUE
from schemas import DeviceKind
from tests.dashboards.meter_data import load_meters
from tests.dashboards.notice_data import load_notices
from tests.dashboards.panel_queries import (
    Target,
    fill,
    mapped,
    panel,
    regex_value,
    renamed,
    table_columns,
    targets,
    variables,
    visible,
)
from tests.dashboards.scenario_data import Export, Loader, export_kind, export_scenario, labels_of
from tests.dashboards.sign_data import load_signs
from tests.dashboards.tuf_data import FAULT_BITS, NO_SIGNAL, TufRun, load_tuf
from tests.servers import Influx

KINDS = ("water_block", "manhole_pump", "flood_sensor", "vehicle", "call_unit")
LONG_MS = 30 * 86_400_000


@dataclass
class Loaded:
    db: str
    start_ms: int
    end_ms: int
    tuf: TufRun | None = None


def _backfill(store: InfluxStore, ex: Export) -> None:
    kinds = "|".join(KINDS)
    store.query(
        f'SELECT mean(*), min(*), max(*) INTO "agg_1m".:MEASUREMENT FROM "raw"./^({kinds})$/ '
        f"WHERE time >= '{ex.start.isoformat()}' AND time < '{ex.end.isoformat()}' "
        "GROUP BY time(1m), *"
    )


def _load(
    influx: Influx,
    tmp: Path,
    db: str,
    ex: Export,
    extra_labels: list[dict],
    more: Callable[[Loader, datetime, datetime], TufRun | None] | None = None,
) -> Loaded:
    store = InfluxStore(influx.url, db)
    # scenario dates are months back: keep raw long enough that nothing is dropped
    store.init_db(raw_duration="3650d")
    loader = Loader.create(store, tmp / f"{db}.sqlite")
    loader.register(ex)
    loader.readings(ex, lines=True)
    loader.system(ex, extra_labels)
    opened = loader.alerts_from_labels(ex.labels + extra_labels, start=ex.start, end=ex.end)
    assert opened > 0
    tuf = more(loader, ex.start, ex.end) if more is not None else None
    _backfill(store, ex)
    store.close()
    return Loaded(db, int(ex.start.timestamp() * 1000), int(ex.end.timestamp() * 1000), tuf)


@pytest.fixture(scope="module")
def loaded(influx: Influx, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Loaded]]:
    tmp = tmp_path_factory.mktemp("scenarios")
    water = export_kind(tmp, "normal_week", DeviceKind.WATER_BLOCK, days=7)
    fleet = export_scenario(tmp, "demo", days=0.25)
    meters = load_meters(influx, tmp, "akita_dash_meters")
    yield {
        "meters": Loaded(meters.db, meters.start_ms, meters.end_ms),
        "water": _load(
            influx,
            tmp,
            "akita_dash_water",
            water,
            labels_of("water_leak") + labels_of("pipe_burst"),
            more=load_tuf,
        ),
        "fleet": _load(
            influx,
            tmp,
            "akita_dash_fleet",
            fleet,
            labels_of("pump_fail_to_start")
            + labels_of("bus_gps_dropout_off_route")
            + labels_of("heat_wave")
            + labels_of("device_offline"),
            more=lambda loader, start, end: (
                load_notices(loader, start, end, tmp / "notices.sqlite"),  # the KPI panels
                load_signs(loader, start, end),  # no scenario has a warning sign yet
            )[1],
        ),
    }
    for db in ("akita_dash_water", "akita_dash_fleet", "akita_dash_meters"):
        influx.query(f'DROP DATABASE "{db}"')


def _data_for(dashboard: str, loaded: dict[str, Loaded]) -> Loaded:
    if dashboard == "water-meters":
        return loaded["meters"]
    return loaded["water" if dashboard == "water-blocks" else "fleet"]


# the panel each dashboard is opened for: must show data for any single device
MAIN = {
    "water-blocks": "Inlet flow per block",
    "pump-stations": "Wet-well level against set points",
    "flood": "Water depth against stage lines",
    "fleet": "Speed",
    "call-units": "Heartbeats per hour",
    "warning-signs": "Lamp current against the lit line",
    "system-health": "Spool depth",
    "water-meters": "Read success per meter",
}
ALL = {"district": ".*", "site": ".*", "device": ".*", "gateway": ".*"}
TARGETS = list(targets(models()))


def _run(influx: Influx, t: Target, data: Loaded, values: dict[str, str]) -> dict:
    start = data.end_ms - LONG_MS if t.time_from else data.start_ms
    q = fill(t.query, start_ms=start, end_ms=data.end_ms, values=values)
    result = influx.query(q, data.db)["results"][0]
    assert "error" not in result, f"{t.dashboard} / {t.panel} {t.ref_id}: {result['error']}\n{q}"
    return result


@pytest.mark.parametrize("t", TARGETS, ids=lambda t: f"{t.dashboard}:{t.panel}:{t.ref_id}")
def test_panel_query_returns_series(influx: Influx, loaded: dict[str, Loaded], t: Target) -> None:
    result = _run(influx, t, _data_for(t.dashboard, loaded), ALL)
    assert result.get("series"), f"{t.dashboard} / {t.panel} {t.ref_id}: no series"


def test_every_dashboard_has_kind_variables_that_resolve(
    influx: Influx, loaded: dict[str, Loaded]
) -> None:
    """Each variable query returns options; picking the first option of every variable
    (Grafana's default when All is off) still leaves the main panels with data."""
    for name, model in models().items():
        data = _data_for(name, loaded)
        names = [v["name"] for v in variables(model)]
        if name == "water-meters":  # meters have no site
            assert names == ["district", "device"], name
        elif name != "system-health":
            assert names == ["district", "site", "device"], name
        picked: dict[str, str] = {}
        for v in variables(model):
            q = fill(v["query"], start_ms=data.start_ms, end_ms=data.end_ms, values=picked)
            series = influx.query(q, data.db)["results"][0].get("series", [])
            options = [row[1] for s in series for row in s["values"]]
            assert options, f"{name}: variable {v['name']} has no options"
            picked[v["name"]] = regex_value(options[:1])
        first = next(t for t in TARGETS if t.dashboard == name and t.panel == MAIN[name])
        result = _run(influx, first, data, picked)
        assert result.get("series"), f"{name}: first panel empty for {picked}"


WATER = "water-blocks"
TUF_EXTRAS = {"totaliser_fraction", "temperature_t1", "temperature_t2", "error_bits",
              "signal_quality", *FAULT_BITS}  # fmt: skip


def _rows(result: dict, device: str) -> list[dict]:
    return [
        dict(zip(s["columns"], v, strict=True))
        for s in result.get("series", [])
        if s.get("tags", {}).get("device") == device
        for v in s["values"]
    ]


def test_diagnostics_table_shows_the_tuf2000m_extras_it_was_never_told_about(
    influx: Influx, loaded: dict[str, Loaded]
) -> None:
    """``last(*)`` picks up the meter's declared extras and its flow's quality flag; the
    panel's transformations keep them and hide only the kind's standard fields. No
    extra field is named anywhere in the dashboard."""
    data = loaded["water"]
    assert data.tuf is not None
    model = models()[WATER]
    assert not any(name in json.dumps(model) for name in TUF_EXTRAS)
    table = panel(model, "Latest diagnostics per device")
    (target,) = [t for t in TARGETS if t.dashboard == WATER and t.panel == table["title"]]
    result = _run(influx, target, data, ALL)
    (row,) = _rows(result, data.tuf.device_id)
    (series,) = [s for s in result["series"] if s["tags"]["device"] == data.tuf.device_id]
    shown = visible(table["transformations"], table_columns(series))
    assert TUF_EXTRAS | {"flow__quality", "device"} == set(shown)
    latest = {renamed(table["transformations"], k): v for k, v in row.items()}
    meter = data.tuf.meter  # the fault cleared before the range ended
    assert latest["temperature_t1"] == meter.t1 and latest["temperature_t2"] == meter.t2
    assert latest["signal_quality"] == meter.signal_quality and latest["error_bits"] == 0
    assert latest["fault_no_signal"] is False and latest["flow__quality"] == "ok"
    # the flag column reads as Grafana shows it (override on the __quality columns)
    (override,) = table["fieldConfig"]["overrides"]
    mappings = next(p["value"] for p in override["properties"] if p["id"] == "mappings")
    assert mapped(mappings, latest["flow__quality"]) == "valid"
    assert mapped(mappings, NO_SIGNAL) == f"{NO_VALID_VALUE}: {NO_SIGNAL}"
    # a simulated block without diagnostics is a row too, its extra cells empty
    others = [
        dict(zip(s["columns"], v, strict=True))
        for s in result["series"]
        if s["tags"]["device"] != data.tuf.device_id
        for v in s["values"]
    ]
    assert others and all(r["last_temperature_t1"] is None for r in others)
    assert all(r["last_flow"] is not None for r in others)


def test_quality_band_says_no_valid_value_where_the_flow_chart_has_a_gap(
    influx: Influx, loaded: dict[str, Loaded]
) -> None:
    """The gateway flags the flow once when fault_no_signal sets and says 'ok' once when
    it clears; the band holds the flag in between (fill(previous)) and maps it to 'no
    valid value: <reason>', exactly over the buckets where the flow has no value."""
    data = loaded["water"]
    tuf = data.tuf
    assert tuf is not None
    model = models()[WATER]
    band = panel(model, "Value quality per device")
    (target,) = [t for t in TARGETS if t.dashboard == WATER and t.panel == band["title"]]
    one = {**ALL, "device": regex_value([tuf.device_id])}
    (series,) = _run(influx, target, data, one)["series"]
    assert series["columns"] == ["time", "last_flow__quality"]
    name = renamed(band["transformations"], f"{tuf.device_id} last_flow__quality")
    assert name == f"{tuf.device_id} flow"
    mappings = band["fieldConfig"]["defaults"]["mappings"]
    shown = {t: mapped(mappings, v) for t, v in series["values"]}
    flow_target = next(t for t in TARGETS if t.dashboard == WATER and t.panel == MAIN[WATER])
    (flow,) = _run(influx, flow_target, data, one)["series"]
    flows = dict(flow["values"])
    start, end = tuf.fault_start.timestamp() * 1000, tuf.fault_end.timestamp() * 1000
    interval = (data.end_ms - data.start_ms) // 500
    inside = [t for t in shown if start + interval <= t < end - interval]
    after = [t for t in shown if t >= end + interval]
    before = [t for t in shown if t < start - interval]
    assert len(inside) > 10 and after and before
    assert {shown[t] for t in inside} == {f"{NO_VALID_VALUE}: {NO_SIGNAL}"}
    assert {flows[t] for t in inside} == {None}  # the gap the band explains
    assert {shown[t] for t in after} == {"valid"}
    assert all(flows[t] is not None for t in after + before)
    assert {shown[t] for t in before} == {None}  # never flagged yet: no band
