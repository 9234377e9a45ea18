"""Sewer manhole pump stations (マンホールポンプ): status, wet-well level, starts, run hours."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as d
from grafana_foundation_sdk.builders import stat, statetimeline
from grafana_foundation_sdk.models import dashboard as dm

from dashboards.common import (
    kind_variables,
    long_range_row,
    new_dashboard,
    series_panel,
    table_panel,
)
from dashboards.influxql import DATASOURCE, InfluxQL
from dashboards.influxql import KIND_FILTER as F
from dashboards.water import active_alerts

UID = "akita-pump-stations"
PUMP_ALERT_KINDS = ("pump_fail_to_start", "pump_short_cycle")

# Standard set points of the city's manhole pump stations (m above the well floor):
# both pumps stop at STOP, the lead pump starts at START, the second pump assists at
# ASSIST, high-level alarm at HIGH. A station's own set points (site facts
# start_level_m/stop_level_m/assist_level_m) differ by a few centimetres; the lines
# drawn are the standard ones because Grafana thresholds are per panel, not per series.
STOP_LEVEL_M = 0.4
START_LEVEL_M = 1.2
ASSIST_LEVEL_M = 1.6
HIGH_LEVEL_M = 2.0

# A start is a sample whose motor current is more than this above the previous
# sample's: a stopped motor reads ~0 A, a running one tens of amperes, so only a
# start (never the ripple of a running motor) makes that jump. InfluxQL cannot
# difference booleans, so pump*_running cannot be used for this directly.
START_STEP_A = 5.0


def _starts(pump: int) -> InfluxQL:
    return InfluxQL(f"""
SELECT count("step") AS "pump {pump}" FROM (
  SELECT difference("pump{pump}_current") AS "step" FROM "raw"."manhole_pump"
  WHERE {F} AND $timeFilter GROUP BY "device"
) WHERE "step" > {START_STEP_A} AND $timeFilter GROUP BY time(1h), "device" fill(0)
""").alias("$tag_device $col")


def build() -> d.Dashboard:
    dash = new_dashboard(
        UID,
        "Pump stations",
        "Sewer manhole pump stations: fault status, pump running states, wet-well level "
        "against the set points, starts per hour and run hours.",
    )
    for v in kind_variables("manhole_pump"):
        dash = dash.with_variable(v)
    status = (
        stat.Panel()
        .title("Station status (fault code)")
        .description("Last controller fault code per station: 0 = OK.")
        .datasource(DATASOURCE)
        .with_target(
            InfluxQL(f"""
SELECT last("fault_code") AS "fault" FROM "raw"."manhole_pump" WHERE {F} AND $timeFilter
GROUP BY "device" """).alias("$tag_device")
        )
        .mappings(
            [
                dm.ValueMap(
                    options={"0": dm.ValueMappingResult(text="OK", color="green", index=0)},
                ),
                dm.RangeMap(
                    options=dm.DashboardRangeMapOptions(
                        from_val=1,
                        to=65535,
                        result=dm.ValueMappingResult(text="FAULT", color="red", index=1),
                    ),
                ),
            ]
        )
        .color_scheme(d.FieldColor().mode(dm.FieldColorModeId.FIXED).fixed_color("text"))
        .span(12)
        .height(8)
    )
    running = (
        statetimeline.Panel()
        .title("Pumps running")
        .datasource(DATASOURCE)
        .with_target(
            InfluxQL(f"""
SELECT last("pump1_running") AS "pump 1", last("pump2_running") AS "pump 2"
FROM "raw"."manhole_pump" WHERE {F} AND $timeFilter
GROUP BY time($__interval), "device" fill(previous)""").alias("$tag_device $col")
        )
        .span(12)
        .height(8)
    )
    level = InfluxQL(f"""
SELECT mean("level") FROM "raw"."manhole_pump" WHERE {F} AND $timeFilter
GROUP BY time($__interval), "device" fill(null)""").alias("$tag_device")
    duty = InfluxQL(f"""
SELECT non_negative_derivative(last("pump1_run_hours"), 1h) AS "pump 1",
       non_negative_derivative(last("pump2_run_hours"), 1h) AS "pump 2"
FROM "raw"."manhole_pump" WHERE {F} AND $timeFilter
GROUP BY time($__interval), "device" fill(none)""").alias("$tag_device $col")
    run_hours_total = InfluxQL(f"""
SELECT last("pump1_run_hours") AS "pump 1 (h)", last("pump2_run_hours") AS "pump 2 (h)"
FROM "raw"."manhole_pump" WHERE {F} AND $timeFilter GROUP BY "device" """)
    dash = (
        dash.with_panel(status)
        .with_panel(running)
        .with_panel(
            series_panel(
                "Wet-well level against set points",
                level,
                unit="lengthm",
                stages=[
                    (STOP_LEVEL_M, "blue"),
                    (START_LEVEL_M, "yellow"),
                    (ASSIST_LEVEL_M, "orange"),
                    (HIGH_LEVEL_M, "red"),
                ],
                description=f"Dashed lines: stop {STOP_LEVEL_M} m, start {START_LEVEL_M} m, "
                f"assist {ASSIST_LEVEL_M} m, high-level alarm {HIGH_LEVEL_M} m (the city's "
                "standard set points).",
            )
        )
        .with_panel(
            series_panel(
                "Starts per hour",
                _starts(1),
                _starts(2),
                unit="short",
                bars=True,
                description=f"A start = motor current rising more than {START_STEP_A} A "
                "between two samples. Many starts per hour mean short cycling.",
            )
        )
        .with_panel(
            series_panel(
                "Duty (run hours per hour)",
                duty,
                unit="percentunit",
                description="Growth of each pump's run-hour counter per hour: 100 % = ran "
                "the whole time. The lead pump alternates, so both should track each other.",
            )
        )
        .with_panel(table_panel("Run hours (counter)", run_hours_total))
        .with_panel(table_panel("Active pump alerts", active_alerts(PUMP_ALERT_KINDS), width=24))
    )
    long_level = InfluxQL(f"""
SELECT mean("mean_level") AS "mean", max("max_level") AS "max"
FROM "agg_1m"."manhole_pump" WHERE {F} AND $timeFilter
GROUP BY time($__interval), "device" fill(null)""").alias("$tag_device $col")
    return dash.with_row(
        long_range_row(
            series_panel(
                "Wet-well level (1-minute aggregates)",
                long_level,
                unit="lengthm",
                stages=[(START_LEVEL_M, "orange"), (HIGH_LEVEL_M, "red")],
            )
        )
    )
