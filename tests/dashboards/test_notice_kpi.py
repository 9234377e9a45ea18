"""Issue 15's KPI on the Call units dashboard: the two KPI panels' InfluxQL, filled as
Grafana fills it, run against a real InfluxDB holding what the command component wrote
(``tests/dashboards/notice_data.py``), and give exactly what GET /notices/kpi reports."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cloud.commands.notices import Kpi
from cloud.store.influx import InfluxStore
from dashboards.build import models
from schemas import DeviceInfo, DeviceKind
from tests.dashboards.notice_data import load_notices
from tests.dashboards.panel_queries import fill, targets
from tests.dashboards.scenario_data import Loader
from tests.servers import Influx

DB = "akita_dash_notices"
ALL = {"district": ".*", "site": ".*", "device": ".*"}
START = datetime(2025, 7, 31, 13, 0, tzinfo=UTC)  # 22:00 in Japan: B falls in August
END = START + timedelta(hours=4)


def _units() -> dict[str, list[DeviceInfo]]:
    def unit(n: int, district: str) -> DeviceInfo:
        return DeviceInfo(device_id=f"cu-{n}", kind=DeviceKind.CALL_UNIT, district=district)

    return {"gw-a": [unit(1, "土崎"), unit(2, "土崎"), unit(3, "土崎")],
            "gw-b": [unit(4, "新屋"), unit(5, "新屋")]}  # fmt: skip


@pytest.fixture(scope="module")
def loaded(influx: Influx, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kpi]:
    tmp: Path = tmp_path_factory.mktemp("notices")
    store = InfluxStore(influx.url, DB)
    store.init_db(raw_duration="3650d")
    loader = Loader.create(store, tmp / "registry.sqlite")
    for gateway, devices in _units().items():
        loader.registry.provision(gateway, devices)
    try:
        yield load_notices(loader, START, END, tmp / "commands.sqlite")
    finally:
        store.close()
        influx.query(f'DROP DATABASE "{DB}"')


def _series(influx: Influx, panel: str, values: dict[str, str]) -> list[dict]:
    (t,) = [t for t in targets(models()) if t.dashboard == "call-units" and t.panel == panel]
    start, end = int(START.timestamp() * 1000), int(END.timestamp() * 1000)
    result = influx.query(fill(t.query, start_ms=start, end_ms=end, values=values), DB)
    assert "error" not in result["results"][0], result
    return result["results"][0].get("series", [])


def test_units_with_the_notice_function_match_the_api(influx: Influx, loaded: Kpi) -> None:
    (series,) = _series(influx, "Residents with the notice function", ALL)
    ((_, units),) = series["values"]
    # 4 of the 5 units confirmed a notice (cu-5's result failed)
    assert units == loaded.units_with_notice_function == 4
    assert loaded.call_units == 5


def test_notices_received_and_seen_per_month_match_the_api(influx: Influx, loaded: Kpi) -> None:
    shown = {  # a month without presses has no seen points: Grafana's empty cell
        s["tags"]["month"]: (s["values"][0][1], s["values"][0][2] or 0)
        for s in _series(influx, "Notices received and seen per month", ALL)
    }
    api = {m.month: (m.notices_received, m.notices_seen) for m in loaded.months}
    assert shown == api
    # A: 4 received in July; B: 3 received in August (Japan time); seen: cu-1's second
    # press and cu-5's press of a notice never sent to it are not counted
    assert api == {"2025-07": (4, 0), "2025-08": (3, 3)}


def test_the_district_variable_narrows_the_kpi(influx: Influx, loaded: Kpi) -> None:
    (series,) = _series(influx, "Residents with the notice function", {**ALL, "district": "新屋"})
    assert series["values"][0][1] == 1  # cu-4 only
