"""Panels any kind's dashboard can add: the latest diagnostics per device, and where a
field had no valid value.

Both work from the measurement's fields as they are *stored*, not from a list known at
build time, so a device's declared extra fields (a flow meter's temperatures, signal
quality, error bits) and their quality flags show up without a code change:

- ``SELECT last(*) ... GROUP BY "device"`` returns one column per field any device of
  the kind ever reported in the range (``last_<field>``); Grafana's transformations
  merge the per-device frames into one table, strip the ``last_`` prefix and hide the
  kind's standard fields (charted elsewhere on the dashboard), so what remains are the
  extras and every ``<field>__quality`` column.
- ``SELECT last(/__quality$/) ... fill(previous)`` draws each quality flag as a state
  band per device. The gateway sends a flag when a field becomes untrusted and ``ok``
  once when it is trusted again (not on every reading), hence ``fill(previous)``: a
  flag holds until the next one.

A value mapping shows ``ok`` as "valid" (green) and any other flag as "no valid value:
<reason>" (red): where a chart of the value has a gap, this says why.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as d
from grafana_foundation_sdk.builders import statetimeline, table
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm

from dashboards.common import merge, table_panel
from dashboards.influxql import DATASOURCE, InfluxQL
from dashboards.influxql import KIND_FILTER as F
from schemas.kinds import Kind
from schemas.wire import QUALITY_OK, QUALITY_SUFFIX

NO_VALID_VALUE = "no valid value"
QUALITY_COLUMN = f".*{QUALITY_SUFFIX}$"  # a Grafana field-name regex


def quality_mappings() -> list[dm.ValueMapping]:
    """``ok`` -> valid; anything else -> no valid value: <reason>. Grafana applies the
    first mapping that matches, in this order."""
    return [
        dm.ValueMap(
            options={QUALITY_OK: dm.ValueMappingResult(text="valid", color="green", index=0)}
        ),
        dm.RegexMap(
            options=dm.DashboardRegexMapOptions(
                pattern="(.+)",
                result=dm.ValueMappingResult(text=f"{NO_VALID_VALUE}: $1", color="red", index=1),
            )
        ),
    ]


def latest_diagnostics_query(kind: Kind) -> InfluxQL:
    return InfluxQL(f"""
SELECT last(*) FROM "raw"."{kind.name}" WHERE {F} AND $timeFilter GROUP BY "device"
""").table()


def _rename(regex: str, pattern: str) -> dm.DataTransformerConfig:
    return dm.DataTransformerConfig(
        id_val="renameByRegex", options={"regex": regex, "renamePattern": pattern}
    )


def hidden_columns(kind: Kind) -> dict[str, bool]:
    """The columns the diagnostics table hides: the time (the table is 'latest') and the
    kind's standard fields, which the dashboard charts; their quality flags stay."""
    return {"Time": True, **{name: True for name in kind.values.model_fields}}


def latest_diagnostics_table(kind: Kind, *, width: int = 24) -> table.Panel:
    organize = dm.DataTransformerConfig(
        id_val="organize", options={"excludeByName": hidden_columns(kind)}
    )
    panel = table_panel(
        "Latest diagnostics per device",
        latest_diagnostics_query(kind),
        description="The last value of every extra (diagnostic) field a device of this "
        "kind declared, and every quality flag (<field>__quality): whatever the devices "
        "report, with no change to this dashboard. A value is the last valid one; its "
        "flag says whether it is valid now.",
        width=width,
        transformations=[merge(), _rename("^last_(.+)$", "$1"), organize],
    )
    return panel.override_by_regexp(
        QUALITY_COLUMN,
        [
            dm.DynamicConfigValue(id_val="mappings", value=quality_mappings()),
            dm.DynamicConfigValue(id_val="custom.cellOptions", value={"type": "color-background"}),
        ],
    )


def quality_query(kind: Kind) -> InfluxQL:
    return InfluxQL(f"""
SELECT last(/{QUALITY_SUFFIX}$/) FROM "raw"."{kind.name}" WHERE {F} AND $timeFilter
GROUP BY time($__interval), "device" fill(previous)""").alias("$tag_device $col")


def quality_timeline(kind: Kind, *, width: int = 24, height: int = 6) -> statetimeline.Panel:
    """One band per device and flagged field: valid, or no valid value with the reason."""
    return (
        statetimeline.Panel()
        .title("Value quality per device")
        .description(
            "Fields the gateway could not trust (NaN, Inf, out of range, a device error "
            "bit): red with the reason where the value's chart has a gap; green once the "
            "field is valid again. Only fields that were ever flagged appear."
        )
        .datasource(DATASOURCE)
        .span(width)
        .height(height)
        .with_target(quality_query(kind).ref_id("A"))
        .mappings(quality_mappings())
        .merge_values(True)
        .show_value(cm.VisibilityMode.AUTO)
        .no_value(f"no flag in range (all {kind.title.lower()} values valid)")
        .with_transformation(_rename(f"^(.*) last_(.+){QUALITY_SUFFIX}$", "$1 $2"))
    )


def add_diagnostics(dash: d.Dashboard, kind: Kind) -> d.Dashboard:
    """The quality bands and the diagnostics table, in that order."""
    return dash.with_panel(quality_timeline(kind)).with_panel(latest_diagnostics_table(kind))
