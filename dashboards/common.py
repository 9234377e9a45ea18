"""Shared pieces of every dashboard: template variables, panel helpers, stage lines.

Long time ranges read the ``agg_1m`` retention policy. Each dashboard ends with a
collapsed row "Long range (agg_1m)" whose panels pin their own time range
(``timeFrom``) to 30 days and read the 1-minute aggregates (``mean_<field>``,
``min_<field>``, ``max_<field>``) that the ingest's continuous queries write. The
raw panels above read ``raw`` at full resolution for the picked range (raw keeps
90 days). Separate panels, rather than an ``$rp`` switch, because the two
policies name their fields differently and a switch would silently plot nothing
when it is set wrong.
"""

from __future__ import annotations

from collections.abc import Sequence

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as d
from grafana_foundation_sdk.builders import geomap, table, timeseries
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models import geomap as gm

from dashboards.influxql import DATASOURCE, InfluxQL

TIMEZONE = "Asia/Tokyo"
LONG_RANGE = "30d"
LONG_ROW = "Long range (agg_1m, 1-minute aggregates, last 30 days)"


def tag_variable(
    name: str, label: str, measurement: str, *, parents: Sequence[str] = ()
) -> d.QueryVariable:
    """A multi-value tag variable whose options narrow by the variables before it."""
    where = " AND ".join(f'"{p}" =~ /^${p}$/' for p in parents)
    query = f'SHOW TAG VALUES FROM "raw"."{measurement}" WITH KEY = "{name}"'
    if where:
        query += f" WHERE {where}"
    return (
        d.QueryVariable(name)
        .label(label)
        .datasource(DATASOURCE)
        .query(query)
        .multi(True)
        .include_all(True)
        .all_value(".*")
        .current(dm.VariableOption(selected=True, text="All", value="$__all"))
        .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dm.VariableSort.ALPHABETICAL_ASC)
    )


def kind_variables(measurement: str) -> list[d.QueryVariable]:
    """district -> site -> device, each narrowed by the ones before."""
    return [
        tag_variable("district", "District", measurement),
        tag_variable("site", "Site", measurement, parents=["district"]),
        tag_variable("device", "Device", measurement, parents=["district", "site"]),
    ]


def new_dashboard(uid: str, title: str, description: str, *, refresh: str = "1m") -> d.Dashboard:
    return (
        d.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["akita"])
        .timezone(TIMEZONE)
        .time("now-24h", "now")
        .refresh(refresh)
        .tooltip(dm.DashboardCursorSync.CROSSHAIR)
        .link(
            d.DashboardLink("Akita dashboards")
            .type(dm.DashboardLinkType.DASHBOARDS)
            .tags(["akita"])
            .as_dropdown(True)
            .include_vars(False)
            .keep_time(True)
        )
    )


def stage_thresholds(base: str, stages: Sequence[tuple[float, str]]) -> d.ThresholdsConfig:
    steps = [dm.Threshold(value=None, color=base)]
    steps += [dm.Threshold(value=v, color=c) for v, c in stages]
    return d.ThresholdsConfig().mode(dm.ThresholdsMode.ABSOLUTE).steps(steps)


def series_panel(
    title: str,
    *targets: InfluxQL,
    unit: str,
    description: str = "",
    width: int = 12,
    height: int = 8,
    stages: Sequence[tuple[float, str]] = (),
    bars: bool = False,
) -> timeseries.Panel:
    """A time series panel; ``stages`` draws dashed threshold lines (e.g. flood stages)."""
    p = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(width)
        .height(height)
        .line_width(1)
        .fill_opacity(10)
        .span_nulls(False)
    )
    for i, t in enumerate(targets):
        p = p.with_target(t.ref_id(chr(ord("A") + i)))
    if stages:
        p = p.thresholds(stage_thresholds("green", stages)).thresholds_style(
            cb.GraphThresholdsStyleConfig().mode(cm.GraphTresholdsStyleMode.DASHED)
        )
    if bars:
        p = p.draw_style(cm.GraphDrawStyle.BARS).fill_opacity(60)
    return p


AKITA_CENTER = (39.7199, 140.1025)


def geomap_panel(
    title: str,
    *targets: InfluxQL,
    layer_name: str,
    location: cb.FrameGeometrySource,
    color_field: str | None = None,
    stages: Sequence[tuple[float, str]] = (),
    base_color: str = "green",
    description: str = "",
    width: int = 12,
    height: int = 12,
    transformations: Sequence[dm.DataTransformerConfig] = (),
) -> geomap.Panel:
    """A map of Akita with one markers layer; colours by ``color_field`` against ``stages``."""
    style: dict[str, object] = {"size": {"fixed": 7}, "opacity": 0.8}
    if color_field:
        style["color"] = {"field": color_field, "fixed": "green"}
    else:
        style["color"] = {"fixed": "blue"}
    layer = (
        cb.MapLayerOptions()
        .type("markers")
        .name(layer_name)
        .location(location)
        .tooltip(True)
        .config({"showLegend": True, "style": style})
    )
    p = (
        geomap.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .span(width)
        .height(height)
        .view(_akita_view())
        .controls(geomap.ControlsOptions().show_zoom(True).show_attribution(True))
        .basemap(cb.MapLayerOptions().type("osm-standard").name("OpenStreetMap"))
        .layers([layer])
        .tooltip(geomap.TooltipOptions().mode(gm.TooltipMode.DETAILS))
    )
    for i, t in enumerate(targets):
        p = p.with_target(t.ref_id(chr(ord("A") + i)))
    if stages:
        p = p.thresholds(stage_thresholds(base_color, stages))
    for tr in transformations:
        p = p.with_transformation(tr)
    return p


def _akita_view() -> geomap.MapViewConfig:
    view = geomap.MapViewConfig().id("coords").zoom(11)
    # the SDK types lat/lon as int (a schema quirk); Grafana takes degrees as floats
    view._internal.lat = AKITA_CENTER[0]  # type: ignore[assignment]
    view._internal.lon = AKITA_CENTER[1]  # type: ignore[assignment]
    return view


def table_panel(
    title: str,
    *targets: InfluxQL,
    description: str = "",
    width: int = 12,
    height: int = 8,
    transformations: Sequence[dm.DataTransformerConfig] = (),
) -> table.Panel:
    p = (
        table.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .span(width)
        .height(height)
    )
    for i, t in enumerate(targets):
        p = p.with_target(t.table().ref_id(chr(ord("A") + i)))
    for tr in transformations:
        p = p.with_transformation(tr)
    return p


def merge() -> dm.DataTransformerConfig:
    """Join table frames on their common columns (e.g. ``device``)."""
    return dm.DataTransformerConfig(id_val="merge", options={})


def long_range_row(*panels: object) -> d.Row:
    row = d.Row(LONG_ROW)
    for p in panels:
        row = row.with_panel(p.time_from(LONG_RANGE))  # type: ignore[attr-defined]
    return row
