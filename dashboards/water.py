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
from dashboards.influxql import KIND_FILTER as F
from dashboards.influxql import InfluxQL

UID = "akita-water-blocks"
WATER_ALERT_KINDS = ("leak", "burst", "stuck_sensor")

# Minimum night flow (MNF): the lowest 2-hour mean flow of each day. 2-hour windows
# offset by 1 h start at 17:00 UTC = 02:00 JST, so the 02:00-04:00 JST window (when
# legitimate use is lowest) is one of them; the day runs from 02:00 JST to 02:00 JST.
# A rising MNF against its 7-night moving average is the classic leak signature.
NIGHT_FLOW = f"""
SELECT min("f") AS "night flow" FROM (
  SELECT mean("mean_flow") AS "f" FROM "agg_1m"."water_block"
  WHERE {F} AND $timeFilter GROUP BY time(2h, 1h), "device"
) GROUP BY time(1d, 17h), "device" fill(none)
"""
NIGHT_FLOW_BASELINE = f"""
SELECT moving_average(min("f"), 7) AS "baseline (7-night mean)" FROM (
  SELECT mean("mean_flow") AS "f" FROM "agg_1m"."water_block"
  WHERE {F} AND $timeFilter GROUP BY time(2h, 1h), "device"
) GROUP BY time(1d, 17h), "device" fill(none)
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
) WHERE "active" = true GROUP BY "device", "kind"
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
                description="Lowest 2-hour mean flow per day (day = 02:00-02:00 JST), from "
                "agg_1m, over the last 30 days; the baseline is its 7-night moving average.",
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
