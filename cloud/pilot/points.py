"""The pilot report's figures as InfluxDB points (``akita pilot report --store-figures``),
for the Water meters dashboard: InfluxQL 1.x cannot divide one measurement's sum by
another's (NRW share), nor fit a least-squares slope (battery trend), so the dashboard
shows these figures as the report computed them.

Measurement ``pilot_report``, in the store's default retention policy (``raw``, 90 days:
the JSON and CSV files are the record; the dashboard reads ``"raw"``), one point per
figure row, stamped with the period's end (a report of the same period again
overwrites its points). Tags: ``period_hours`` (the period's length: a daily 30-day
report and a weekly one ending together stay apart), ``scope`` (``overall``, ``block``,
``meter``), ``district`` (block and meter rows), ``device`` (meter rows). The period's
start is a field (``period_start_s``), not a tag: a tag per period would make every
report's per-meter rows new series (a daily report of 10,000 meters kept 90 days is
about 900,000 series, near influxd's default limit of 1,000,000 per database); this
way a meter has one series per report length. Every number is a float field; a figure
the report has not (a block without inlet has no NRW share) is left out.
"""

from __future__ import annotations

from datetime import UTC

from cloud.pilot.report import Report
from cloud.store.base import FieldValue, Point

MEASUREMENT = "pilot_report"
DIST = ("min", "p10", "median", "p90", "max")


def _num(**values: float | int | None) -> dict[str, FieldValue]:
    return {k: float(v) for k, v in values.items() if v is not None}


def points(report: Report) -> list[Point]:
    period = str(report.hours_expected)
    ts = report.end.astimezone(UTC)
    start_s = report.start.timestamp()
    overall = _num(
        period_start_s=start_s,
        hours_expected=report.hours_expected,
        meters=len(report.meters),
        hours_stored=sum(m.hours_stored for m in report.meters),
        read_rate=report.read_rate,
        leak_alerts=report.leak_alerts,
        leaks_per_1000_meters=report.leaks_per_1000,
    )
    for name, dist in (("battery_slope", report.battery_slopes),
                       ("battery", report.battery_levels)):  # fmt: skip
        for k in DIST:
            if dist is not None:
                overall[f"{name}_{k}"] = float(dist[k])
    out = [Point(MEASUREMENT, {"period_hours": period, "scope": "overall"}, overall, ts)]
    for b in report.blocks:
        members = [m for m in report.meters if m.block == b.block]
        stored = sum(m.hours_stored for m in members)
        leaks = sum(m.leak_alerts for m in members)
        fields = _num(
            period_start_s=start_s,
            meters=b.meters,
            hours_stored=stored,
            read_rate=stored / (report.hours_expected * len(members)) if members else None,
            leak_alerts=leaks,
            leaks_per_1000_meters=leaks * 1000 / len(members) if members else None,
            inflow_m3=b.inflow_m3,
            metered_m3=b.metered_m3,
            nrw_share=b.nrw_share,
        )
        tags = {"period_hours": period, "scope": "block", "district": b.block}
        out.append(Point(MEASUREMENT, tags, fields, ts))
    for m in report.meters:
        fields = _num(
            period_start_s=start_s,
            hours_stored=m.hours_stored,
            read_rate=m.read_rate,
            use_m3=m.use_m3,
            battery=m.battery,
            battery_slope=m.battery_slope,
            leak_alerts=m.leak_alerts,
        )
        tags = {
            "period_hours": period,
            "scope": "meter",
            "district": m.block,
            "device": m.device,
        }
        out.append(Point(MEASUREMENT, tags, fields, ts))
    return out
