"""Water meters (スマートメーター): the pilot report's figures over the dashboard's range.

The pilot report (``akita pilot report``, ``cloud/pilot/``) reads the same points; each
panel says how its InfluxQL relates to the report's figure. The period is the dashboard's
time range (``${__from}`` .. ``${__to}``; the report needs whole hours, so pick a range
that starts on the hour to compare). A meter reading is one hour stamped with the hour's
end, so a range counts readings with ``time > from AND time <= to``, as the report does.
What InfluxQL cannot compute (the NRW share, leak alerts per 1,000 meters, the battery
slope) the "Pilot report" panels read from the ``pilot_report`` points the report
writes with ``--store-figures``.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as d

from dashboards.common import new_dashboard, series_panel, table_panel, tag_variable
from dashboards.influxql import InfluxQL, tag_filter

UID = "akita-water-meters"
METER = '"raw"."water_meter"'
# the report's period: hourly readings are stamped with their hour's end
PERIOD = "time > ${__from}ms AND time <= ${__to}ms"
# the block inlet's totaliser is a sample at an instant: the period's start counts
INSTANTS = "time >= ${__from}ms AND time <= ${__to}ms"
HOURS = "($__range_s / 3600)"  # hours in the dashboard's range
# the leak alerts the report counts: opened at or after from, before to
OPENED = "time >= ${__from}ms AND time < ${__to}ms"
BLOCK_FILTER = tag_filter("district")
# meters have no site: a block (district) and its meters
F = tag_filter("district", "device")

_PER_METER = f"""
  SELECT count("index") AS "hours" FROM {METER} WHERE {F} AND {PERIOD}
  GROUP BY "device", "district"
"""
READ_RATE_PER_METER = f"""
SELECT count("index") / {HOURS} AS "read rate", count("index") AS "hours stored"
FROM {METER} WHERE {F} AND {PERIOD} GROUP BY "device", "district"
"""
READ_RATE = f"""
SELECT sum("hours") / count("hours") / {HOURS} AS "read rate",
       count("hours") AS "meters", sum("hours") AS "hours stored"
FROM ({_PER_METER}) WHERE {PERIOD}
"""
READ_RATE_PER_BLOCK = READ_RATE + ' GROUP BY "district"'
BATTERY = f"""
SELECT min("b") AS "min", percentile("b", 10) AS "p10", median("b") AS "median",
       percentile("b", 90) AS "p90", max("b") AS "max"
FROM (
  SELECT mean("battery") AS "b" FROM {METER} WHERE {F} AND $timeFilter
  GROUP BY time(1d), "device"
) WHERE $timeFilter GROUP BY time(1d) fill(none)
"""
# a leak alert's "open" point is written when it opens (cloud/alerts/manager.py); later
# changes of the same alert are written as acknowledged/resolved, or open again when its
# value is updated, hence count(distinct alert_id)
LEAK_ALERTS = f"""
SELECT count(distinct("alert_id")) AS "alerts" FROM "raw"."alert"
WHERE "kind" = 'meter_leak' AND "state" = 'open' AND {F} AND {OPENED}
"""
# a meter's use: its index's growth scaled to the whole period by the time its first and
# last readings span, as the report does; (count - 1) hours is that span while the
# meter's hours are contiguous (a dead meter stops: still contiguous)
_BILLED = f"""
  SELECT spread("index") * {HOURS} / (count("index") - 1) AS "billed"
  FROM {METER} WHERE {BLOCK_FILTER} AND {PERIOD} GROUP BY "device", "district"
"""
# the inlet's samples span the whole period (its start counts): no scaling
_INFLOW = f"""
  SELECT spread("totaliser") AS "inflow"
  FROM "raw"."water_block" WHERE {BLOCK_FILTER} AND {INSTANTS} GROUP BY "device", "district"
"""
NRW_PER_BLOCK = f"""
SELECT sum("inflow") AS "inflow", sum("billed") AS "billed"
FROM ({_INFLOW}), ({_BILLED}) WHERE {INSTANTS} GROUP BY "district"
"""

# The figures InfluxQL cannot compute (a share across two measurements, a least-squares
# slope) as the pilot report computed them: `akita pilot report --store-figures` writes
# them as `pilot_report` points stamped with the period's end (cloud/pilot/points.py).
# One row per report whose period ends in the range (its time is the period's end; the
# period_hours tag tells a 30-day report from a 7-day one ending the same day).
REPORT = '"raw"."pilot_report"'  # the default policy, where the store writes
REPORT_RANGE = "time >= ${__from}ms AND time <= ${__to}ms"
REPORT_NRW = f"""
SELECT "nrw_share" AS "NRW share", "inflow_m3" AS "inflow m³",
       "metered_m3" AS "metered m³", "meters" AS "meters",
       "read_rate" AS "read rate"
FROM {REPORT} WHERE "scope" = 'block' AND {BLOCK_FILTER} AND {REPORT_RANGE}
GROUP BY "period_hours", "district"
"""
REPORT_LEAKS = f"""
SELECT "leaks_per_1000_meters" AS "leak alerts per 1,000 meters",
       "leak_alerts" AS "leak alerts", "meters" AS "meters",
       "read_rate" AS "read rate"
FROM {REPORT} WHERE "scope" = 'overall' AND {REPORT_RANGE} GROUP BY "period_hours"
"""
REPORT_LEAKS_PER_BLOCK = f"""
SELECT "leaks_per_1000_meters" AS "leak alerts per 1,000 meters",
       "leak_alerts" AS "leak alerts", "meters" AS "meters"
FROM {REPORT} WHERE "scope" = 'block' AND {BLOCK_FILTER} AND {REPORT_RANGE}
GROUP BY "period_hours", "district"
"""
REPORT_BATTERY = f"""
SELECT "battery_slope_min" AS "min", "battery_slope_p10" AS "p10",
       "battery_slope_median" AS "median", "battery_slope_p90" AS "p90",
       "battery_slope_max" AS "max"
FROM {REPORT} WHERE "scope" = 'overall' AND {REPORT_RANGE} GROUP BY "period_hours"
"""
REPORT_BATTERY_PER_METER = f"""
SELECT "battery_slope" AS "battery slope", "battery" AS "battery"
FROM {REPORT} WHERE "scope" = 'meter' AND {F} AND {REPORT_RANGE}
GROUP BY "period_hours", "district", "device"
"""


def build() -> d.Dashboard:
    dash = new_dashboard(
        UID,
        "Water meters",
        "The smart-meter pilot's figures over the dashboard's time range, as the pilot "
        "report computes them: read success, battery, leak alerts and non-revenue water "
        "per block (see docs/lpwa.md).",
    ).time("now-7d", "now")
    dash = dash.with_variable(tag_variable("district", "Block", "water_meter")).with_variable(
        tag_variable("device", "Meter", "water_meter", parents=["district"])
    )
    return (
        dash.with_panel(
            table_panel(
                "Read success overall",
                InfluxQL(READ_RATE),
                description="Hours stored / hours expected over the range, for the meters "
                "that stored at least one hour in it (the report also counts registered "
                "meters that stored none).",
            )
        )
        .with_panel(
            table_panel(
                "Read success per block",
                InfluxQL(READ_RATE_PER_BLOCK),
                description="As the overall figure, per registry district (block).",
            )
        )
        .with_panel(
            table_panel(
                "Read success per meter",
                InfluxQL(READ_RATE_PER_METER),
                width=24,
                description="Hours stored / hours in the range, per meter.",
            )
        )
        .with_panel(
            series_panel(
                "Battery: fleet's daily mean (min, p10, median, p90, max)",
                InfluxQL(BATTERY).alias("$col"),
                unit="percent",
                description="Each meter's daily mean battery, then the fleet's distribution "
                "per day. The per-meter slope (% per 30 days, least squares) cannot be "
                "computed in InfluxQL: see the pilot report panels below.",
            )
        )
        .with_panel(
            table_panel(
                "Leak alerts opened, and meters",
                InfluxQL(LEAK_ALERTS),
                InfluxQL(READ_RATE),
                description="meter_leak alerts opened in the range (alert measurement) "
                "and the meters that stored readings. InfluxQL cannot divide across "
                "measurements: leak alerts per 1,000 meters = alerts x 1000 / meters, in "
                "the pilot report panel below.",
            )
        )
        .with_panel(
            table_panel(
                "Non-revenue water per block: inflow and billed",
                InfluxQL(NRW_PER_BLOCK),
                width=24,
                description="inflow: the block inlet's (water_block) totaliser growth; "
                "billed: the sum of the block's meters' use, each scaled to the range. "
                "NRW share = (inflow - billed) / inflow: next panel, from the pilot report "
                "(InfluxQL cannot combine two measurements' sums in one expression).",
            )
        )
        .with_panel(
            table_panel(
                "Pilot report: non-revenue water share per block",
                InfluxQL(REPORT_NRW),
                width=24,
                description="The NRW share per block as `akita pilot report --store-figures` "
                "computed it, for each report whose period ends in the range (time: "
                "the period's end; period_hours: its length): (inflow - sum of the "
                "block's meters' use) / inflow.",
            )
        )
        .with_panel(
            table_panel(
                "Pilot report: leak alerts per 1,000 meters",
                InfluxQL(REPORT_LEAKS),
                InfluxQL(REPORT_LEAKS_PER_BLOCK),
                description="meter_leak alerts opened in the report's period per 1,000 "
                "registered meters: the fleet (A) and per block (B), from the stored "
                "pilot report.",
            )
        )
        .with_panel(
            table_panel(
                "Pilot report: battery slope, % per 30 days (fleet)",
                InfluxQL(REPORT_BATTERY),
                description="Each meter's least-squares slope of its daily mean battery, "
                "% per 30 days; the fleet's min / p10 / median / p90 / max, from the "
                "stored pilot report.",
            )
        )
        .with_panel(
            table_panel(
                "Pilot report: battery slope per meter",
                InfluxQL(REPORT_BATTERY_PER_METER),
                width=24,
                description="Per meter: battery slope (% per 30 days) and last daily mean "
                "battery (%), from the stored pilot report.",
            )
        )
    )
