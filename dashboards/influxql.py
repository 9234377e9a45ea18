"""An InfluxQL target for Grafana's InfluxDB data source.

grafana-foundation-sdk ships no InfluxDB query type, so this module provides one:
a raw InfluxQL query (``rawQuery: true``) in the JSON shape Grafana's InfluxDB
data source stores. Raw queries keep the dashboards readable in review and let a
test run every panel's query, verbatim, against a real InfluxDB.
"""

from __future__ import annotations

from typing import Literal, Self

from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models.dashboard import DataSourceRef

DATASOURCE_UID = "akita-influxdb"
DATASOURCE_TYPE = "influxdb"
DATASOURCE = DataSourceRef(type_val=DATASOURCE_TYPE, uid=DATASOURCE_UID)

ResultFormat = Literal["time_series", "table"]


class InfluxQLQuery(cogvariants.Dataquery):
    """One raw InfluxQL target."""

    def __init__(
        self,
        query: str = "",
        *,
        ref_id: str = "A",
        result_format: ResultFormat = "time_series",
        alias: str | None = None,
        hide: bool | None = None,
    ) -> None:
        self.query = query
        self.ref_id = ref_id
        self.result_format = result_format
        self.alias = alias
        self.hide = hide

    def to_json(self) -> dict[str, object]:
        payload: dict[str, object] = {
            "datasource": DATASOURCE.to_json(),
            "query": self.query,
            "rawQuery": True,
            "refId": self.ref_id,
            "resultFormat": self.result_format,
        }
        if self.alias is not None:
            payload["alias"] = self.alias
        if self.hide is not None:
            payload["hide"] = self.hide
        return payload


class InfluxQL(cogbuilder.Builder[InfluxQLQuery]):
    """Builder for :class:`InfluxQLQuery`, in the SDK's fluent style."""

    def __init__(self, query: str) -> None:
        self._internal = InfluxQLQuery(" ".join(query.split()))

    def build(self) -> InfluxQLQuery:
        return self._internal

    def ref_id(self, ref_id: str) -> Self:
        self._internal.ref_id = ref_id
        return self

    def table(self) -> Self:
        self._internal.result_format = "table"
        return self

    def alias(self, alias: str) -> Self:
        self._internal.alias = alias
        return self


def tag_filter(*tags: str) -> str:
    """``"district" =~ /^$district$/ AND ...`` for the dashboard's template variables.

    A variable's "All" value is ``.*``, which also matches a point without that tag
    (InfluxQL compares a missing tag as the empty string).
    """
    return " AND ".join(f'"{t}" =~ /^${t}$/' for t in tags)


KIND_FILTER = tag_filter("district", "site", "device")
