"""Underpass warning signs: lamp current against the lit line, lamp/siren/fallback
bands, each sign's latest state and its open lamp faults.

The lamp band shows the coil (what the sign was told); the current chart is what the
cloud believes (:data:`schemas.kinds.warning_sign.LIT_MIN_A`): a lamp band that is on
over a current below the line is a lamp that gives no light, the ``sign_lamp_fault``
in the table below.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as d
from grafana_foundation_sdk.builders import statetimeline

from dashboards.common import kind_variables, new_dashboard, series_panel, table_panel
from dashboards.influxql import DATASOURCE, InfluxQL
from dashboards.influxql import KIND_FILTER as F
from dashboards.water import active_alerts
from schemas.kinds.warning_sign import LIT_MIN_A

UID = "akita-warning-signs"
LIT = [(LIT_MIN_A, "green")]


def _outputs() -> statetimeline.Panel:
    query = InfluxQL(f"""
SELECT last("lamp_on") AS "lamp", last("siren_on") AS "siren", last("fallback") AS "fallback"
FROM "raw"."warning_sign" WHERE {F} AND $timeFilter
GROUP BY time($__interval), "device" fill(previous)""").alias("$tag_device $col")
    return (
        statetimeline.Panel()
        .title("Lamp, siren and fallback")
        .description(
            "Coils as the sign's controller reports them, and 'fallback' while its "
            "watchdog has taken over from the gateway (lamp on its own float switch)."
        )
        .datasource(DATASOURCE)
        .with_target(query.ref_id("A"))
        .span(12)
        .height(8)
    )


def build() -> d.Dashboard:
    dash = new_dashboard(
        UID,
        "Warning signs",
        "Underpass warning signs: a lamp counts as lit only by its current "
        f"(at least {LIT_MIN_A} A); a lamp commanded on without it is a lamp fault.",
    )
    for v in kind_variables("warning_sign"):
        dash = dash.with_variable(v)
    current = InfluxQL(f"""
SELECT mean("lamp_current") FROM "raw"."warning_sign" WHERE {F} AND $timeFilter
GROUP BY time($__interval), "device" fill(previous)""").alias("$tag_device")
    latest = InfluxQL(f"""
SELECT last("lamp_on") AS "lamp", last("lamp_current") AS "current (A)",
       last("lamp_pattern") AS "pattern", last("siren_on") AS "siren",
       last("fallback") AS "fallback"
FROM "raw"."warning_sign" WHERE {F} AND $timeFilter GROUP BY "device" """)
    return (
        dash.with_panel(
            series_panel(
                "Lamp current against the lit line",
                current,
                unit="amp",
                stages=LIT,
                description=f"Dashed line: {LIT_MIN_A} A. Below it no light comes out, "
                "whatever the lamp coil says.",
            )
        )
        .with_panel(_outputs())
        .with_panel(table_panel("Latest state per sign", latest))
        .with_panel(table_panel("Active lamp faults", active_alerts(("sign_lamp_fault",))))
    )
