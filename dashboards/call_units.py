"""Emergency-call units (緊急通報装置): events, heartbeat health, indoor WBGT."""

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
from dashboards.water import active_alerts

UID = "akita-call-units"
# 日本生気象学会 heat-stroke guideline stages on WBGT (°C): 警戒 25, 厳重警戒 28, 危険 31.
WBGT_STAGES = [(25.0, "yellow"), (28.0, "orange"), (31.0, "red")]
# the plan's KPI (issue 15), from the points the command service writes
# (cloud/commands/kpi_points.py): the same rules as GET /notices/kpi
KPI_NOTE = (
    "The plan's KPI over the picked time range (raw keeps 90 days; GET /notices/kpi "
    "counts all time)."
)


def wbgt_expr(t: str, rh: str) -> str:
    """Indoor WBGT (°C) estimated from air temperature and relative humidity.

    The units measure no globe temperature, so WBGT is estimated with the indoor
    regression of Ono & Tonouchi (2014, 日本生気象学会誌 50(4)), used by Japan's
    Ministry of the Environment for rooms without solar load:
    WBGT = 0.725·Ta + 0.0368·RH + 0.00364·Ta·RH − 3.246. ``t``/``rh`` are InfluxQL
    expressions (e.g. ``mean("temperature")``).
    """
    return f"0.725 * {t} + 0.0368 * {rh} + 0.00364 * {t} * {rh} - 3.246"


def build() -> d.Dashboard:
    dash = new_dashboard(
        UID,
        "Call units",
        "Emergency-call units of elderly residents living alone: button and cancel events, "
        "heartbeat health and battery, and indoor WBGT against the heat-stroke stages.",
    )
    for v in kind_variables("call_unit"):
        dash = dash.with_variable(v)
    events = InfluxQL(f"""
SELECT "event", "temperature", "humidity" FROM "raw"."call_unit"
WHERE ("event" = 'button' OR "event" = 'cancel') AND {F} AND $timeFilter
GROUP BY "device" ORDER BY time DESC LIMIT 200""")
    presses = InfluxQL(f"""
SELECT count("event") AS "button presses" FROM "raw"."call_unit"
WHERE "event" = 'button' AND {F} AND $timeFilter GROUP BY time($__interval) fill(0)""")
    heartbeats = InfluxQL(f"""
SELECT count("event") FROM "raw"."call_unit" WHERE "event" = 'heartbeat' AND {F} AND $timeFilter
GROUP BY time(1h), "device" fill(0)""").alias("$tag_device")
    last_heartbeat = InfluxQL(f"""
SELECT last("battery") AS "battery_pct" FROM "raw"."call_unit"
WHERE "event" = 'heartbeat' AND {F} AND $timeFilter GROUP BY "device" """)
    wbgt = InfluxQL(f"""
SELECT {wbgt_expr('mean("temperature")', 'mean("humidity")')} AS "wbgt"
FROM "raw"."call_unit" WHERE {F} AND $timeFilter
GROUP BY time($__interval), "device" fill(null)""").alias("$tag_device")
    with_function = InfluxQL(f"""
SELECT count(distinct("unit")) AS "units with the notice function" FROM "raw"."notice"
WHERE "fact" = 'received' AND {F} AND $timeFilter""")
    per_month = InfluxQL(f"""
SELECT sum("received") AS "received", sum("seen") AS "seen" FROM (
  SELECT max("received") AS "received", max("seen") AS "seen" FROM "raw"."notice"
  WHERE {F} AND $timeFilter GROUP BY "device", "month"
) GROUP BY "month" """)
    wbgt_note = (
        "Estimated indoor WBGT = 0.725·Ta + 0.0368·RH + 0.00364·Ta·RH − 3.246 (Ono & "
        "Tonouchi 2014), computed in the query from room temperature and humidity. Dashed "
        "lines: 25 警戒, 28 厳重警戒, 31 危険 °C."
    )
    dash = (
        dash.with_panel(
            table_panel(
                "Button and cancel events",
                events,
                description="Latest 200 per unit, newest first.",
            )
        )
        .with_panel(series_panel("Button presses", presses, unit="short", bars=True))
        .with_panel(
            series_panel(
                "Heartbeats per hour",
                heartbeats,
                unit="short",
                description="A healthy unit sends a steady count; a drop to 0 means it is "
                "silent (power, line or radio).",
            )
        )
        .with_panel(
            table_panel(
                "Last heartbeat and battery",
                last_heartbeat,
                description="Time column = the unit's last heartbeat.",
            )
        )
        .with_panel(
            series_panel(
                "Indoor WBGT against heat stages",
                wbgt,
                unit="celsius",
                stages=WBGT_STAGES,
                description=wbgt_note,
            )
        )
        .with_panel(
            table_panel(
                "Active call-unit alerts",
                active_alerts(("button_press", "heat_wbgt", "device_offline")),
            )
        )
        .with_panel(
            table_panel(
                "Residents with the notice function",
                with_function,
                description=KPI_NOTE + " A unit has the function once it confirmed a notice.",
                width=6,
            )
        )
        .with_panel(
            table_panel(
                "Notices received and seen per month",
                per_month,
                description=KPI_NOTE + " Received: confirmed by the unit; seen: the "
                "resident's first 'I have seen it' press. Month in Japan time; a range "
                "ending inside a month counts that month up to the range's end.",
                width=18,
            )
        )
    )
    long_wbgt = InfluxQL(f"""
SELECT {wbgt_expr('mean("mean_temperature")', 'mean("mean_humidity")')} AS "wbgt"
FROM "agg_1m"."call_unit" WHERE {F} AND $timeFilter
GROUP BY time($__interval), "device" fill(null)""").alias("$tag_device")
    return dash.with_row(
        long_range_row(
            series_panel(
                "Indoor WBGT (1-minute aggregates)",
                long_wbgt,
                unit="celsius",
                stages=WBGT_STAGES,
                description=wbgt_note,
            )
        )
    )
