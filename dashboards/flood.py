"""Road flood sensors (道路冠水): depth against the stage lines, rain intensity, map."""

from __future__ import annotations

import os

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as d
from grafana_foundation_sdk.models import common as cm

from dashboards.common import (
    geomap_panel,
    kind_variables,
    long_range_row,
    new_dashboard,
    series_panel,
    table_panel,
)
from dashboards.influxql import KIND_FILTER as F
from dashboards.influxql import InfluxQL
from dashboards.water import active_alerts

UID = "akita-flood"
# Contract C default stage depths (cm): 注意 caution, 警戒 warning, 危険 danger.
STAGES = [(10.0, "yellow"), (20.0, "orange"), (30.0, "red")]

# The readings carry no coordinates (a flood sensor does not move), so the map looks
# its devices up in the sites gazetteer the open-data API serves. Build with
# AKITA_PUBLIC_API_URL set to the address Grafana users' browsers reach the API at.
DEFAULT_API_URL = "http://localhost:8000"


def api_url() -> str:
    return os.environ.get("AKITA_PUBLIC_API_URL", DEFAULT_API_URL).rstrip("/")


def build() -> d.Dashboard:
    dash = new_dashboard(
        UID,
        "Flood",
        "Road underpass and low-point flood sensors: water depth against the 10/20/30 cm "
        "stage lines (注意/警戒/危険), rain intensity and a map of current depths.",
    )
    for v in kind_variables("flood_sensor"):
        dash = dash.with_variable(v)
    depth = InfluxQL(f"""
SELECT max("depth") FROM "raw"."flood_sensor" WHERE {F} AND $timeFilter
GROUP BY time($__interval), "device" fill(null)""").alias("$tag_device")
    rain = InfluxQL(f"""
SELECT mean("rain_intensity") FROM "raw"."flood_sensor" WHERE {F} AND $timeFilter
GROUP BY time($__interval), "device" fill(null)""").alias("$tag_device")
    current = InfluxQL(f"""
SELECT last("depth") AS "depth", last("rain_intensity") AS "rain_intensity"
FROM "raw"."flood_sensor" WHERE {F} AND $timeFilter GROUP BY "device" """).table()
    location = (
        cb.FrameGeometrySource()
        .mode(cm.FrameGeometrySourceMode.LOOKUP)
        .lookup("device")
        .gazetteer(f"{api_url()}/opendata/sites.worldmap.json")
    )
    dash = (
        dash.with_panel(
            series_panel(
                "Water depth against stage lines",
                depth,
                unit="suffix: cm",
                stages=STAGES,
                description="Dashed lines: 10 cm 注意 (caution), 20 cm 警戒 (warning), "
                "30 cm 危険 (danger). Sites with their own stage depths are listed in the "
                "open data flood-monitoring feed.",
            )
        )
        .with_panel(series_panel("Rain intensity", rain, unit="suffix: mm/h", bars=True))
        .with_panel(
            geomap_panel(
                "Current depth by sensor",
                current,
                layer_name="Flood sensors",
                location=location,
                color_field="depth",
                stages=STAGES,
                description="Marker colour = current depth against the stage lines.",
            )
        )
        .with_panel(table_panel("Active flood alerts", active_alerts(("flood_stage",)), height=12))
    )
    long_depth = InfluxQL(f"""
SELECT max("max_depth") AS "max depth" FROM "agg_1m"."flood_sensor"
WHERE {F} AND $timeFilter GROUP BY time($__interval), "device" fill(null)""").alias("$tag_device")
    long_rain = InfluxQL(f"""
SELECT mean("mean_rain_intensity") AS "rain" FROM "agg_1m"."flood_sensor"
WHERE {F} AND $timeFilter GROUP BY time($__interval), "device" fill(null)""").alias("$tag_device")
    return dash.with_row(
        long_range_row(
            series_panel(
                "Max depth (1-minute aggregates)", long_depth, unit="suffix: cm", stages=STAGES
            ),
            series_panel("Rain intensity (1-minute aggregates)", long_rain, unit="suffix: mm/h"),
        )
    )
