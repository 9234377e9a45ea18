"""A dashboard for any declared kind, from its :class:`~schemas.kinds.Kind` alone.

A kind plugin whose staff need no special panels registers this as its dashboard part
(``register(generic_part("tank_level"))`` in ``<plugin>/dashboards.py``): one chart per
numeric field of the kind's values model (the headline first), the quality bands and
the latest diagnostics per device, with the district -> site -> device variables.
"""

from __future__ import annotations

from typing import get_args

from grafana_foundation_sdk.builders import dashboard as d

from dashboards.common import kind_variables, new_dashboard, series_panel
from dashboards.diagnostics import add_diagnostics
from dashboards.influxql import KIND_FILTER as F
from dashboards.influxql import InfluxQL
from dashboards.parts import DashboardPart
from schemas.kinds import Kind, kind


def numeric_fields(k: Kind) -> list[tuple[str, str]]:
    """(field, unit) of the kind's numeric fields, the headline first."""
    out = []
    for name, info in k.values.model_fields.items():
        types = set(get_args(info.annotation)) or {info.annotation}
        if {int, float} & types and bool not in types:
            extra = info.json_schema_extra
            unit = extra.get("unit") if isinstance(extra, dict) else None
            out.append((name, str(unit or "")))
    return sorted(out, key=lambda f: f[0] != k.headline)


def _field_panel(k: Kind, name: str, unit: str) -> object:
    query = InfluxQL(f"""
SELECT mean("{name}") FROM "raw"."{k.name}" WHERE {F} AND $timeFilter
GROUP BY time($__interval), "device" fill(null)""").alias("$tag_device")
    return series_panel(f"{name} per device", query, unit=f"suffix: {unit}" if unit else "none")


def build_for(kind_name: str) -> d.Dashboard:
    k = kind(kind_name)
    dash = new_dashboard(
        f"akita-{k.name.replace('_', '-')}",
        k.title,
        f"{k.title}: each numeric value per device, where a value was not valid, and "
        "the latest diagnostics (generated from the kind's declaration).",
    )
    for v in kind_variables(k.name):
        dash = dash.with_variable(v)
    for name, unit in numeric_fields(k):
        dash = dash.with_panel(_field_panel(k, name, unit))  # type: ignore[arg-type]
    return add_diagnostics(dash, k)


def generic_part(kind_name: str) -> DashboardPart:
    """The part of a kind charted by :func:`build_for`; its file is ``<kind>.json``."""
    kind(kind_name)  # an unknown kind fails here, naming the known ones
    return DashboardPart(kind_name, kind_name.replace("_", "-"), lambda: build_for(kind_name))
