"""Buses and snowplows: where each unit is, and which units have gone stale."""

from __future__ import annotations

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as d
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm

from dashboards.common import (
    geomap_panel,
    kind_variables,
    merge,
    new_dashboard,
    series_panel,
    table_panel,
)
from dashboards.influxql import KIND_FILTER as F
from dashboards.influxql import InfluxQL
from dashboards.water import active_alerts

UID = "akita-fleet"
# A unit with no position in the last STALE_WINDOW of the picked range is stale.
# ${__to} is the range end in epoch ms, so "stale" is judged at the end of whatever
# range is on screen (now, for a live dashboard).
STALE_WINDOW = "5m"

POSITIONS = f"""
SELECT last("lat") AS "lat", last("lon") AS "lon", last("speed") AS "speed_kmh",
       last("heading") AS "heading", last("vehicle_type") AS "vehicle_type",
       last("route_id") AS "route_id", last("plow_down") AS "plow_down"
FROM "raw"."vehicle" WHERE {F} AND $timeFilter GROUP BY "device"
"""
RECENT = f"""
SELECT count("lat") AS "fixes_last_{STALE_WINDOW}" FROM "raw"."vehicle"
WHERE {F} AND "fix" = true AND time > ${{__to}}ms - {STALE_WINDOW} AND time <= ${{__to}}ms
GROUP BY "device"
"""


def _stale_mapping() -> list[dm.ValueMapping]:
    return [
        dm.SpecialValueMap(
            options=dm.DashboardSpecialValueMapOptions(
                match=dm.SpecialValueMatch.NULL,
                result=dm.ValueMappingResult(text="STALE", color="red", index=0),
            )
        )
    ]


def build() -> d.Dashboard:
    dash = new_dashboard(
        UID,
        "Fleet",
        "City buses and snowplows: last known positions, and units without a GNSS fix "
        f"in the last {STALE_WINDOW} of the range flagged STALE.",
        refresh="30s",
    )
    for v in kind_variables("vehicle"):
        dash = dash.with_variable(v)
    location = (
        cb.FrameGeometrySource()
        .mode(cm.FrameGeometrySourceMode.COORDS)
        .latitude("lat")
        .longitude("lon")
    )
    stale_note = (
        f"fixes_last_{STALE_WINDOW} = positions with a fix in the last {STALE_WINDOW} of the "
        "range; empty means the unit is STALE."
    )
    units = table_panel(
        "Units (stale flagged)",
        InfluxQL(POSITIONS),
        InfluxQL(RECENT),
        description=stale_note,
        transformations=[merge()],
        width=24,
    ).override_by_name(
        f"fixes_last_{STALE_WINDOW}",
        [
            dm.DynamicConfigValue(id_val="mappings", value=_stale_mapping()),
            dm.DynamicConfigValue(id_val="custom.cellOptions", value={"type": "color-background"}),
        ],
    )
    speed = InfluxQL(f"""
SELECT mean("speed") FROM "raw"."vehicle" WHERE {F} AND $timeFilter
GROUP BY time($__interval), "device" fill(null)""").alias("$tag_device")
    dash = (
        dash.with_panel(
            geomap_panel(
                "Buses and snowplows",
                InfluxQL(POSITIONS).table(),
                InfluxQL(RECENT).table(),
                layer_name="Vehicles",
                location=location,
                color_field=f"fixes_last_{STALE_WINDOW}",
                stages=[(1.0, "green")],
                base_color="red",
                description="Last position per unit; red markers are stale. " + stale_note,
                transformations=[merge()],
                width=24,
                height=14,
            )
        )
        .with_panel(units)
        .with_panel(series_panel("Speed", speed, unit="velocitykmh"))
        .with_panel(
            table_panel(
                "Active vehicle alerts (stale, off route)",
                active_alerts(("vehicle_stale", "gps_dropout", "off_route")),
            )
        )
    )
    return dash
