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

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from cloud.store.influx import InfluxStore
from dashboards.build import models
from schemas import DeviceKind
from tests.dashboards.panel_queries import Target, fill, regex_value, targets, variables
from tests.dashboards.scenario_data import Export, Loader, export_kind, export_scenario, labels_of
from tests.servers import Influx

KINDS = ("water_block", "manhole_pump", "flood_sensor", "vehicle", "call_unit")
LONG_MS = 30 * 86_400_000


@dataclass
class Loaded:
    db: str
    start_ms: int
    end_ms: int


def _backfill(store: InfluxStore, ex: Export) -> None:
    kinds = "|".join(KINDS)
    store.query(
        f'SELECT mean(*), min(*), max(*) INTO "agg_1m".:MEASUREMENT FROM "raw"./^({kinds})$/ '
        f"WHERE time >= '{ex.start.isoformat()}' AND time < '{ex.end.isoformat()}' "
        "GROUP BY time(1m), *"
    )


def _load(influx: Influx, tmp: Path, db: str, ex: Export, extra_labels: list[dict]) -> Loaded:
    store = InfluxStore(influx.url, db)
    # scenario dates are months back: keep raw long enough that nothing is dropped
    store.init_db(raw_duration="3650d")
    loader = Loader.create(store, tmp / f"{db}.sqlite")
    loader.register(ex)
    loader.readings(ex, lines=True)
    loader.system(ex, extra_labels)
    opened = loader.alerts_from_labels(ex.labels + extra_labels, start=ex.start, end=ex.end)
    assert opened > 0
    _backfill(store, ex)
    store.close()
    return Loaded(db, int(ex.start.timestamp() * 1000), int(ex.end.timestamp() * 1000))


@pytest.fixture(scope="module")
def loaded(influx: Influx, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Loaded]]:
    tmp = tmp_path_factory.mktemp("scenarios")
    water = export_kind(tmp, "normal_week", DeviceKind.WATER_BLOCK, days=7)
    fleet = export_scenario(tmp, "demo", days=0.25)
    yield {
        "water": _load(
            influx,
            tmp,
            "akita_dash_water",
            water,
            labels_of("water_leak") + labels_of("pipe_burst"),
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
        ),
    }
    for db in ("akita_dash_water", "akita_dash_fleet"):
        influx.query(f'DROP DATABASE "{db}"')


def _data_for(dashboard: str, loaded: dict[str, Loaded]) -> Loaded:
    return loaded["water" if dashboard == "water-blocks" else "fleet"]


# the panel each dashboard is opened for: must show data for any single device
MAIN = {
    "water-blocks": "Inlet flow per block",
    "pump-stations": "Wet-well level against set points",
    "flood": "Water depth against stage lines",
    "fleet": "Speed",
    "call-units": "Heartbeats per hour",
    "system-health": "Spool depth",
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
        if name != "system-health":
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
