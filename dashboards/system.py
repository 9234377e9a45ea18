"""System health: gateways, spools, ingest throughput and lag, dead letters, gaps."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as d
from grafana_foundation_sdk.builders import stat
from grafana_foundation_sdk.models import dashboard as dm

from dashboards.common import new_dashboard, series_panel, table_panel, tag_variable
from dashboards.influxql import DATASOURCE, InfluxQL, tag_filter

UID = "akita-system-health"
G = tag_filter("gateway")


def _online_mapping() -> list[dm.ValueMapping]:
    return [
        dm.SpecialValueMap(
            options=dm.DashboardSpecialValueMapOptions(
                match=dm.SpecialValueMatch.TRUE,
                result=dm.ValueMappingResult(text="online", color="green", index=0),
            )
        ),
        dm.SpecialValueMap(
            options=dm.DashboardSpecialValueMapOptions(
                match=dm.SpecialValueMatch.FALSE,
                result=dm.ValueMappingResult(text="OFFLINE", color="red", index=1),
            )
        ),
    ]


def _counter_increase(field: str, label: str) -> InfluxQL:
    return InfluxQL(f"""
SELECT non_negative_difference(max("{field}")) AS "{label}" FROM "raw"."ingest"
WHERE $timeFilter GROUP BY time($__interval), "worker" fill(none)""").alias("$tag_worker $col")


def build() -> d.Dashboard:
    dash = new_dashboard(
        UID,
        "System health",
        "Gateways online, spool depth, ingest rate and lag, dead letters, sequence gaps "
        "and duplicates, and devices reported offline.",
        refresh="30s",
    )
    dash = dash.with_variable(tag_variable("gateway", "Gateway", "gateway_health")).with_variable(
        tag_variable("device", "Device", "device_status", parents=["gateway"])
    )
    gateways = (
        stat.Panel()
        .title("Gateways")
        .description("Last reported state per gateway (birth message / Last Will / health).")
        .datasource(DATASOURCE)
        .with_target(
            InfluxQL(f"""
SELECT last("online") AS "online" FROM "raw"."gateway_health" WHERE {G} AND $timeFilter
GROUP BY "gateway" """).alias("$tag_gateway")
        )
        .mappings(_online_mapping())
        .span(12)
        .height(6)
    )
    online_count = (
        stat.Panel()
        .title("Gateways online")
        .datasource(DATASOURCE)
        .with_target(
            InfluxQL(f"""
SELECT count("online") AS "online" FROM (
  SELECT last("online") AS "online" FROM "raw"."gateway_health" WHERE {G} AND $timeFilter
  GROUP BY "gateway"
) WHERE "online" = true AND $timeFilter""")
        )
        .span(6)
        .height(6)
    )
    devices_online = (
        stat.Panel()
        .title("Devices online (reported by gateways)")
        .datasource(DATASOURCE)
        .with_target(
            InfluxQL(f"""
SELECT sum("n") AS "online" FROM (
  SELECT last("devices_online") AS "n" FROM "raw"."gateway_health" WHERE {G} AND $timeFilter
  GROUP BY "gateway"
) WHERE $timeFilter""")
        )
        .span(6)
        .height(6)
    )
    spool = InfluxQL(f"""
SELECT max("spool_depth") FROM "raw"."gateway_health" WHERE {G} AND $timeFilter
GROUP BY time($__interval), "gateway" fill(null)""").alias("$tag_gateway")
    dropped = InfluxQL(f"""
SELECT non_negative_difference(max("spool_dropped")) FROM "raw"."gateway_health"
WHERE {G} AND $timeFilter GROUP BY time($__interval), "gateway" fill(none)""").alias(
        "$tag_gateway dropped"
    )
    rate = InfluxQL("""
SELECT mean("points_per_s") FROM "raw"."ingest" WHERE $timeFilter
GROUP BY time($__interval), "worker" fill(null)""").alias("$tag_worker")
    lag = InfluxQL("""
SELECT mean("lag_s") AS "p50 lag" FROM "raw"."ingest" WHERE $timeFilter
GROUP BY time($__interval), "worker" fill(null)""").alias("$tag_worker $col")
    buffer = InfluxQL("""
SELECT max("buffer_depth") FROM "raw"."ingest" WHERE $timeFilter
GROUP BY time($__interval), "worker" fill(null)""").alias("$tag_worker buffer")
    offline = InfluxQL(f"""
SELECT "online", "reason" FROM (
  SELECT last("online") AS "online", last("reason") AS "reason" FROM "raw"."device_status"
  WHERE {G} AND {tag_filter("device")} AND $timeFilter GROUP BY "device", "gateway"
) WHERE "online" = false AND $timeFilter GROUP BY "device", "gateway" """)
    return (
        dash.with_panel(gateways)
        .with_panel(online_count)
        .with_panel(devices_online)
        .with_panel(
            series_panel(
                "Spool depth",
                spool,
                dropped,
                unit="short",
                description="Readings waiting for a broker PUBACK in each gateway's spool; "
                "'dropped' = readings lost to the overflow policy per interval.",
            )
        )
        .with_panel(series_panel("Ingest rate", rate, unit="pps"))
        .with_panel(
            series_panel(
                "Ingest lag and buffer",
                lag,
                buffer,
                unit="s",
                description="Lag = now minus reading time, median per 10 s report.",
            )
        )
        .with_panel(
            series_panel(
                "Dead letters, gaps and duplicates",
                _counter_increase("dead_letters", "dead letters"),
                _counter_increase("gaps", "gaps"),
                _counter_increase("duplicates", "duplicates"),
                unit="short",
                bars=True,
                description="Increase per interval of the ingest counters: payloads refused, "
                "batches missing by sequence number, batches received twice.",
            )
        )
        .with_panel(table_panel("Devices offline", offline, width=24))
    )
