"""CAP 1.2 (OASIS Common Alerting Protocol) output of public alerts (flood, heat).

``GET /cap/alerts.xml`` is an Atom feed with one entry per active public alert (and,
for ``cancel_visible_s``, the Cancel of each recently resolved one); every entry
embeds the full ``<alert>`` and links to ``GET /cap/alerts/{id}.xml``.

Each alert version is its own CAP message: ``msgType`` Alert when it opened, Update
after a stage/severity change, Cancel once resolved; ``identifier`` is
``<prefix>-<alert id>-<UTC time of that version>`` and ``references`` lists the
earlier messages of the same alert. ``info`` is given in ja-JP and en-US (wording
from the ``cap.j2`` templates). The area is a circle ``"lat,lon radius_km"`` plus an
``areaDesc``; heat alerts come from pendants in private homes, so their circle is
coarsened (2 decimals, ``heat_radius_km``).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Request, Response
from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from cloud.alerts.manager import alert_of_row
from cloud.db.models import AlertRow
from cloud.notify.config import CapConfig, NotifyConfig
from cloud.notify.messages import render_blocks
from cloud.notify.routing import by_prefix
from cloud.notify.stages import stage_of
from cloud.opendata.public import is_public_device
from schemas.alert import Alert, AlertState, Severity

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
ATOM_NS = "http://www.w3.org/2005/Atom"
CAP_MEDIA_TYPE = "application/cap+xml"
ATOM_MEDIA_TYPE = "application/atom+xml"
LANGUAGES = (("ja", "ja-JP"), ("en", "en-US"))
_JST = ZoneInfo("Asia/Tokyo")

ET.register_namespace("", CAP_NS)
ET.register_namespace("atom", ATOM_NS)


def cap_time(at: datetime) -> str:
    """CAP dateTime: seconds precision with a numeric offset (no 'Z'), in JST."""
    return at.astimezone(_JST).replace(microsecond=0).isoformat()


@dataclass(frozen=True)
class CapVersion:
    """One CAP message of an alert."""

    msg_type: str  # Alert | Update | Cancel
    sent: datetime
    identifier: str


@dataclass(frozen=True)
class CapAlert:
    """An alert as the CAP builder needs it: the alert, its extras, its versions."""

    alert: Alert
    extra: dict[str, Any]
    versions: tuple[CapVersion, ...]  # oldest first; the last one is current

    @property
    def current(self) -> CapVersion:
        return self.versions[-1]


@dataclass(frozen=True)
class CapResource:
    """A picture of the alert's place (cloud.images.cap_resource): a public URL of the
    masked JPEG, its size in bytes and its SHA-1 (CAP 1.2's ``digest``)."""

    uri: str
    size: int
    digest: str
    mime_type: str = "image/jpeg"


# (alert, its stage) -> its picture's resource, or None; given by the image component
ResourceOf = Callable[[Alert, str | None], CapResource | None]
RESOURCE_DESC = {"ja": "冠水箇所の画像", "en": "Picture of the flooded place"}


def identifier(cfg: CapConfig, alert_id: str, at: datetime) -> str:
    return f"{cfg.identifier_prefix}-{alert_id}-{at.astimezone(UTC):%Y%m%dT%H%M%SZ}"


def versions(cfg: CapConfig, alert: Alert, update_times: list[datetime]) -> tuple[CapVersion, ...]:
    """Alert at open, Update per stage/severity change, Cancel at resolution."""
    out = [CapVersion("Alert", alert.started_at, identifier(cfg, alert.id, alert.started_at))]
    for at in update_times:
        out.append(CapVersion("Update", at, identifier(cfg, alert.id, at)))
    if alert.state == AlertState.RESOLVED:
        at = alert.resolved_at or alert.updated_at
        out.append(CapVersion("Cancel", at, identifier(cfg, alert.id, at)))
    return tuple(out)


def topic_of(config: NotifyConfig, alert: Alert) -> str | None:
    found = by_prefix(alert.kind, config.resident_topics)
    return str(found) if found else None


def _sub(parent: ET.Element, tag: str, text: str | None = None) -> ET.Element:
    el = ET.SubElement(parent, f"{{{CAP_NS}}}{tag}")
    if text is not None:
        el.text = text
    return el


def _urgency(topic: str, stage: str | None) -> str:
    if stage in ("danger", "warning" if topic == "flood" else "severe_warning"):
        return "Immediate"
    return "Expected"


def _resource(info: ET.Element, lang: str, resource: CapResource) -> None:
    el = _sub(info, "resource")
    _sub(el, "resourceDesc", RESOURCE_DESC[lang])
    _sub(el, "mimeType", resource.mime_type)
    _sub(el, "size", str(resource.size))
    _sub(el, "uri", resource.uri)
    _sub(el, "digest", resource.digest)


def build_alert(
    item: CapAlert, config: NotifyConfig, resource_of: ResourceOf | None = None
) -> ET.Element:
    """The ``<alert>`` element of the item's current version."""
    cfg = config.cap
    alert, version = item.alert, item.current
    topic = topic_of(config, alert) or "flood"
    stage = stage_of(topic, alert, item.extra)
    cancel = version.msg_type == "Cancel"
    root = ET.Element(f"{{{CAP_NS}}}alert")
    _sub(root, "identifier", version.identifier)
    _sub(root, "sender", cfg.sender)
    _sub(root, "sent", cap_time(version.sent))
    _sub(root, "status", "Actual")
    _sub(root, "msgType", version.msg_type)
    _sub(root, "scope", "Public")
    if len(item.versions) > 1:
        refs = [f"{cfg.sender},{v.identifier},{cap_time(v.sent)}" for v in item.versions[:-1]]
        _sub(root, "references", " ".join(refs))
    _sub(root, "incidents", alert.id)
    lat, lon = alert.lat, alert.lon
    radius = cfg.flood_radius_km
    if topic == "heat":
        radius = cfg.heat_radius_km
        lat = round(lat, 2) if lat is not None else None
        lon = round(lon, 2) if lon is not None else None
    # a Cancel carries no picture: the alert is over and no new link is made for it
    resource = None if cancel or resource_of is None else resource_of(alert, stage)
    context = {"alert": alert, "topic": topic, "stage": stage, "msg_type": version.msg_type}
    for lang, code in LANGUAGES:
        text = render_blocks("cap", lang, context)
        info = _sub(root, "info")
        _sub(info, "language", code)
        _sub(info, "category", "Met" if topic == "flood" else "Health")
        _sub(info, "event", text["event"])
        response = "Avoid" if topic == "flood" else "Prepare"
        _sub(info, "responseType", "AllClear" if cancel else response)
        _sub(info, "urgency", "Past" if cancel else _urgency(topic, stage))
        _sub(info, "severity", Severity.MINOR.value if cancel else alert.severity.value)
        _sub(info, "certainty", "Observed")
        code_el = _sub(info, "eventCode")
        _sub(code_el, "valueName", "akita:kind")
        _sub(code_el, "value", alert.kind)
        _sub(info, "effective", cap_time(version.sent))
        _sub(info, "onset", cap_time(alert.started_at))
        _sub(info, "senderName", cfg.sender_name)
        _sub(info, "headline", text["headline"])
        _sub(info, "description", text["description"])
        _sub(info, "instruction", text["instruction"])
        if cfg.web:
            _sub(info, "web", cfg.web)
        if stage:
            param = _sub(info, "parameter")
            _sub(param, "valueName", "akita:stage")
            _sub(param, "value", stage)
        if alert.value is not None:
            param = _sub(info, "parameter")
            _sub(param, "valueName", "akita:depth_cm" if topic == "flood" else "akita:wbgt_c")
            _sub(param, "value", f"{alert.value:g}")
        if resource is not None:  # the schema's order: after parameter, before area
            _resource(info, lang, resource)
        area = _sub(info, "area")
        _sub(area, "areaDesc", text["area_desc"])
        if lat is not None and lon is not None:
            _sub(area, "circle", f"{lat},{lon} {radius:g}")
    return root


def to_bytes(element: ET.Element) -> bytes:
    return ET.tostring(element, encoding="utf-8", xml_declaration=True)


# -- reading alerts from the database -------------------------------------------------------


def _item(row: AlertRow, config: NotifyConfig) -> CapAlert:
    alert = alert_of_row(row)
    updates = [e.at for e in row.events if e.action == "update"]
    return CapAlert(alert, dict(row.extra or {}), versions(config.cap, alert, updates))


def public_alerts(sm: sessionmaker[Session], config: NotifyConfig, now: datetime) -> list[CapAlert]:
    """Active public flood/heat alerts and those resolved within ``cancel_visible_s``."""
    since = now - timedelta(seconds=config.cap.cancel_visible_s)
    stmt = (
        select(AlertRow)
        .where(
            AlertRow.public.is_(True),
            or_(AlertRow.state != AlertState.RESOLVED.value, AlertRow.resolved_at >= since),
        )
        .order_by(AlertRow.started_at, AlertRow.id)
    )
    with sm() as s:
        rows = s.scalars(stmt).all()
        return [_item(r, config) for r in rows if topic_of(config, alert_of_row(r)) is not None]


def one_alert(sm: sessionmaker[Session], config: NotifyConfig, alert_id: str) -> CapAlert | None:
    with sm() as s:
        row = s.get(AlertRow, alert_id)
        if row is None or not row.public:
            return None
        item = _item(row, config)
        return item if topic_of(config, item.alert) is not None else None


def build_feed(
    items: list[CapAlert],
    config: NotifyConfig,
    *,
    self_url: str,
    base: str,
    now: datetime,
    resource_of: ResourceOf | None = None,
) -> ET.Element:
    """Atom feed whose entries embed each CAP message (as the CAP feeds note suggests)."""
    feed = ET.Element(f"{{{ATOM_NS}}}feed")

    def atom(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        el = ET.SubElement(parent, f"{{{ATOM_NS}}}{tag}", attrs)
        if text is not None:
            el.text = text
        return el

    atom(feed, "id", self_url)
    atom(feed, "title", f"{config.cap.sender_name} CAP alerts")
    updated = max((i.current.sent for i in items), default=now)
    atom(feed, "updated", cap_time(updated))
    atom(feed, "link", rel="self", href=self_url, type=ATOM_MEDIA_TYPE)
    author = atom(feed, "author")
    atom(author, "name", config.cap.sender_name)
    for item in items:
        entry = atom(feed, "entry")
        url = f"{base}/cap/alerts/{item.alert.id}.xml"
        atom(entry, "id", url + "#" + item.current.identifier)
        headline = render_blocks(
            "cap",
            "ja",
            {
                "alert": item.alert,
                "topic": topic_of(config, item.alert),
                "stage": stage_of(topic_of(config, item.alert), item.alert, item.extra),
                "msg_type": item.current.msg_type,
            },
        )["headline"]
        atom(entry, "title", headline)
        atom(entry, "updated", cap_time(item.current.sent))
        atom(entry, "link", rel="alternate", href=url, type=CAP_MEDIA_TYPE)
        content = atom(entry, "content", type=CAP_MEDIA_TYPE)
        content.append(build_alert(item, config, resource_of))
    return feed


# -- HTTP -------------------------------------------------------------------------------------

router = APIRouter(tags=["cap"])


def _resource_of(request: Request) -> ResourceOf | None:
    """The image component's resources when ``[images]`` is set with public links."""
    cap = getattr(getattr(request.app.state.service, "images", None), "cap", None)
    return getattr(cap, "for_alert", None)


def _context(request: Request) -> tuple[sessionmaker[Session], NotifyConfig]:
    service = request.app.state.service
    settings = getattr(service, "settings", None)
    config = getattr(settings, "notify", None) or NotifyConfig()
    return service.sessionmaker, config


@router.get(
    "/cap/alerts.xml",
    response_class=Response,
    responses={200: {"content": {ATOM_MEDIA_TYPE: {}}}},
    summary="Atom feed of active public alerts (flood, heat) as CAP 1.2",
)
def cap_feed(request: Request) -> Response:
    sm, config = _context(request)
    now = datetime.now(UTC)
    # alerts of private device kinds (call units: residents' homes) stay off the feed
    service = request.app.state.service
    items = [
        i for i in public_alerts(sm, config, now) if is_public_device(service, i.alert.device_id)
    ]
    # the configured public base, never the request's Host header (a client chooses
    # that, and feed readers cache and re-share these links)
    base = config.public_base_url.rstrip("/")
    feed = build_feed(
        items,
        config,
        self_url=f"{base}/cap/alerts.xml",
        base=base,
        now=now,
        resource_of=_resource_of(request),
    )
    return Response(to_bytes(feed), media_type=ATOM_MEDIA_TYPE)


@router.get(
    "/cap/alerts/{alert_id}.xml",
    response_class=Response,
    responses={200: {"content": {CAP_MEDIA_TYPE: {}}}, 404: {"description": "No such alert"}},
    summary="The current CAP 1.2 message of one public alert",
)
def cap_alert(alert_id: str, request: Request) -> Response:
    sm, config = _context(request)
    item = one_alert(sm, config, alert_id)
    if item is None or not is_public_device(request.app.state.service, item.alert.device_id):
        raise HTTPException(status_code=404, detail=f"no public alert {alert_id!r}")
    alert = build_alert(item, config, _resource_of(request))
    return Response(to_bytes(alert), media_type=CAP_MEDIA_TYPE)
