"""Water blocks (配水ブロック): inlet flow and pressure, night-flow trend, active alerts."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as d

from dashboards.common import (
    kind_variables,
    long_range_row,
    new_dashboard,
    series_panel,
    table_panel,
)
from dashboards.diagnostics import add_diagnostics
from dashboards.influxql import KIND_FILTER as F
from dashboards.influxql import InfluxQL
from schemas.kinds import kind

UID = "akita-water-blocks"
WATER_ALERT_KINDS = ("leak", "burst", "stuck_sensor")

# Minimum night flow (MNF): the lowest hourly mean flow of each day (days run from
# 00:00 JST, i.e. 15:00 UTC). In a distribution block legitimate use is lowest at night,
# so the day's lowest hour is its night minimum; the leak detector uses the same 60-min
# mean restricted to 00:00-06:00, which InfluxQL cannot express (no hour-of-day filter).
# A rising MNF against its 7-night moving average is the classic leak signature.
_HOURLY = f"""
  SELECT mean("mean_flow") AS "f" FROM "agg_1m"."water_block"
  WHERE {F} AND $timeFilter GROUP BY time(1h), "device"
"""
NIGHT_FLOW = f"""
SELECT min("f") AS "night flow" FROM ({_HOURLY}) WHERE $timeFilter
GROUP BY time(1d, 15h), "device" fill(none)
"""
NIGHT_FLOW_BASELINE = f"""
SELECT moving_average(min("f"), 7) AS "baseline (7-night mean)" FROM ({_HOURLY})
WHERE $timeFilter GROUP BY time(1d, 15h), "device" fill(none)
"""


def active_alerts(kinds: tuple[str, ...], *, filt: str = F) -> InfluxQL:
    """Alerts whose last recorded change left them active, one row per (device, kind)."""
    kind_re = "|".join(kinds)
    return InfluxQL(f"""
SELECT "alert_id", "state", "title", "value" FROM (
  SELECT last("active") AS "active", last("alert_id") AS "alert_id",
         last("state") AS "state", last("title") AS "title", last("value") AS "value"
  FROM "raw"."alert" WHERE "kind" =~ /^({kind_re})$/ AND {filt} AND $timeFilter
  GROUP BY "device", "kind"
) WHERE "active" = true AND $timeFilter GROUP BY "device", "kind"
""").table()


def build() -> d.Dashboard:
    dash = new_dashboard(
        UID,
        "Water blocks",
        "District metered areas: inlet flow and pressure per block, minimum night flow "
        "against its baseline, and the active leak/burst/stuck-sensor alerts.",
    )
    for v in kind_variables("water_block"):
        dash = dash.with_variable(v)
    flow = InfluxQL(f"""
SELECT mean("flow") FROM "raw"."water_block" WHERE {F} AND $timeFilter
GROUP BY time($__interval), "device" fill(null)""").alias("$tag_device")
    pressure = InfluxQL(f"""
SELECT mean("pressure") FROM "raw"."water_block" WHERE {F} AND $timeFilter
GROUP BY time($__interval), "device" fill(null)""").alias("$tag_device")
    dash = (
        dash.with_panel(series_panel("Inlet flow per block", flow, unit="suffix: m³/h"))
        .with_panel(series_panel("Inlet pressure per block", pressure, unit="suffix: MPa"))
        .with_panel(
            series_panel(
                "Minimum night flow per block, with 7-night baseline",
                InfluxQL(NIGHT_FLOW).alias("$tag_device night flow"),
                InfluxQL(NIGHT_FLOW_BASELINE).alias("$tag_device baseline"),
                unit="suffix: m³/h",
                description="Lowest hourly mean flow of each day (JST), from agg_1m, over the "
                "last 30 days; the baseline is its 7-night moving average.",
            ).time_from("30d")
        )
        .with_panel(
            table_panel(
                "Active water alerts",
                active_alerts(WATER_ALERT_KINDS),
                description="From the alert measurement: the last change per device and "
                "kind, shown while it leaves the alert active.",
            )
        )
    )
    # a meter's diagnostics (temperatures, signal quality, error bits) and quality flags
    dash = add_diagnostics(dash, kind("water_block"))
    long_flow = InfluxQL(f"""
SELECT mean("mean_flow") AS "mean", min("min_flow") AS "min", max("max_flow") AS "max"
FROM "agg_1m"."water_block" WHERE {F} AND $timeFilter
GROUP BY time($__interval), "device" fill(null)""").alias("$tag_device $col")
    long_pressure = InfluxQL(f"""
SELECT mean("mean_pressure") AS "mean", min("min_pressure") AS "min"
FROM "agg_1m"."water_block" WHERE {F} AND $timeFilter
GROUP BY time($__interval), "device" fill(null)""").alias("$tag_device $col")
    return dash.with_row(
        long_range_row(
            series_panel("Flow (1-minute aggregates)", long_flow, unit="suffix: m³/h"),
            series_panel("Pressure (1-minute aggregates)", long_pressure, unit="suffix: MPa"),
        )
    )
