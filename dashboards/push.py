"""Upload the data source and the dashboards to a Grafana server through grafana-client.

Idempotent: the data source is created, or updated by its uid when it exists; the
folder is created once; dashboards are saved by uid with ``overwrite`` so running
``push`` twice leaves one copy of each.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from grafana_client import GrafanaApi
from grafana_client.client import GrafanaClientError, GrafanaException

from dashboards.datasource import DEFAULT_DATABASE, datasource_model
from dashboards.influxql import DATASOURCE_UID
from schemas.errors import AkitaError

log = logging.getLogger(__name__)

FOLDER_UID = "akita"
FOLDER_TITLE = "Akita City"


class PushError(AkitaError):
    """Grafana refused a call; names the object and Grafana's answer."""


@dataclass
class PushResult:
    datasource: str = ""  # "created" | "updated"
    folder: str = ""  # "created" | "exists"
    dashboards: list[str] = field(default_factory=list)


def _not_found(exc: GrafanaException) -> bool:
    return isinstance(exc, GrafanaClientError) and exc.status_code == 404


def push(
    grafana_url: str,
    token: str,
    *,
    dashboards: Mapping[str, dict[str, Any]],
    influx_url: str,
    influx_token: str | None = None,
    database: str = DEFAULT_DATABASE,
    timeout: float = 10.0,
) -> PushResult:
    api = GrafanaApi.from_url(grafana_url, credential=token, timeout=timeout)
    result = PushResult()
    ds = datasource_model(influx_url, database=database, token=influx_token)
    try:
        try:
            api.datasource.get_datasource_by_uid(DATASOURCE_UID)
        except GrafanaException as exc:
            if not _not_found(exc):
                raise
            api.datasource.create_datasource(ds)
            result.datasource = "created"
        else:
            api.datasource.update_datasource_by_uid(DATASOURCE_UID, ds)
            result.datasource = "updated"
        log.info("grafana_datasource uid=%s action=%s", DATASOURCE_UID, result.datasource)
    except GrafanaException as exc:
        raise PushError(f"data source {DATASOURCE_UID}: {exc}") from exc

    try:
        try:
            api.folder.get_folder(FOLDER_UID)
            result.folder = "exists"
        except GrafanaException as exc:
            if not _not_found(exc):
                raise
            api.folder.create_folder(FOLDER_TITLE, uid=FOLDER_UID)
            result.folder = "created"
    except GrafanaException as exc:
        raise PushError(f"folder {FOLDER_UID}: {exc}") from exc

    for name, model in dashboards.items():
        body = {
            "dashboard": {**model, "id": None},
            "folderUid": FOLDER_UID,
            "overwrite": True,
            "message": "akita dashboards push",
        }
        try:
            api.dashboard.update_dashboard(body)
        except GrafanaException as exc:
            raise PushError(f"dashboard {name} (uid {model.get('uid')}): {exc}") from exc
        log.info("grafana_dashboard uid=%s name=%s", model.get("uid"), name)
        result.dashboards.append(str(model.get("uid")))
    return result
