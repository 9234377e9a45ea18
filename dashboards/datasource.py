"""The Grafana data source the dashboards query: InfluxDB, InfluxQL, database ``akita``.

One definition serves InfluxDB 1.x, 2.x and 3.x because every query names its
retention policy explicitly (``"raw"."water_block"``, ``"agg_1m"."water_block"``):

- 1.x: database ``akita`` with retention policies ``raw`` and ``agg_1m``.
- 2.x: buckets mapped through the v1 compatibility API's DBRP mappings
  ``akita/raw`` (default) and ``akita/agg_1m`` (``deploy/grafana/influxdb-v2-dbrp.sh``).
- 3.x: databases named ``akita/raw`` and ``akita/agg_1m``, InfluxQL's db/rp naming
  convention (``deploy/grafana/influxdb-v3-databases.sh``).

Credentials go in ``secureJsonData`` (Grafana encrypts them), as an
``Authorization: Token ...`` header that 2.x and 3.x take and 1.8+ accepts.
"""

from __future__ import annotations

from typing import Any

from dashboards.influxql import DATASOURCE_TYPE, DATASOURCE_UID

DATASOURCE_NAME = "Akita InfluxDB"
DEFAULT_DATABASE = "akita"


def datasource_model(
    url: str, *, database: str = DEFAULT_DATABASE, token: str | None = None
) -> dict[str, Any]:
    """The data source as Grafana's HTTP API takes it (``POST /api/datasources``)."""
    model: dict[str, Any] = {
        "uid": DATASOURCE_UID,
        "name": DATASOURCE_NAME,
        "type": DATASOURCE_TYPE,
        "access": "proxy",
        "url": url,
        "isDefault": True,
        "jsonData": {
            "version": "InfluxQL",
            "dbName": database,
            "httpMode": "POST",
            "timeInterval": "10s",
        },
    }
    if token:
        model["jsonData"]["httpHeaderName1"] = "Authorization"
        model["secureJsonData"] = {"httpHeaderValue1": f"Token {token}"}
    return model
