"""The CAP 1.2 feed, served by FastAPI, validated against the OASIS CAP 1.2 schema."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
import xmlschema
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from cloud.alerts.config import AlertConfig
from cloud.alerts.manager import AlertManager
from cloud.db.models import DeviceRow
from cloud.detect.base import Detection
from cloud.notify.cap import ATOM_NS, CAP_NS, router
from cloud.notify.config import NotifyConfig
from cloud.opendata.settings import OpendataSettings
from schemas.alert import Severity
from schemas.devices import DeviceKind

XSD = Path(__file__).resolve().parents[2] / "fixtures" / "cap" / "CAP-v1.2.xsd"
NS = {"cap": CAP_NS, "atom": ATOM_NS}


@pytest.fixture(scope="module")
def schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(XSD))


@pytest.fixture
def world(db: sessionmaker[Session]) -> tuple[TestClient, AlertManager]:
    with db() as s, s.begin():
        s.add_all(
            [
                DeviceRow(device_id="fl-1", kind="flood_sensor", site="新屋アンダーパス",
                          area="新屋扇町", lat=39.7065, lon=140.0880),
                DeviceRow(device_id="cu-1", kind="call_unit", area="土崎港中央",
                          lat=39.756789, lon=140.066123),
                DeviceRow(device_id="wb-1", kind="water_block", area="山王"),
            ]
        )  # fmt: skip
    manager = AlertManager(db, AlertConfig(hold_off_s=0, min_open_s=0))
    config = NotifyConfig.model_validate(
        {"cap": {"sender": "alerts.city.akita.example", "web": "https://city.akita.example/"}}
    )
    app = FastAPI()
    # call units opted in as public, so heat alerts show (the default leaves them out)
    settings = SimpleNamespace(
        notify=config, opendata=OpendataSettings(public_kinds=list(DeviceKind))
    )
    app.state.service = SimpleNamespace(sessionmaker=db, settings=settings)
    app.include_router(router)
    return TestClient(app), manager


def test_call_unit_alerts_stay_off_the_feed_by_default(
    world: tuple[TestClient, AlertManager],
) -> None:
    client, manager = world
    client.app.state.service.settings.opendata = OpendataSettings()  # type: ignore[attr-defined]
    now = datetime.now(UTC).replace(microsecond=0)
    [heat] = manager.handle(
        [det("heat_wbgt", "cu-1", now, "severe_warning", 29.3, Severity.SEVERE)], now
    )
    feed = client.get("/cap/alerts.xml")
    assert feed.status_code == 200
    assert "cu-1" not in feed.text and "土崎港中央" not in feed.text and "140.07" not in feed.text
    assert client.get(f"/cap/alerts/{heat.alert.id}.xml").status_code == 404


def det(
    kind: str,
    device: str,
    at: datetime,
    stage: str | None,
    value: float,
    severity: Severity,
    *,
    public: bool = True,
) -> Detection:
    return Detection(
        detector="t", kind=kind, device_id=device, ts=at, active=stage is not None,
        severity=severity, title=f"{kind} {stage}", value=value, public=public,
        extra={"stage": stage},
    )  # fmt: skip


def _alert(client: TestClient, alert_id: str, schema: xmlschema.XMLSchema) -> ET.Element:
    r = client.get(f"/cap/alerts/{alert_id}.xml")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/cap+xml")
    schema.validate(r.content)  # raises with the offending element when invalid
    return ET.fromstring(r.content)


def test_flood_alert_update_and_cancel_validate(
    world: tuple[TestClient, AlertManager], schema: xmlschema.XMLSchema
) -> None:
    client, manager = world
    t0 = datetime(2026, 7, 14, 1, 0, tzinfo=UTC)
    [opened] = manager.handle(
        [det("flood_stage", "fl-1", t0, "caution", 12.0, Severity.MODERATE)], t0
    )
    alert_id = opened.alert.id
    first = _alert(client, alert_id, schema)
    assert first.findtext("cap:msgType", namespaces=NS) == "Alert"
    assert first.findtext("cap:sent", namespaces=NS) == "2026-07-14T10:00:00+09:00"
    assert first.findtext("cap:scope", namespaces=NS) == "Public"
    assert first.find("cap:references", NS) is None
    infos = first.findall("cap:info", NS)
    assert [i.findtext("cap:language", namespaces=NS) for i in infos] == ["ja-JP", "en-US"]
    ja = infos[0]
    assert ja.findtext("cap:event", namespaces=NS) == "道路冠水"
    assert ja.findtext("cap:severity", namespaces=NS) == "Moderate"
    assert ja.findtext("cap:category", namespaces=NS) == "Met"
    assert "注意" in (ja.findtext("cap:headline", namespaces=NS) or "")
    assert ja.findtext("cap:area/cap:circle", namespaces=NS) == "39.7065,140.088 0.5"
    assert "新屋アンダーパス" in (ja.findtext("cap:area/cap:areaDesc", namespaces=NS) or "")

    t1 = t0 + timedelta(minutes=10)
    manager.handle([det("flood_stage", "fl-1", t1, "warning", 22.0, Severity.SEVERE)], t1)
    update = _alert(client, alert_id, schema)
    assert update.findtext("cap:msgType", namespaces=NS) == "Update"
    original = first.findtext("cap:identifier", namespaces=NS)
    assert update.findtext("cap:identifier", namespaces=NS) != original
    assert update.findtext("cap:references", namespaces=NS) == (
        f"alerts.city.akita.example,{original},2026-07-14T10:00:00+09:00"
    )
    assert update.findtext("cap:info/cap:urgency", namespaces=NS) == "Immediate"

    t2 = t1 + timedelta(minutes=10)
    manager.handle([det("flood_stage", "fl-1", t2, None, 1.0, Severity.MINOR)], t2)
    manager.tick(t2 + timedelta(seconds=1))
    cancel = _alert(client, alert_id, schema)
    assert cancel.findtext("cap:msgType", namespaces=NS) == "Cancel"
    assert cancel.findtext("cap:info/cap:responseType", namespaces=NS) == "AllClear"
    assert len((cancel.findtext("cap:references", namespaces=NS) or "").split()) == 2


def test_feed_lists_public_flood_and_heat_only(
    world: tuple[TestClient, AlertManager], schema: xmlschema.XMLSchema
) -> None:
    client, manager = world
    now = datetime.now(UTC).replace(microsecond=0)
    manager.handle(
        [
            det("flood_stage", "fl-1", now, "danger", 34.0, Severity.EXTREME),
            det("heat_wbgt", "cu-1", now, "severe_warning", 29.3, Severity.SEVERE),
            det("leak", "wb-1", now, "x", 3.0, Severity.MODERATE, public=False),
        ],
        now,
    )
    r = client.get("/cap/alerts.xml")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/atom+xml")
    feed = ET.fromstring(r.content)
    alerts = feed.findall("atom:entry/atom:content/cap:alert", NS)
    assert len(alerts) == 2
    for a in alerts:
        schema.validate(ET.tostring(a))
    events = {a.findtext("cap:info/cap:event", namespaces=NS) for a in alerts}
    assert events == {"道路冠水", "熱中症警戒"}
    [heat] = [a for a in alerts if a.findtext("cap:info/cap:category", namespaces=NS) == "Health"]
    # a pendant is in a private home: only a coarse circle is published
    assert heat.findtext("cap:info/cap:area/cap:circle", namespaces=NS) == "39.76,140.07 2"
    links = feed.findall("atom:entry/atom:link", NS)
    assert all(link.get("href", "").endswith(".xml") for link in links)


def test_feed_links_come_from_the_public_url_not_the_host_header(
    world: tuple[TestClient, AlertManager],
) -> None:
    client, manager = world
    client.app.state.service.settings.notify = NotifyConfig(  # type: ignore[attr-defined]
        public_base_url="https://bousai.city.akita.example"
    )
    now = datetime.now(UTC).replace(microsecond=0)
    manager.handle([det("flood_stage", "fl-1", now, "danger", 34.0, Severity.EXTREME)], now)
    r = client.get("/cap/alerts.xml", headers={"Host": "evil.example", "X-Forwarded-Host": "x"})
    assert r.status_code == 200
    assert b"evil.example" not in r.content
    feed = ET.fromstring(r.content)
    hrefs = [link.get("href", "") for link in feed.iter(f"{{{ATOM_NS}}}link")]
    assert hrefs and all(h.startswith("https://bousai.city.akita.example/cap/") for h in hrefs)


def test_unknown_or_private_alert_is_404(world: tuple[TestClient, AlertManager]) -> None:
    client, manager = world
    now = datetime.now(UTC)
    [leak] = manager.handle([det("leak", "wb-1", now, "x", 3.0, Severity.MODERATE,
                                 public=False)], now)  # fmt: skip
    assert client.get(f"/cap/alerts/{leak.alert.id}.xml").status_code == 404
    assert client.get("/cap/alerts/al-nope.xml").status_code == 404


def test_schema_rejects_a_broken_message(schema: xmlschema.XMLSchema) -> None:
    # the validator is really checking: a CAP message with a 'Z' time and no scope fails
    bad = (
        f'<alert xmlns="{CAP_NS}"><identifier>x</identifier><sender>s</sender>'
        "<sent>2026-07-14T01:00:00Z</sent><status>Actual</status><msgType>Alert</msgType>"
        "</alert>"
    )
    assert not schema.is_valid(bad)
