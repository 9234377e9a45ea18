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


def test_report_panels_show_the_reports_nrw_leaks_and_battery_slope(
    influx: Influx, run: MeterRun
) -> None:
    """The figures InfluxQL cannot compute, as the stored report has them: NRW share per
    block, leak alerts per 1,000 meters (fleet and block), battery slope (fleet, meter)."""
    report = run.report
    nrw = _rows(influx, run, "Pilot report: non-revenue water share per block")
    # one row per block of the one stored report: its end, its length
    assert {r["period_hours"] for r in nrw} == {str(report.hours_expected)}
    assert {r["time"] for r in nrw} == {int(report.end.timestamp() * 1000)}
    shares = {r["district"]: r["NRW share"] for r in nrw}
    assert report.blocks and shares.keys() == {b.block for b in report.blocks}
    for b in report.blocks:
        assert b.nrw_share is not None and 0.02 < b.nrw_share < 0.5
        assert shares[b.block] == pytest.approx(b.nrw_share, rel=1e-12)

    title = "Pilot report: leak alerts per 1,000 meters"
    (fleet,) = _rows(influx, run, title, "A")
    assert report.leaks_per_1000 > 0
    assert fleet["leak alerts per 1,000 meters"] == pytest.approx(report.leaks_per_1000)
    assert fleet["leak alerts"] == report.leak_alerts and fleet["meters"] == len(report.meters)
    assert fleet["read rate"] == pytest.approx(report.read_rate)
    per_block = {r["district"]: r for r in _rows(influx, run, title, "B")}
    for b in report.blocks:
        members = [m for m in report.meters if m.block == b.block]
        leaks = sum(m.leak_alerts for m in members)
        got = per_block[b.block]["leak alerts per 1,000 meters"]
        assert got == pytest.approx(leaks * 1000 / len(members))
    assert sum(r["leak alerts"] for r in per_block.values()) == report.leak_alerts

    (battery,) = _rows(influx, run, "Pilot report: battery slope, % per 30 days (fleet)")
    assert report.battery_slopes is not None
    for k in ("min", "p10", "median", "p90", "max"):
        assert battery[k] == pytest.approx(report.battery_slopes[k], rel=1e-12)
    assert report.battery_slopes["min"] < -5  # a dead meter's battery collapsed
    per_meter = {
        r["device"]: r for r in _rows(influx, run, "Pilot report: battery slope per meter")
    }
    for m in report.meters:
        if m.battery_slope is None:
            assert per_meter.get(m.device, {}).get("battery slope") is None
        else:
            assert per_meter[m.device]["battery slope"] == pytest.approx(m.battery_slope)
            assert per_meter[m.device]["battery"] == pytest.approx(m.battery)
