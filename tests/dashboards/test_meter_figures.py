"""The Water meters dashboard shows the pilot report's numbers: each panel's InfluxQL,
filled as Grafana fills it for the report's period, against the report built from the
same InfluxDB and alerts table (data: ``tests/dashboards/meter_data.py``, the real
path through Mosquitto, the LPWA worker and the alert lifecycle)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from dashboards.build import models
from tests.dashboards.meter_data import MeterRun, load_meters
from tests.dashboards.panel_queries import fill, panel, targets
from tests.servers import Influx

DASH = "water-meters"
ALL = {"district": ".*", "device": ".*"}


@pytest.fixture(scope="module")
def run(influx: Influx, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MeterRun]:
    loaded = load_meters(influx, tmp_path_factory.mktemp("meters"), "akita_meter_figures")
    yield loaded
    influx.query(f'DROP DATABASE "{loaded.db}"')


def _rows(influx: Influx, run: MeterRun, title: str, ref_id: str = "A") -> list[dict[str, Any]]:
    model = models()[DASH]
    assert panel(model, title)
    (t,) = [t for t in targets({DASH: model}) if t.panel == title and t.ref_id == ref_id]
    q = fill(t.query, start_ms=run.start_ms, end_ms=run.end_ms, values=ALL)
    result = influx.query(q, run.db)["results"][0]
    assert "error" not in result, result
    return [
        {**s.get("tags", {}), **dict(zip(s["columns"], v, strict=True))}
        for s in result.get("series", [])
        for v in s["values"]
    ]


def test_read_success_is_the_reports(influx: Influx, run: MeterRun) -> None:
    report = run.report
    assert 0.5 < report.read_rate < 1.0  # dead meters and the hours after the data
    (overall,) = _rows(influx, run, "Read success overall")
    assert overall["meters"] == len(report.meters)
    assert overall["read rate"] == pytest.approx(report.read_rate, rel=1e-9)
    per_meter = {r["device"]: r for r in _rows(influx, run, "Read success per meter")}
    assert per_meter.keys() == {m.device for m in report.meters}
    for m in report.meters:
        assert per_meter[m.device]["read rate"] == pytest.approx(m.read_rate, rel=1e-9)
    blocks = {r["district"]: r["read rate"] for r in _rows(influx, run, "Read success per block")}
    for b in report.blocks:
        members = [m for m in report.meters if m.block == b.block]
        expected = sum(m.hours_stored for m in members) / (report.hours_expected * len(members))
        assert blocks[b.block] == pytest.approx(expected, rel=1e-9)


def test_leak_alerts_and_meters_are_the_reports(influx: Influx, run: MeterRun) -> None:
    title = "Leak alerts opened, and meters"
    assert run.report.leak_alerts > 0  # the simulated leaks opened meter_leak alerts
    (alerts,) = _rows(influx, run, title, "A")
    (meters,) = _rows(influx, run, title, "B")
    assert alerts["alerts"] == run.report.leak_alerts
    assert alerts["alerts"] * 1000 / meters["meters"] == pytest.approx(run.report.leaks_per_1000)


def test_nrw_parts_are_the_reports(influx: Influx, run: MeterRun) -> None:
    rows = _rows(influx, run, "Non-revenue water per block: inflow and billed")
    inflow = {r["district"]: r["inflow"] for r in rows if r["inflow"] is not None}
    billed = {r["district"]: r["billed"] for r in rows if r["billed"] is not None}
    assert run.report.blocks
    for b in run.report.blocks:
        assert b.inflow_m3 is not None and b.nrw_share is not None
        assert inflow[b.block] == pytest.approx(b.inflow_m3, rel=1e-9)
        assert billed[b.block] == pytest.approx(b.metered_m3, rel=1e-9)
        share = (inflow[b.block] - billed[b.block]) / inflow[b.block]
        assert share == pytest.approx(b.nrw_share, rel=1e-9)


def test_battery_panel_has_a_day_per_day_of_data(influx: Influx, run: MeterRun) -> None:
    rows = _rows(influx, run, "Battery: fleet's daily mean (min, p10, median, p90, max)")
    levels = run.report.battery_levels
    assert rows and levels is not None
    # the last day's distribution covers the live meters' last daily means
    assert rows[-1]["max"] == pytest.approx(levels["max"])
