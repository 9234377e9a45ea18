"""No call unit (id, position, area, site) on any public endpoint.

Call units sit in the homes of elderly residents living alone. The test enumerates the
app's routes, calls every one that answers without a token (GET and POST, path
parameters filled with the call units' own ids and alert ids), and searches every body
and header for the call units' identifiers and coordinates, so a route added later is
covered without touching this file. The service holds a public flood sensor, a bus,
and two call units with readings and an open public heat alert; /metrics is made
public too.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient

from cloud.api.app import create_app
from cloud.detect.base import Detection
from cloud.service import CloudService
from cloud.settings import CloudSettings
from cloud.store.base import Point
from schemas.alert import Severity
from schemas.devices import DeviceKind
from schemas.wire import DeviceInfo, GatewayMeta

CALL_UNITS = (
    DeviceInfo(device_id="cu-secret-17", kind=DeviceKind.CALL_UNIT, site="見守り宅甲",
               district="north", area="見守り丁目", lat=39.78913, lon=140.05557),
    DeviceInfo(device_id="cu-secret-42", kind=DeviceKind.CALL_UNIT, site="見守り宅乙",
               district="south", area="見守り台", lat=39.65432, lon=140.21098),
)  # fmt: skip
PUBLIC = (
    DeviceInfo(device_id="fl-open-1", kind=DeviceKind.FLOOD_SENSOR, site="中通アンダーパス",
               area="中通", lat=39.717, lon=140.118, poll_interval_s=60),
    DeviceInfo(device_id="bus-open-1", kind=DeviceKind.VEHICLE, vehicle_type="bus"),
)  # fmt: skip


def secrets_of(info: DeviceInfo) -> list[str]:
    """Every form a call unit's identity could take in a response."""
    out = [info.device_id, info.site or "", info.area or ""]
    for coord in (info.lat, info.lon):
        assert coord is not None
        out += [f"{coord:.2f}", f"{coord:.3f}", f"{coord:.4f}", repr(coord)]
    return [s for s in out if s]


def provision(service: CloudService, gateway: str, infos: tuple[DeviceInfo, ...]) -> None:
    provision_fn = getattr(service.registry, "provision", None)
    if provision_fn is not None:  # the registry is the authority (issue 14, point 1)
        provision_fn(gateway, list(infos))
    meta = GatewayMeta(gateway_id=gateway, ts=datetime.now(UTC), devices=list(infos))
    service.registry.apply_meta(meta)


@dataclass
class World:
    service: CloudService
    app: FastAPI
    client: TestClient
    alert_ids: list[str]


def build(tmp: Path, public_kinds: list[str] | None = None) -> World:
    data: dict[str, object] = {
        "environment": "test",
        "store": {"url": f"sqlite:///{tmp / 'telemetry.db'}"},
        "database": {"url": f"sqlite:///{tmp / 'akita.db'}"},
        "api": {"metrics_public": True},
        "alerts": {"hold_off_s": 0, "min_open_s": 0},
    }
    if public_kinds is not None:
        data["opendata"] = {"public_kinds": public_kinds}
    service = CloudService(CloudSettings.from_mapping(data, source="test"))
    provision(service, "gw-open", PUBLIC)
    provision(service, "gw-care", CALL_UNITS)
    now = datetime.now(UTC).replace(microsecond=0)
    points = [
        Point("call_unit", {"device": cu.device_id, "kind": "call_unit"},
              {"temperature": 33.0, "humidity": 80.0}, now - timedelta(minutes=1))
        for cu in CALL_UNITS
    ] + [
        Point("flood_sensor", {"device": "fl-open-1", "kind": "flood_sensor"},
              {"depth": 12.0}, now - timedelta(minutes=1)),
    ]  # fmt: skip
    service.store.write(points)
    changes = service.alerts.handle(
        [
            Detection(detector="t", kind="heat_wbgt", device_id=cu.device_id, ts=now,
                      active=True, severity=Severity.SEVERE, title="heat", value=31.0,
                      public=True, extra={"stage": "danger"})
            for cu in CALL_UNITS
        ],
        now,
    )  # fmt: skip
    app = create_app(service)
    return World(service, app, TestClient(app), [c.alert.id for c in changes])


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = build(tmp_path)
    with w.client:
        yield w
    w.service.stop()


def _fill(path: str, value: str) -> str:
    return re.sub(r"\{[^}]+\}", value, path)


def public_responses(w: World) -> dict[str, str]:
    """``"METHOD path" -> body + headers`` of every route that answered without a token."""
    values = [cu.device_id for cu in CALL_UNITS] + w.alert_ids + ["x"]
    seen: dict[str, str] = {}
    for route in iter_route_contexts(w.app.routes):
        for method in sorted((route.methods or set()) - {"HEAD"}):
            assert route.path is not None
            paths = {_fill(route.path, v) for v in values}
            for path in sorted(paths):
                r = w.client.request(method, path)
                assert r.status_code < 500, f"{method} {path} answered {r.status_code}: {r.text}"
                if r.status_code in (401, 403):
                    continue  # needs a token
                headers = "\n".join(f"{k}: {v}" for k, v in r.headers.items())
                seen[f"{method} {path}"] = r.content.decode("utf-8", "replace") + headers
    return seen


def leaks(responses: dict[str, str]) -> list[str]:
    return [
        f"{where} shows {needle!r}"
        for where, body in responses.items()
        for cu in CALL_UNITS
        for needle in secrets_of(cu)
        # an id the request itself carried may be echoed back ("no public alert 'x'")
        if needle in body and needle not in where
    ]


def test_no_call_unit_on_any_public_endpoint(world: World) -> None:
    responses = public_responses(world)
    # the crawl reached the public surfaces this test is about
    for expected in (
        "GET /opendata/sites.worldmap.json",
        "GET /opendata/flood-monitoring.geojson",
        "GET /opendata/gtfs-rt/vehicle-positions.pb",
        "GET /cap/alerts.xml",
        "GET /health",
        "GET /metrics",
        "GET /citizen/subscribe",
        "GET /citizen/flood",
    ):
        assert expected in responses, sorted(responses)
    assert "fl-open-1" in responses["GET /opendata/sites.worldmap.json"]
    assert leaks(responses) == []


def test_the_search_finds_call_units_once_they_are_made_public(tmp_path: Path) -> None:
    """The same crawl, with call units opted in: the leaks are seen (the check works)."""
    w = build(tmp_path, public_kinds=[k.value for k in DeviceKind])
    try:
        with w.client:
            found = leaks(public_responses(w))
    finally:
        w.service.stop()
    where = {f.split(" shows ")[0] for f in found}
    assert "GET /opendata/sites.worldmap.json" in where
    assert "GET /cap/alerts.xml" in where
    assert "GET /citizen/subscribe" in where
